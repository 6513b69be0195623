"""White-box evasion: FGSM, PGD and Carlini–Wagner against the current model."""

import streamlit as st

from robustcore.experiments.whitebox import WhiteBox
from robustcore.ui import experiment, jobs, state
from robustcore.ui import whitebox as ui
from robustcore.ui.shell import page_setup

page_setup(
    "White-box attacks",
    "The attacker knows the model, so it can follow the gradient of the loss with respect "
    "to the input. **FGSM** takes one step (Goodfellow et al. 2015); **PGD** takes many "
    "small steps and projects back into the ε-ball (Madry et al. 2018); **Carlini–Wagner** "
    "searches for each input's smallest change that flips the decision (Carlini & Wagner "
    "2017). Watch accuracy fall as the budget ε grows, and check the evaluation itself "
    "with the sanity checks of Carlini et al. (2019).",
)

ds, target = state.require_target()
runs = ui.form(ds, target)
if runs is not None:
    ui.start(ds, runs)

res_a = experiment.show(ui.SLOTS[0], WhiteBox, ds, target)
waiting_b = jobs.current(ui.SLOTS[1]) is not None
res_b = experiment.show(ui.SLOTS[1], WhiteBox, ds, None) if waiting_b else None
if res_a is not None:
    # One slot either way, so the charts below keep their place when the what-if finishes.
    note = st.empty()
    if waiting_b and res_b is None:
        note.caption("The what-if configuration is still running; its lines appear when done.")
    ui.results(ds, res_a, res_b)
elif jobs.current(ui.SLOTS[0]) is None:
    st.info(
        "Choose the attacks and the ε grid, then press **Run attacks**. The defaults (FGSM "
        "and PGD-10 over seven budgets on 500 test images, C&W on 100, the sanity checks) "
        "take the time estimated above on this machine. For a defended model the what-if "
        "attacks its undefended twin too, up to twice as long. A run you did before is shown "
        "at once from the result store."
    )
