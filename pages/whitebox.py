"""White-box evasion: FGSM, PGD and Carlini–Wagner against the current model."""

import streamlit as st

from robustcore.ui import evasion, jobs, state
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

ds, model, ref = state.require_model()
requests = evasion.plan_form(ds, ref)
if requests is not None:
    evasion.start(ds, model, ref, requests)

rec_a = jobs.show("wb.a")
rec_b = jobs.show("wb.b") if jobs.current("wb.b") is not None else None
if rec_a is not None:
    if jobs.current("wb.b") is not None and rec_b is None:
        st.caption("The what-if configuration is still running; its lines appear when done.")
    evasion.results(ds, rec_a, rec_b)
elif jobs.current("wb.a") is None:
    st.info(
        "Choose the attacks and the ε grid, then press **Run attacks**. The defaults (FGSM "
        "and PGD-10 over seven budgets on 500 test images, C&W on 100) take about 20 s on "
        "two CPU cores; a run you did before is shown at once from the result store."
    )
