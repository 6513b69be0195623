"""Adversarial detector: a detector in front of the model, naive against adaptive attacks."""

import streamlit as st

from robustcore.experiments.adversarial_detector import AdversarialDetector
from robustcore.ui import adversarial_detector as ui
from robustcore.ui import experiment, jobs, state
from robustcore.ui.shell import page_setup

page_setup(
    "Adversarial detector",
    "An **adversarial detector** is a second network that tells clean inputs from "
    "adversarial ones; in front of the model it makes a *guarded model* that abstains on "
    "what it flags. This page trains one on examples of a chosen attack: a small network "
    "on the model's penultimate features (Metzen et al. 2017) or a binary classifier on "
    "the inputs (as ART's BinaryInputDetector). It shows how well the detector sees that "
    "attack and others, at the ε it was trained on and at others, and what its threshold "
    "costs on clean images. Then the **adaptive attack** of Carlini & Wagner (2017, "
    '"Adversarial Examples Are Not Easily Detected") attacks classifier and detector '
    "together, within the same ε: a detector is only worth what it holds against it.",
)
ds, target = state.require_target()

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, AdversarialDetector, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info(
        "Choose the detector and the attack it learns from, and press **Train and attack "
        "the detector**."
    )
