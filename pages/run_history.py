"""Run history: every stored run, filtered, opened back in its page, labelled or deleted."""

from robustcore.ui import run_history
from robustcore.ui.shell import page_setup

page_setup(
    "Run history",
    "Every run the result store holds, from any page or from the command line: what it "
    "ran on, the settings that differ from the defaults, its headline number and status. "
    "Open a run to see its result again, give it a label, compare several or add them to "
    "a report. Deleting a run also takes it out of every report.",
)
run_history.page()
