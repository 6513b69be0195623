"""Compare: 2 to 6 stored runs side by side."""

from robustcore.ui import compare
from robustcore.ui.shell import page_setup

page_setup(
    "Compare runs",
    "Pick two to six runs. Runs of the same experiment get their charts overlaid, one "
    "colour per run, with a table of the settings that differ and of their metrics with "
    "the difference to the first run. Runs of different experiments get one table of "
    "headline numbers.",
)
compare.page()
