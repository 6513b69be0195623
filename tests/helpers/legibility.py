"""Is every Plotly chart on a Playwright page legible? Read from Plotly's rendered DOM.

:func:`plot_problems` runs one JavaScript pass (``legibility.js``) over every displayed
``.js-plotly-plot`` of the page (the element Plotly draws into; it carries ``_fullLayout``
and ``_fullData``) and returns plain sentences, each naming the chart (its title, else its
position on the page, with its Streamlit key and tab) and the label or legend entry. The
labels are tick labels, axis titles, legend entries and titles, annotations (subplot titles
included), data labels (a bar's or a point's text) and the chart title; each is measured as
its own text box mapped to the screen (so rotation is kept), trimmed to about the ink.

- **clipped labels**: a label whose box reaches outside the chart's own area (the main
  ``<svg>``, the chart element and the ancestors that clip it; not the page's own scrolling)
  or outside a clip path inside the chart: a legend that scrolls, a data label cut off by
  its plotting area. Labels of one kind (and axis) clipped alike are one sentence;
- **overlapping labels**: two labels whose boxes overlap by more than :data:`OVERLAP_PX`:
  tick labels of one axis among themselves (one sentence per axis), tick labels of two x
  (or two y) axes of neighbouring subplots, and everything else with everything (tick
  labels of an x and a y axis are not compared: they meet at the corners by design;
  neither are the entries of one legend, which Plotly lays out);
- **texts on the data**: an annotation, axis title or chart title on the bars of a trace
  or on an image, and the chart title inside a plotting area;
- **legend entries with no visible trace**: a trace drawn exactly under a later one (its
  line path within :data:`SAME_PX` of the later one's with a line that is solid and at
  least as wide, or has the same dash and width; its markers at the same places with the
  same symbol no larger; its bars inside the later one's, and equal when the later bars
  are translucent), a line of which at least :data:`MOSTLY_HIDDEN` lies under later lines
  that can hide it, or a trace that draws nothing inside its axes. A legend group counts
  as visible when any of its traces is;
- **truncated legend text**: an entry or legend title that ends in an ellipsis.

Charts that are not displayed (an inactive tab, a closed expander) are skipped;
:func:`chart_reports` says which were checked. Everything is measured in CSS pixels of the
current viewport; WebGL traces (``scattergl``) are judged from their data, the others from
the SVG Plotly drew.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

OVERLAP_PX = 2.0
"""Two text boxes overlap when they overlap by more than this along every direction (the
boxes are font boxes, a little taller than the ink)."""

CLIP_PX = 1.0
"""A text box is clipped when it reaches more than this outside the chart's area."""

SAME_PX = 1.0
"""Two drawn coordinates are the same when they differ by at most this."""

MOSTLY_HIDDEN = 0.95
"""A line is hidden when at least this share of it lies under later lines that can hide it
(solid and at least as wide, or of the same dash and width), and its markers are covered."""


@dataclass
class ChartReport:
    """What the checker saw of one chart."""

    index: int  # 1-based position among the page's Plotly charts
    name: str  # how the problems name it
    title: str
    key: str | None  # the Streamlit element key, when it has one
    tab: str | None  # the Streamlit tab it is in, when it is in one
    checked: bool  # False when the chart is not displayed (e.g. an inactive tab)
    width: float
    height: float
    labels: int  # texts measured
    traces: int  # traces with a legend entry
    cover: dict[str, float] = field(default_factory=dict)  # share of a line under later ones
    problems: list[str] = field(default_factory=list)


_JS = (Path(__file__).with_name("legibility.js")).read_text()

_STATE_JS = r"""
() => [...document.querySelectorAll('.js-plotly-plot')].map((gd) => {
  const r = gd.getBoundingClientRect();
  const svg = gd.querySelector('svg.main-svg');
  return [Math.round(r.width), Math.round(r.height), !!gd._fullLayout,
          svg ? svg.getAttribute('width') + 'x' + svg.getAttribute('height') : '',
          gd.querySelectorAll('text').length, !!gd._transitioning];
})
"""


def wait_for_charts(page: Page, *, timeout_s: float = 15.0, quiet_ms: int = 400) -> None:
    """Wait until every Plotly chart on the page is drawn and stops changing (size and
    number of texts the same over ``quiet_ms``), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        state = page.evaluate(_STATE_JS)
        ready = all(s[2] and s[3] for s in state)
        if ready and state == last:
            return
        if time.monotonic() > deadline:
            return  # check what is there: a chart still moving is reported as it is
        last = state if ready else None
        page.wait_for_timeout(quiet_ms)


def chart_reports(page: Page, *, settle: bool = True) -> list[ChartReport]:
    """One :class:`ChartReport` per Plotly chart on the page (displayed or not)."""
    if settle:
        wait_for_charts(page)
    opts = {"overlap": OVERLAP_PX, "clip": CLIP_PX, "same": SAME_PX, "mostly": MOSTLY_HIDDEN}
    raw = page.evaluate(_JS, opts)
    return [ChartReport(**r) for r in raw]


def plot_problems(page: Page, *, settle: bool = True) -> list[str]:
    """Every legibility problem of the displayed Plotly charts, as sentences that name the
    chart and the label (empty when every chart is legible)."""
    return [f"{r.name}: {p}" for r in chart_reports(page, settle=settle) for p in r.problems]
