"""Report: order runs into a stakeholder report and export it as HTML, PDF or ZIP."""

from robustcore.ui import report_builder
from robustcore.ui.shell import page_setup

page_setup(
    "Report",
    "A report for people who were not at the keyboard: a title and summary you write, "
    "then each run's charts and numbers as its page shows them, a generated section on "
    "what the evaluation does **not** show (the threat model assumed, attacks not tried, "
    "sanity-check warnings), and an appendix with every run's settings, seed and library "
    "versions. The **model card** collects the current model's scorecard and every run "
    "made on it.",
)
report_builder.page()
