"""Reports: what a stored run shows outside its page, and documents made of several runs.

* :mod:`.blocks`: the pieces a run's report is made of (metrics, charts, tables, text,
  sanity checks) and :class:`~.blocks.RunSection`, one run's part of a report;
* :mod:`.sections`: one module per page that turns a stored run of that page's experiments
  into a :class:`~.blocks.RunSection` (the page's charts, drawn by the same ``viz``
  functions);
* :mod:`.compare`: what differs between runs, charts of several runs overlaid, metric
  tables with deltas;
* :mod:`.document`: a report (title, summary, ordered runs) and its generated "what this
  evaluation does not show" section;
* :mod:`.export`: the report as one self-contained HTML file, as PDF (printed by
  Chromium) and as a ZIP of CSV/JSON per run;
* :mod:`.model_card`: the report of one model's scorecard and every run made on it.
"""

from .blocks import Chart, Checks, Metric, Metrics, RunSection, Table, Text
from .document import Report, build_report, limitations, run_section
from .export import to_html, to_pdf, to_zip, write_report

__all__ = [
    "Chart",
    "Checks",
    "Metric",
    "Metrics",
    "Report",
    "RunSection",
    "Table",
    "Text",
    "build_report",
    "limitations",
    "run_section",
    "to_html",
    "to_pdf",
    "to_zip",
    "write_report",
]
