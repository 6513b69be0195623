"""AppTest: the Certified robustness page on a tiny setting (a fast MLP, one σ, 100
samples, 20 images): its metrics, both charts, the sanity check and the report section."""

from __future__ import annotations

from helpers.apptest import new_app, run_until
from helpers.report_check import check_section


def test_certified_page_certifies_and_attacks_the_smoothed_classifier():
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    at.run()
    at.sidebar.selectbox(key="rc_arch").set_value("mlp").run()
    at.sidebar.slider(key="rc_recipe.epochs").set_value(1).run()
    at.sidebar.button(key="rc_train").click()
    run_until(
        at,
        lambda a: any("Current model" in s.value and "mlp" in s.value for s in a.sidebar.success),
        timeout=120,
    )
    at.switch_page("pages/certified_robustness.py").run()
    assert not at.exception
    assert at.title[0].value == "Certified robustness"
    at.text_input(key="cert.sigmas").set_value("0.25")
    at.number_input(key="cert.images").set_value(20)
    at.number_input(key="cert.n0").set_value(20)
    at.number_input(key="cert.n").set_value(100)
    at.number_input(key="cert.attack_images").set_value(10)
    at.text_input(key="cert.radii").set_value("0.2")
    at.number_input(key="cert.samples").set_value(2)
    at.number_input(key="cert.pgd.steps").set_value(3)
    at.button(key="FormSubmitter:cert.form-Certify and attack").click()
    run_until(at, lambda a: any(m.label.startswith("Certified at r=") for m in a.metric), 120)
    labels = [m.label for m in at.metric]
    assert "Certified at r=0.2, σ=0.25" in labels and "Smoothed clean accuracy, σ=0.25" in labels
    card = next(m for m in at.metric if m.label == "Certified at r=0.2, σ=0.25")
    assert card.value.endswith("%") and "empirical" in card.delta
    assert len(at.get("plotly_chart")) == 2  # certified vs empirical; clean accuracy
    assert any("must not fall below the circles" in c.value for c in at.caption)
    assert any("empirical accuracy at least the certified" in s.value for s in at.success)
    summary = at.dataframe[0].value
    assert summary["sigma"].tolist() == [0.25]
    # n = 100 samples certify radii up to 0.25 · Φ⁻¹(0.001^(1/100)) ≈ 0.38.
    assert 0.3 < float(summary["max_radius"].iloc[0]) < 0.4
    empirical = at.dataframe[1].value
    assert empirical["radius"].tolist() == [0.0, 0.2]
    assert (empirical["contradictions"] == 0).all()
    check_section(at.session_state["rc_job.certified"].result, {"certified", "clean"}, {"PGD"})
