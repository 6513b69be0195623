"""The experiment modules, in the order of the page map. Adding an experiment = one line."""

MODULES: tuple[str, ...] = (
    "train",
    "scorecard",
    "whitebox",
)
