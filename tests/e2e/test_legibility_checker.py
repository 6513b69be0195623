"""The legibility checker (tests/helpers/legibility.py) on synthetic figures, without the app.

plotly.js comes from the installed plotly package (no network); each figure is drawn with
``Plotly.newPlot`` into a fixed-size ``<div>`` of a blank page in headless Chromium. Every
case asserts both what is flagged and that nothing else is, so that a checker which flags
too much fails here as surely as one that flags too little.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from helpers.legibility import chart_reports, plot_problems
from playwright.sync_api import Page

from robustcore.viz.figures import accuracy_vs_eps, image_grid

pytestmark = pytest.mark.e2e

_HTML = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><div id="charts"></div><script>{js}</script></body></html>"""


def _source_sans() -> Path | None:
    """Streamlit's own copy of Source Sans, the font its theme draws charts with."""
    import streamlit

    media = Path(streamlit.__file__).parent / "static" / "static" / "media"
    return next(iter(sorted(media.glob("SourceSansVF-Upright*.woff2"))), None)


@pytest.fixture(scope="module")
def plotly_page(browser):
    """One blank page with plotly.js and the app's chart font loaded, for every test here."""
    from plotly.offline import get_plotlyjs

    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_content(_HTML.format(js=get_plotlyjs()))
    assert page.evaluate("typeof Plotly.newPlot") == "function"
    font = _source_sans()
    if font is not None:
        data = base64.b64encode(font.read_bytes()).decode()
        page.add_style_tag(
            content="@font-face { font-family: 'Source Sans'; "
            f"src: url(data:font/woff2;base64,{data}) format('woff2'); }}"
        )
        page.evaluate("document.fonts.load(\"12px 'Source Sans'\")")
    page.font = "Source Sans" if font is not None else None
    yield page
    context.close()


def draw(page: Page, *figs: go.Figure, width: int = 600, height: int = 400) -> list[str]:
    """Draw ``figs`` (one ``<div>`` each, the previous ones removed) and check them, in
    the app's chart font (Source Sans) when Streamlit's copy of it is there."""
    specs = [json.loads(f.to_json()) for f in figs]
    for spec in specs:
        if getattr(page, "font", None):
            spec["layout"].setdefault("font", {})["family"] = page.font
    page.evaluate(
        """async ([specs, w, h]) => {
             const root = document.getElementById('charts');
             for (const el of [...root.children]) { Plotly.purge(el); el.remove(); }
             for (const s of specs) {
               const div = document.createElement('div');
               div.style.width = w + 'px'; div.style.height = h + 'px';
               root.appendChild(div);
               await Plotly.newPlot(div, s.data, s.layout);
             }
           }""",
        [specs, width, height],
    )
    return plot_problems(page, settle=False)


def _lines(*ys: list[float], names=("PGD", "worst case"), **style) -> go.Figure:
    fig = go.Figure()
    for name, y in zip(names, ys, strict=True):
        fig.add_scatter(x=[0, 0.1, 0.2, 0.3], y=y, name=name, mode="lines+markers")
    fig.update_layout(title="Accuracy", xaxis_title="ε", yaxis_title="accuracy")
    return fig


def _one(problems: list[str], *words: str) -> str:
    assert len(problems) == 1, problems
    for w in words:
        assert w in problems[0], (w, problems[0])
    return problems[0]


# -- figures that must pass ------------------------------------------------------------------


def test_a_clean_figure_passes(plotly_page: Page) -> None:
    fig = _lines([0.99, 0.6, 0.3, 0.1], [0.99, 0.4, 0.05, 0.0], names=("FGSM", "PGD"))
    fig.add_hline(y=0.1, line_dash="dash", annotation_text="chance")
    assert draw(plotly_page, fig) == []
    (rep,) = chart_reports(plotly_page, settle=False)
    assert rep.checked and rep.title == "Accuracy" and rep.traces == 2
    assert rep.labels >= 10  # ticks, two axis titles, two legend entries, title, annotation


def test_rotated_long_tick_labels_pass(plotly_page: Page) -> None:
    # Plotly turns long category labels when they would collide, and with automargin (as
    # Streamlit's theme sets) makes room for them: nothing overlaps or is cut.
    cats = [f"a rather long category name {i}" for i in range(8)]
    fig = go.Figure(go.Bar(x=cats, y=list(range(8))))
    fig.update_xaxes(automargin=True)
    assert draw(plotly_page, fig) == []
    fig.update_xaxes(automargin=False)  # the default margin is too small for them
    _one(draw(plotly_page, fig), "of the x axis are clipped at the", "bottom of the chart")


