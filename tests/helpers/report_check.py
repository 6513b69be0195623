"""Check a stored run's report section where a test already computed the run: the
builder gives the page's charts (each with data), names the attacks it tried, works when
the run's dataset is not available here, and the run exports to HTML with every chart."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_section(record: Any, charts: Iterable[str], tried: Iterable[str] = ()) -> Any:
    """``record``: a stored RunRecord; ``charts``: chart ids the section must hold;
    ``tried``: attack names (robustcore.reports.document.ATTACK_CATALOGUE, or
    ADAPTIVE_CATALOGUE for the attacks that adapt to a defense) it must name."""
    from robustcore.experiments import EXPERIMENTS, load_all
    from robustcore.reports import build_report, to_html
    from robustcore.reports.document import ADAPTIVE_CATALOGUE, ATTACK_CATALOGUE, run_section
    from robustcore.reports.sections import BUILDERS, get_builder
    from robustcore.runs import get_runner

    load_all()
    get_builder(record.kind)
    assert record.kind in BUILDERS, f"{record.kind} has no report builder"
    section = run_section(record)
    ids = [c.id for c in section.charts]
    assert set(charts) <= set(ids), (record.kind, ids)
    for chart in section.charts:
        assert chart.figure.data, (record.kind, chart.id)
    assert set(tried) <= section.tried <= {*ATTACK_CATALOGUE, *ADAPTIVE_CATALOGUE}, section.tried
    assert section.threat, record.kind
    # Without the dataset (an upload this process does not hold) it still draws.
    blind = BUILDERS[record.kind](EXPERIMENTS[record.kind].result(record), None)
    assert [b for b in blind.blocks]
    store = record.store if record.store is not None else get_runner().store
    page = to_html(build_report(store, [record.key]))
    assert page.count('class="plotly-graph-div"') == len(section.charts)
    return section
