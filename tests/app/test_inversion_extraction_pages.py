"""AppTest: the Model inversion and Model extraction pages run their defaults and show
their charts, tables and downloads."""

from __future__ import annotations

import time

from helpers.apptest import new_app, run_until


def _with_model(arch: str = "mlp"):
    """A session with a fast model chosen in the sidebar and trained (or loaded)."""
    at = new_app()
    at.session_state["rc_autoload_done"] = True  # not the default CNN from earlier tests
    at.run()
    at.sidebar.selectbox(key="rc_arch").set_value(arch).run()
    at.sidebar.button(key="rc_train").click()
    run_until(
        at,
        lambda a: any("Current model" in s.value and arch in s.value for s in a.sidebar.success),
    )
    return at


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_inversion_page_shows_reconstructions_next_to_class_means():
    at = _with_model()
    at.switch_page("pages/model_inversion.py").run()
    assert not at.exception
    assert at.title[0].value == "Model inversion"
    assert any("Run model inversion" in i.value for i in at.info)
    # Before the run: its time on this machine, from measured prices.
    assert any(
        c.value.startswith("Time: with the default settings, this run should take about")
        for c in at.caption
    ), [c.value for c in at.caption]
    at.button(key="FormSubmitter:inv_form-Run model inversion").click()
    run_until(at, lambda a: any(m.label == "Classes identified" for m in a.metric), timeout=180)
    assert len(at.get("plotly_chart")) == 2  # reconstruction grid and descent curve
    table = at.dataframe[0].value
    assert list(table["class"]) == [str(i) for i in range(10)]
    # The model is confident in every reconstruction, and on an MLP most reconstructions
    # are closest to their own class mean. Training seeds 0-4 (bench/threshold_spread.py):
    # lowest confidence 0.990, 100 % identified.
    assert table["confidence"].min() > 0.9
    assert float(_metric(at, "Classes identified").rstrip("%")) >= 70
    assert len(at.get("download_button")) == 3

    # A new session on the same model is shown the stored default result at once.
    fresh = _with_model()
    fresh.switch_page("pages/model_inversion.py").run()
    assert any(m.label == "Classes identified" for m in fresh.metric)
    assert not any("Run model inversion" in i.value for i in fresh.info)
    assert not any(c.value.startswith("Time: with the default") for c in fresh.caption)
    assert _metric(fresh, "Classes identified") == _metric(at, "Classes identified")


def test_extraction_page_draws_accuracy_and_fidelity_against_the_budget():
    at = _with_model()
    at.switch_page("pages/model_extraction.py").run()
    assert not at.exception
    assert at.title[0].value == "Model extraction"
    budgets = at.multiselect[0]
    assert budgets.label == "Query budgets" and budgets.value == [100, 250, 500, 1000]
    # Two budgets keep the test short; outputs and sources stay at their defaults.
    budgets.set_value([100, 1000])
    at.button(key="FormSubmitter:ext_form-Run model stealing").click()
    run_until(at, lambda a: any(m.label == "Best fidelity" for m in a.metric), timeout=420)
    assert len(at.get("plotly_chart")) == 1
    curve = at.dataframe[0].value
    # 2 budgets × 2 outputs × 2 sources (in-distribution, other dataset).
    assert len(curve) == 8
    assert set(curve["query_source"]) == {"in_distribution", "other_dataset"}
    assert set(curve["output"]) == {"probabilities", "label"}
    # Seeds 0-4 of the model and the students (bench/threshold_spread.py): each line rises by
    # 0.12-0.29 from 100 to 1,000 queries.
    for _, line in curve.groupby(["output", "query_source"]):
        line = line.sort_values("budget")
        assert line["fidelity"].iloc[-1] > line["fidelity"].iloc[0], line
    assert not at.warning  # every budget fits every pool
    assert len(at.get("download_button")) == 2

    # The same request from a new session is served from the run store.
    again = _with_model()
    again.switch_page("pages/model_extraction.py").run()
    again.multiselect[0].set_value([100, 1000])
    t0 = time.monotonic()
    again.button(key="FormSubmitter:ext_form-Run model stealing").click()
    run_until(again, lambda a: any(m.label == "Best fidelity" for m in a.metric), timeout=30)
    assert time.monotonic() - t0 < 10
    assert again.dataframe[0].value["fidelity"].tolist() == curve["fidelity"].tolist()
