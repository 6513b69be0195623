"""AppTest: the Reports section. Run history lists, filters, labels, opens and deletes runs;
Compare overlays two runs; Report orders runs and makes a model card; every page's result
offers "Add to report" and "Compare with…"."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.apptest import new_app, run_until
from helpers.report_runs import two_whitebox_runs

from robustcore.runs import RunResult, get_runner

HISTORY, COMPARE, REPORT = "pages/run_history.py", "pages/compare.py", "pages/report.py"


@pytest.fixture(scope="module")
def keys(mnist5k, tiny_cnn):
    return two_whitebox_runs(mnist5k)


def _small_scorecard() -> str:
    from robustcore.data import load
    from robustcore.experiments import Target
    from robustcore.experiments.scorecard import Scorecard

    card = Scorecard(n=60, n_query=10, members=100, pgd_steps=5, query_budget=200).on(
        Target.zoo("small_cnn", {"epochs": 1, "seed": 0})
    )
    job = get_runner().submit(card, load("mnist5k")).wait()
    assert job.state == "done", job.error
    return job.key


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


def _app(path: str, **state):
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    for k, v in state.items():
        at.session_state[k] = v
    return _ok(at.switch_page(path).run())


def test_run_history_filters_labels_and_draws_a_run(keys):
    at = _app(HISTORY)
    assert at.title[0].value == "Run history"
    table = at.dataframe[0].value
    assert set(k[:12] for k in keys) <= set(table["key"])
    at.text_input(key="rh_text").input(keys[1][:10]).run()
    _ok(at)
    assert any(c.value.startswith("1 of ") for c in at.caption)
    at.selectbox(key="rh_one").select(keys[1]).run()
    assert len(_ok(at).get("plotly_chart")) >= 1  # the run's charts, from the store
    at.text_input(key=f"rh_label.{keys[1]}").input("PGD-6 what-if")
    at.button(key="FormSubmitter:rh_label_form-Save label").click().run()
    assert get_runner().store.get(keys[1]).label == "PGD-6 what-if"


def test_run_history_deletes_a_run_only_after_confirmation():
    store = get_runner().store
    key = "d" * 20
    store.save(
        key,
        {"kind": "demo_delete", "seed": 0},
        RunResult(metrics={"x": 1.0}, tables={"t": pd.DataFrame({"v": [1]})}),
        seconds=0.1,
    )
    at = _app(HISTORY)
    at.text_input(key="rh_text").input(key).run()
    at.selectbox(key="rh_one").select(key).run()
    assert _ok(at).button(key="rh_delete").disabled
    at.checkbox(key=f"rh_sure.{key}").check().run()
    at.button(key="rh_delete").click().run()
    _ok(at)
    assert store.get(key, any_status=True) is None


def test_open_in_its_page_then_add_to_report_and_compare_with(keys):
    at = _app(HISTORY)
    at.selectbox(key="rh_one").select(keys[0]).run()
    at.button(key="rh_open").click().run()
    assert _ok(at).title[0].value == "White-box attacks"  # st.switch_page went there
    # AppTest reruns the page it was told last; the browser stays on the new page.
    at.switch_page("pages/whitebox.py")
    run_until(at, lambda a: bool(a.metric))
    assert any("Opened run" in c.value for c in at.caption)
    # The page's result has the two actions.
    at.button(key="rc_add.wb.a").click().run()
    _ok(at)
    rid = at.session_state["rc_report_id"]
    assert keys[0] in get_runner().store.get_report(rid)["keys"]
    assert at.button(key="rc_add.wb.a").disabled  # "In the report"
    at.button(key="rc_cmp.wb.a").click().run()
    _ok(at)
    assert at.title[0].value == "Compare runs"
    assert any("Choose 1 more run" in i.value for i in at.info)
    # The model card of the current model: a small scorecard of it is in the store (the
    # page's default one, computed when there is none, takes minutes on two cores).
    _small_scorecard()
    at.switch_page(REPORT).run()
    before = at.session_state["rc_report_id"]
    at.button(key="rep_card").click().run()

    def card_made(a) -> bool:
        rid = a.session_state["rc_report_id"]
        got = get_runner().store.get_report(rid)
        return rid != before and got is not None and got["title"].startswith("Model card:")

    run_until(at, card_made, timeout=300)
    draft = get_runner().store.get_report(at.session_state["rc_report_id"])
    kinds = [get_runner().store.get(k).kind for k in draft["keys"]]
    assert kinds[0] == "scorecard" and kinds.count("whitebox") >= 2


def test_compare_overlays_two_runs_of_one_kind(keys):
    at = _app(COMPARE, rc_compare_keys=[keys[0]])
    assert any("Choose 1 more run" in i.value for i in at.info)
    at.multiselect(key="cmp_runs").select(keys[1]).run()
    _ok(at)
    differs = at.dataframe[0].value
    assert differs["setting"].tolist() == ["pgd.steps"]
    metrics = at.dataframe[1].value
    assert any(c.startswith("Δ ") for c in metrics.columns)
    charts = at.get("plotly_chart")
    assert charts, "the overlaid charts"
    at.button(key="cmp_add").click().run()
    _ok(at)
    rid = at.session_state["rc_report_id"]
    assert get_runner().store.get_report(rid)["keys"] == keys


def test_report_page_orders_removes_and_explains_limits(keys):
    store = get_runner().store
    store.save_report("apptest-report", "Order test", "", list(keys))
    at = _app(REPORT, rc_report_id="apptest-report")
    assert at.title[0].value == "Report"
    items = [m.value for m in at.markdown if m.value[:3] in ("1. ", "2. ")]
    assert len(items) == 2 and keys[0][:8] in items[0]
    at.button(key=f"rep_down.{keys[0]}").click().run()
    assert store.get_report("apptest-report")["keys"] == [keys[1], keys[0]]
    assert any(m.value == "**Attacks not tried**" for m in _ok(at).markdown)
    assert at.get("download_button"), "HTML and ZIP exports"
    at.text_input(key="rep_title").input("Renamed")
    at.button(key="FormSubmitter:rep_text-Save title and summary").click().run()
    assert store.get_report("apptest-report")["title"] == "Renamed"
    at.button(key=f"rep_rm.{keys[1]}").click().run()
    assert store.get_report("apptest-report")["keys"] == [keys[0]]
    _ok(at)


def test_reports_pages_without_runs_explain_what_to_do(tmp_path, monkeypatch):
    at = _app(REPORT, rc_report_id="empty-report")
    assert any("The report is empty" in i.value for i in at.info)
    at = _app(COMPARE, rc_compare_keys=[])
    assert any("Choose 2 more runs" in i.value for i in at.info)