def test_a_heat_map_with_a_colour_bar_passes(plotly_page: Page) -> None:
    fig = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], x=["a", "b"], y=["c", "d"]))
    fig.update_layout(title="Transfer", xaxis_title="target", yaxis_title="surrogate")
    fig.update_traces(colorbar_title_text="fooled")
    assert draw(plotly_page, fig) == []


def test_a_copy_drawn_dashed_over_a_solid_line_passes(plotly_page: Page) -> None:
    y = [0.96, 0.3, 0.0, 0.0]
    fig = _lines(y, y)
    fig.data[1].line.dash = "dash"
    assert draw(plotly_page, fig) == []


def test_an_earlier_wider_copy_passes(plotly_page: Page) -> None:
    # accuracy_vs_eps draws earlier curves wider: a coinciding later one leaves an edge.
    same = pd.DataFrame({"eps": [0.0, 0.1, 0.2, 0.3], "accuracy": [0.96, 0.3, 0.0, 0.0]})
    other = same.assign(accuracy=[0.96, 0.5, 0.2, 0.1])
    fig = accuracy_vs_eps({"FGSM": other, "PGD": same, "Worst case": same}, chance=0.1)
    assert draw(plotly_page, fig) == []


def test_bars_side_by_side_pass_even_when_equal(plotly_page: Page) -> None:
    fig = go.Figure([go.Bar(x=["a", "b"], y=[0.5, 0.7], name=n) for n in ("A", "B")])
    fig.update_layout(barmode="group", title="Grouped")
    assert draw(plotly_page, fig) == []


def test_a_chart_that_is_not_displayed_is_not_checked(plotly_page: Page) -> None:
    cats = [f"a rather long category name {i}" for i in range(8)]
    fig = go.Figure(go.Bar(x=cats, y=list(range(8))))
    fig.update_layout(xaxis_tickangle=0)  # illegible, but nobody sees it
    draw(plotly_page, fig)
    plotly_page.evaluate("document.getElementById('charts').firstChild.style.display = 'none'")
    (rep,) = chart_reports(plotly_page, settle=False)
    assert not rep.checked and rep.problems == []


def test_an_image_grid_with_long_captions_passes_at_the_narrow_width(plotly_page: Page) -> None:
    # The Home page's sample grid: 16 captions of 24 characters in 8 columns, 540 px wide
    # (the chart's width in a 1,000 px window): wrapped, they fit; on one line they would
    # run into each other.
    if not plotly_page.font:
        pytest.skip("Streamlit's Source Sans is not installed: caption widths differ")
    titles = [f"✓ true {i % 10} · pred {i % 10} (100%)" for i in range(16)]
    fig = image_grid(np.random.default_rng(0).random((16, 1, 8, 8)), titles, ncols=8)
    assert all("<br>" in a.text for a in fig.layout.annotations)
    assert draw(plotly_page, fig, width=540, height=int(fig.layout.height)) == []
    for a in fig.layout.annotations:
        a.text = a.text.replace("<br>", " ")
    problems = draw(plotly_page, fig, width=540, height=int(fig.layout.height))
    assert any("overlaps annotation" in p for p in problems), problems


# -- figures that must be flagged ---------------------------------------------------------


def test_overlapping_tick_labels_are_flagged(plotly_page: Page) -> None:
    cats = [f"a rather long category name {i}" for i in range(8)]
    fig = go.Figure(go.Bar(x=cats, y=list(range(8))))
    fig.update_layout(title="Ticks", xaxis_tickangle=0)
    _one(draw(plotly_page, fig), 'chart "Ticks"', "tick labels of the x axis overlap each other")


def test_clipped_tick_labels_are_flagged(plotly_page: Page) -> None:
    cats = [f"a rather long category name {i}" for i in range(8)]
    fig = go.Figure(go.Bar(y=cats, x=list(range(8)), orientation="h"))
    fig.update_layout(title="Clipped", margin={"l": 10}, yaxis_automargin=False)
    _one(
        draw(plotly_page, fig),
        '"a rather long category name 0"',
        "of the y axis are clipped at the left of the chart",
    )


def test_a_title_wider_than_the_chart_is_flagged(plotly_page: Page) -> None:
    fig = _lines([1, 0.5, 0.2, 0.1], [0.9, 0.4, 0.1, 0.0], names=("a", "b"))
    fig.update_layout(title="A title far too long to fit into a chart only four hundred px wide")
    _one(draw(plotly_page, fig, width=400), "the chart title", "is clipped at the", "right")


def test_an_annotation_on_another_is_flagged(plotly_page: Page) -> None:
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 2, 3], name="a"))
    fig.add_annotation(x=2, y=2, text="first note", showarrow=False)
    fig.add_annotation(x=2, y=2.05, text="second note", showarrow=False)
    _one(draw(plotly_page, fig), 'annotation "first note" overlaps annotation "second note"')


