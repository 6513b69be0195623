"""Adversarial training: build a defended model and attack it next to the undefended one."""

import streamlit as st

from robustcore.experiments.adversarial_training import AdversarialTraining
from robustcore.ui import adversarial_training as ui
from robustcore.ui import experiment, jobs, state
from robustcore.ui.shell import page_setup

page_setup(
    "Adversarial training",
    "Train on the attacks themselves. **FGSM-RS** (Wong et al. 2020) takes one FGSM step "
    "from a random start per batch; **PGD-AT** (Madry et al. 2018) trains on PGD examples; "
    "**TRADES** (Zhang et al. 2019) adds β · KL(f(x) ‖ f(x′)) to the cross-entropy. The "
    "defended model is attacked with the same PGD (with restarts) and C&W as the undefended "
    "model of the same recipe, so the chart shows what the defense really buys, what it "
    "costs in clean accuracy and training time, and where it stops helping (ε beyond the "
    "training ε).",
)
ds, target = state.require_target()

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, AdversarialTraining, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info("Choose a method and press **Train and attack**.")
