"""Input preprocessing: transforms in front of the model, naive against adaptive attacks,
and feature squeezing as a detector."""

import streamlit as st

from robustcore.experiments.input_preprocessing import InputPreprocessing
from robustcore.ui import experiment, jobs, state
from robustcore.ui import input_preprocessing as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Input preprocessing",
    "**Input preprocessing** puts transforms in front of the model that remove the detail "
    "an adversarial perturbation relies on: bit-depth reduction and the median filter "
    "(Xu et al. 2018), Gaussian smoothing, JPEG compression (Guo et al. 2018), and a "
    "random transform (Xie et al. 2018). Their rounding has no gradient, so a naive "
    "gradient attack stalls and the model looks robust. Athalye et al. (2018) showed that "
    "this is **gradient masking**: BPDA (a differentiable approximation on the backward "
    "pass) and EOT (the gradient of the average over the random draws) break it. The page "
    "also uses the transforms as a **detector** (feature squeezing: does the prediction "
    "move when the input is squeezed?) and runs the adaptive attacker of He et al. (2017), "
    "who fools the model and stays under the detector's threshold.",
)
ds, target = state.require_target()
if target.inference is not None:
    st.caption(
        f"The sidebar puts the current model behind {target.inference.describe()}; this "
        "page attacks the model without it and puts the transforms chosen below in front "
        "(they start as the sidebar's when it is input preprocessing)."
    )
target = target.base

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, InputPreprocessing, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info("Choose the transforms and press **Preprocess and attack**.")