def test_an_annotation_over_tick_labels_is_flagged(plotly_page: Page) -> None:
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 2, 3], name="a"))
    fig.add_annotation(x=0, xref="paper", xanchor="right", y=2, text="a note", showarrow=False)
    problem = _one(draw(plotly_page, fig), 'annotation "a note" overlaps tick label')
    assert "of the y axis" in problem


def test_a_line_drawn_exactly_under_a_later_one_is_flagged(plotly_page: Page) -> None:
    y = [0.96, 0.3, 0.0, 0.0]
    _one(
        draw(plotly_page, _lines(y, y)),
        'legend entry "PGD" has no visible trace',
        'drawn exactly under "worst case"',
    )


def test_a_line_mostly_under_a_later_one_is_flagged(plotly_page: Page) -> None:
    # 60 points, the same but for the last one: almost all of "PGD" is under "worst case".
    x = np.linspace(0, 1, 60)
    y = np.exp(-3 * x)
    fig = go.Figure()
    fig.add_scatter(x=x, y=y, name="PGD", mode="lines")
    fig.add_scatter(x=x, y=np.r_[y[:-1], y[-1] + 0.02], name="worst case", mode="lines")
    _one(draw(plotly_page, fig), 'legend entry "PGD"', 'of its line lies under "worst case"')
    (rep,) = chart_reports(plotly_page, settle=False)
    assert rep.cover["PGD"] >= 0.95
    # Half of it apart: visible, not flagged, and the share says so.
    fig.data[1].y = np.r_[y[:30], y[30:] + 0.2]
    assert draw(plotly_page, fig) == []
    assert chart_reports(plotly_page, settle=False)[0].cover["PGD"] < 0.7


def test_identical_overlaid_histograms_are_flagged(plotly_page: Page) -> None:
    fig = go.Figure()
    for name in ("members", "non-members"):
        fig.add_histogram(x=[1, 1, 2, 3, 3, 3], name=name, opacity=0.6)
    fig.update_layout(barmode="overlay")
    _one(draw(plotly_page, fig), 'legend entry "members"', "draw the bars side by side")


def test_a_trace_outside_its_axes_is_flagged(plotly_page: Page) -> None:
    fig = _lines([0.9, 0.5, 0.2, 0.1], [3, 4, 5, 6], names=("in range", "out of range"))
    fig.update_layout(yaxis_range=[0, 1])
    _one(draw(plotly_page, fig), 'legend entry "out of range"', "draws nothing inside its axes")


def test_an_ellipsis_in_the_legend_is_flagged(plotly_page: Page) -> None:
    fig = _lines([0.9, 0.5, 0.2, 0.1], [0.8, 0.4, 0.1, 0.0], names=("LiRA online, fixed va…", "b"))
    _one(draw(plotly_page, fig), "legend entry", "is truncated with an ellipsis")


def test_a_legend_that_scrolls_is_flagged(plotly_page: Page) -> None:
    fig = go.Figure([go.Scatter(x=[1, 2], y=[i, i + 1], name=f"series {i}") for i in range(40)])
    problems = draw(plotly_page, fig, height=300)
    assert problems and all("legend entries" in p for p in problems), problems
    assert any("cut off at the bottom by the legend's box" in p for p in problems), problems


def test_a_data_label_cut_off_by_the_plotting_area_is_flagged(plotly_page: Page) -> None:
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1.0, 0.5], text=["100%", "50%"], name="rate"))
    fig.update_traces(textposition="outside")
    fig.update_layout(yaxis_range=[0, 1.02])
    _one(draw(plotly_page, fig), 'data label "100%"', "cut off at the top by the plotting area")


def test_an_annotation_on_bars_is_flagged(plotly_page: Page) -> None:
    fig = go.Figure(go.Bar(x=[0.96, 0.94], y=["clean", "noise"], orientation="h", name="acc"))
    fig.add_vline(x=0.1, line_dash="dot", annotation_text="chance 10%")
    _one(draw(plotly_page, fig), 'annotation "chance 10%" lies on the bars of "acc"')
    fig.layout.shapes = ()
    fig.layout.annotations = ()
    fig.add_vline(x=0.1, line_dash="dot", annotation_text="chance 10%", annotation_position="top")
    assert draw(plotly_page, fig) == []


def test_problems_name_the_chart_by_position_without_a_title(plotly_page: Page) -> None:
    y = [0.96, 0.3, 0.0, 0.0]
    clean = _lines([0.9, 0.5, 0.2, 0.1], [0.8, 0.4, 0.1, 0.0])
    hidden = _lines(y, y)
    hidden.update_layout(title=None)
    (problem,) = draw(plotly_page, clean, hidden)
    assert problem.startswith("untitled chart (2nd chart on the page): legend entry"), problem
