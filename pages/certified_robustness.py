"""Certified robustness: randomized smoothing, certificates against the empirical attack."""

import streamlit as st

from robustcore.experiments.certified_robustness import CertifiedRobustness
from robustcore.ui import certified_robustness as ui
from robustcore.ui import experiment, jobs, state
from robustcore.ui.shell import page_setup

page_setup(
    "Certified robustness",
    "**Randomized smoothing** (Cohen, Rosenfeld & Kolter 2019) turns a model trained with "
    "Gaussian input noise into a classifier that returns the class the model picks most "
    "often under noise of σ. When that class wins with probability at least p_A > ½, no "
    "L2 perturbation smaller than σ · Φ⁻¹(p_A) can change the answer: a **certificate**, "
    "estimated from samples and wrong with probability at most α. This page certifies test "
    "images at several σ and draws the certified accuracy against the radius, next to what "
    "PGD-L2 on the smoothed classifier (with expectation over the noise, Salman et al. 2019) "
    "actually achieves: the certified curve is a lower bound on it.",
)
ds, target = state.require_target()

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, CertifiedRobustness, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info("Choose the noise levels and press **Certify and attack**.")
