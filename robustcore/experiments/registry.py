"""The experiment modules, in the order of the page map. Adding an experiment = one line."""

MODULES: tuple[str, ...] = (
    "train",
    "scorecard",
    "threat_models",
    "whitebox",
    "blackbox",
    "transfer",
    "backdoors",
    "hidden_trigger",
    "label_flipping",
    "poisoning_sanitization",
    "membership_inference",
    "overfitting_sweep",
    "model_inversion",
    "model_extraction",
    "postprocessing",
    "query_limitation",
    "adversarial_training",
    "defensive_distillation",
)
