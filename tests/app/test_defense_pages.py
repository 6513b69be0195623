"""AppTest: the sidebar's training method, and the Adversarial training and Defensive
distillation pages (small settings on a fast MLP so that the tests stay short)."""

from __future__ import annotations

from helpers.apptest import new_app, run_until
from helpers.report_check import check_section


def _with_model(arch: str = "mlp", method: str | None = None, **fields):
    """A session with a model trained from the sidebar (optionally by a defended method)."""
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    at.run()
    at.sidebar.selectbox(key="rc_arch").set_value(arch).run()
    if method is not None:
        at.sidebar.selectbox(key="rc_recipe_method").set_value(method).run()
        for name, value in fields.items():
            at.sidebar.slider(key=f"rc_recipe.{name}").set_value(value).run()
    at.sidebar.button(key="rc_train").click()
    run_until(
        at,
        lambda a: any("Current model" in s.value and arch in s.value for s in a.sidebar.success),
        timeout=300,
    )
    assert not at.exception
    return at


def test_sidebar_training_method_shows_its_settings_and_trains_a_defended_model():
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    at.run()
    method = at.sidebar.selectbox(key="rc_recipe_method")
    assert method.value == "standard"
    assert "FGSM-RS" in " ".join(method.options) or "fgsm_rs" in method.options
    keys = {w.key for w in at.sidebar.slider}
    assert "rc_recipe.adv_eps" not in keys  # standard training has no ε
    at.sidebar.selectbox(key="rc_arch").set_value("mlp").run()
    method.set_value("fgsm_rs").run()
    keys = {w.key for w in at.sidebar.slider}
    assert {"rc_recipe.adv_eps", "rc_recipe.adv_share"} <= keys
    assert "rc_recipe.trades_beta" not in keys
    at.sidebar.slider(key="rc_recipe.adv_eps").set_value(0.1).run()
    at.sidebar.button(key="rc_train").click()
    run_until(at, lambda a: any("FGSM-RS" in s.value for s in a.sidebar.success), timeout=300)
    # The Home page says how the model was trained and draws the robust accuracy per epoch.
    assert any("FGSM-RS ε=0.1" in c.value for c in at.caption)
    assert not at.exception


def test_adversarial_training_page_beats_the_undefended_model_and_makes_it_current():
    at = _with_model()
    at.switch_page("pages/adversarial_training.py").run()
    assert not at.exception
    assert at.title[0].value == "Adversarial training"
    assert at.radio(key="at_method").value == "fgsm_rs"
    at.slider(key="at_def_fgsm_rs.epochs").set_value(3)
    at.number_input(key="at_eval.n").set_value(100)
    at.checkbox(key="at_eval.cw").uncheck()
    at.number_input(key="at_eval.pgd.steps").set_value(10)
    at.button(key="FormSubmitter:at_form-Train and attack").click()
    run_until(at, lambda a: any("PGD accuracy at ε" in m.label for m in a.metric), timeout=400)
    assert len(at.get("plotly_chart")) == 2  # training curves, accuracy against ε
    sweep = at.dataframe[1].value
    at_eps = sweep[sweep["eps"] == 0.1].set_index("model")["accuracy"]
    # MLP, 3 epochs FGSM-RS at ε = 0.1 vs standard, PGD-10 (2 restarts) on 100 images:
    # 0.42-0.43 above over seeds 0-2 (bench/threshold_spread.py --only defenses).
    assert at_eps["defended"] > at_eps["undefended"] + 0.1, at_eps
    # Its report section (run history, compare, reports) draws the same charts.
    check_section(at.session_state["rc_job.adv_training"].result, {"training", "eps"}, {"PGD"})
    at.button(key="at_use").click()
    run_until(at, lambda a: any("FGSM-RS" in s.value for s in a.sidebar.success), timeout=120)
    assert not at.exception

    # The sidebar's controls now describe the current model, on this page and on the next
    # (under new widget keys, which a browser cannot fill with the old values).
    def method(a):
        return next(s.value for s in a.sidebar.selectbox if s.label == "Training method")

    assert method(at) == "fgsm_rs"
    at.switch_page("pages/home.py").run()
    assert method(at) == "fgsm_rs"
    assert next(s.value for s in at.sidebar.slider if s.label.startswith("Training ε")) == 0.1
    assert "rc_recipe_method" not in {s.key for s in at.sidebar.selectbox}
    # Home: the defended model's training accuracy is on its adversarial examples.
    assert any(m.label == "Training accuracy (perturbed)" for m in at.metric)
    assert not at.exception


def test_distillation_page_shows_masking_and_the_adaptive_attack():
    at = _with_model()
    at.switch_page("pages/defensive_distillation.py").run()
    assert not at.exception
    assert at.title[0].value == "Defensive distillation"
    at.text_input(key="dist.temperatures").set_value("1, 100")
    at.number_input(key="dist.n").set_value(100)
    at.checkbox(key="dist.cw").uncheck()
    at.button(key="FormSubmitter:dist.form-Distil and attack").click()
    run_until(at, lambda a: any("Adaptive PGD" in m.label for m in a.metric), timeout=400)
    assert len(at.get("plotly_chart")) == 2
    assert any("gradient masking" in e.value for e in at.error)  # the verdict
    # ... and the naive headline number says so next to it, naming the failed check.
    card = next(m for m in at.metric if m.label == "Naive PGD success at T=100")
    assert "⚠" in card.delta and "T=100" in card.help and "sanity checks below" in card.help
    table = at.dataframe[0].value
    naive = table[table["attack"].str.contains("naive")].set_index("temperature")["success_rate"]
    adaptive = table[table["attack"].str.contains("adaptive")].set_index("temperature")
    # Seeds 0-2 (bench/threshold_spread.py --only defenses): the naive success falls by
    # 0.69-0.79 from T = 1 to T = 100; the adaptive attack's is 1.000; a check warns.
    assert naive[100.0] < naive[1.0] - 0.3, naive
    assert adaptive["success_rate"][100.0] > 0.9
    section = check_section(
        at.session_state["rc_job.distillation"].result, {"success", "gradients"}, {"PGD"}
    )
    assert section.warnings  # the failed sanity check travels into reports
