"""AppTest: the Input preprocessing page on a fast MLP with tiny settings: the naive
attack's apparent robustness, BPDA breaking it, feature squeezing and its adaptive
attacker, the sanity-check verdict and the report section."""

from __future__ import annotations

from helpers.apptest import app_with_arch, run_until
from helpers.report_check import check_section


def test_preprocessing_page_shows_masking_bpda_and_feature_squeezing():
    at = app_with_arch("mlp")
    at.switch_page("pages/input_preprocessing.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Input preprocessing"
    # Xu et al.'s MNIST squeezer is the default chain.
    assert at.slider(key="pre.defense.bits").value == 1
    assert at.selectbox(key="pre.defense.median").value == 2
    at.text_input(key="pre.eps").set_value("0, 0.3")
    at.number_input(key="pre.n").set_value(40)
    at.number_input(key="pre.pgd.steps").set_value(5)
    at.number_input(key="pre.n_calibration").set_value(100)
    at.number_input(key="pre.n_cw").set_value(10)
    at.number_input(key="pre.n_adaptive").set_value(10)
    at.slider(key="pre.adaptive.binary_search_steps").set_value(1)
    at.number_input(key="pre.adaptive.max_iter").set_value(30)
    at.button(key="FormSubmitter:pre.form-Preprocess and attack").click()
    run_until(at, lambda a: any(m.label == "Adaptive attacker detected" for m in a.metric), 300)
    labels = {m.label for m in at.metric}
    assert {"Naive PGD accuracy at ε=0.3", "BPDA PGD accuracy at ε=0.3", "C&W detected"} <= labels
    assert len(at.get("plotly_chart")) == 3  # accuracy against ε, clean cost, ROC
    # The verdict names the masking, and the naive headline number carries the flag.
    assert any("gradient masking" in e.value for e in at.error)
    card = next(m for m in at.metric if m.label == "Naive PGD accuracy at ε=0.3")
    assert "⚠" in card.delta and "sanity checks below" in card.help
    sweep = at.dataframe[1].value.set_index(["attack", "eps"])["accuracy"]
    # MLP, 1-bit + 2×2 median, 40 images: the naive PGD's rounding has no gradient, so it
    # only moves by its random start; BPDA-5 lowers the accuracy (not to 0: after a 1-bit
    # depth only the pixels within ε of ½ can change). Seeds 0-2 of the MLP: naive
    # 0.825-0.875 at ε = 0.3, BPDA 0.55-0.575 (a gap of 0.25-0.30).
    naive = sweep[("Naive PGD (exact gradients)", 0.3)]
    bpda = sweep[("BPDA PGD (adaptive)", 0.3)]
    assert naive > bpda + 0.15, sweep
    record = at.session_state["rc_job.preprocessing"].result
    section = check_section(record, {"eps", "clean", "roc"}, {"PGD", "C&W"})
    assert section.warnings  # the naive attack's failed check travels into reports
    assert not at.exception
