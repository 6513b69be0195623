"""AppTest: the Black-box attacks page runs SimBA and ZOO through the query interface, draws
success against queries and the query histogram, fills a transfer matrix, and explains bad
choices."""

from __future__ import annotations

from helpers.apptest import button, has_metric, new_app, run_until, trained_app

PAGE = "pages/blackbox.py"


def _pct(at, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label).rstrip("%"))


def test_query_attacks_and_transfer_matrix():
    at = trained_app(PAGE)
    at.slider(key="bb_n").set_value(20)
    at.button[0].click()  # Run black-box attacks
    at.run()
    run_until(at, has_metric("SimBA (DCT) success"), timeout=240)
    # The default model (small_cnn, 5 epochs) with the pages' default settings. Seeds 0-2 of
    # the model, images and attacks (bench/threshold_spread.py): 100 % for all three.
    for name in ("SimBA (pixel)", "SimBA (DCT)", "ZOO"):
        assert _pct(at, f"{name} success") >= 80, name
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Success rate against queries" in s for s in specs)
    assert any("Queries each successful attack needed" in s for s in specs)

    at.multiselect(key="bb_tr_archs").set_value(["small_cnn", "mlp"])
    at.slider(key="bb_tr_n").set_value(50)
    button(at, "Run transfer matrix").click()
    at.run()
    run_until(at, has_metric("Transfer (off-diagonal), mean"), timeout=240)
    white, transfer = (
        _pct(at, "White-box (diagonal), mean"),
        _pct(at, "Transfer (off-diagonal), mean"),
    )
    # Seeds 0-4 (bench/threshold_spread.py): white-box leads by 36-56 points.
    assert white > transfer, (white, transfer)
    assert any("Transfer success" in c.proto.spec for c in at.get("plotly_chart"))


def test_bad_choices_are_explained():
    at = trained_app(PAGE)
    at.multiselect(key="bb_attacks").set_value([])
    at.button[0].click()
    at.run()
    assert not at.exception
    assert any("at least one attack" in e.value for e in at.error)
    at.multiselect(key="bb_tr_archs").set_value(["mlp"])
    button(at, "Run transfer matrix").click()
    at.run()
    assert any("two different architectures" in e.value for e in at.error)


def test_tabular_data_gets_feature_attacks():
    """On tabular data the DCT basis is not offered; SimBA moves one feature at a time."""
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    at.run()
    at.sidebar.selectbox(key="rc_dataset_choice").set_value("breast_cancer").run()
    at.sidebar.selectbox(key="rc_arch").set_value("mlp").run()
    at.sidebar.button(key="rc_train").click()
    run_until(
        at,
        lambda a: any("mlp" in s.value and "breast_cancer" in s.value for s in a.sidebar.success),
    )
    at.switch_page(PAGE).run()
    assert at.multiselect(key="bb_attacks").value == ["simba_pixel", "zoo"]
    at.slider(key="bb_n").set_value(20)
    at.button[0].click()
    at.run()
    run_until(at, has_metric("ZOO success"), timeout=120)
    # Seeds 0-4 of the MLP, rows and attack (bench/threshold_spread.py): 100 %.
    assert _pct(at, "ZOO success") >= 80
    assert has_metric("SimBA (pixel) success")(at)
