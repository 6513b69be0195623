"""AppTest: the robustness scorecard on Home runs on the current model and shows its table,
chart and downloads."""

from __future__ import annotations

from helpers.apptest import button, has_metric, run_until, trained_app


def _widget(at, key):
    for kind in (at.slider, at.number_input):
        try:
            return kind(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def test_scorecard_runs_on_the_current_model():
    at = trained_app()
    assert any("Run scorecard" in i.value for i in at.info)
    for key, value in {"n": 60, "n_query": 10, "members": 100}.items():
        _widget(at, f"sc.image.{key}").set_value(value)
    button(at, "Run scorecard").click()  # below the model's Add to report / Compare with
    at.run()
    run_until(at, has_metric("Membership AUC"), timeout=180)
    table = at.dataframe[-1].value
    assert len(table) == 7 and {"result", "verdict", "page"} <= set(table.columns)
    assert any("Accuracy of the current model" in c.proto.spec for c in at.get("plotly_chart"))
    assert not at.exception
