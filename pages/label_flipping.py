"""Label flipping: accuracy against the share of flipped labels, per class."""

import streamlit as st

from robustcore.attacks.poisoning import LabelFlip
from robustcore.attacks.poisoning.experiments import DEFAULT_FLIP_RATES, DEFAULT_TARGETED_RATES
from robustcore.runs.poisoning_job import label_flip_job, label_flip_spec
from robustcore.ui import jobs, state
from robustcore.ui import poisoning as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Label flipping",
    "The simplest poisoning attack changes no input at all, only labels (Biggio, Nelson & "
    "Laskov 2012; Xiao et al. 2012). **Random** flips give a share of the training set a "
    "wrong label drawn at random; **targeted** flips relabel part of one class A as class "
    "B, teaching the model to confuse exactly those two. Each flip rate below trains one "
    "model on the flipped labels and tests it on the clean test set.",
)

ds, _model, ref = state.require_model()
arch, recipe = ui.victim_model(ds, ref, key="lf_victim")

mode = st.radio(
    "Flipping",
    ["random", "targeted"],
    format_func={"random": "Random (untargeted)", "targeted": "Targeted (A → B)"}.get,
    horizontal=True,
    key="lf_mode",
)
with st.form("lf_form"):
    c1, c2, c3 = st.columns(3)
    a0 = min(7, ds.num_classes - 1)
    b0 = 1 if a0 != 1 else 0
    if mode == "targeted":
        a = ui.class_select(ds, "Class A (flipped)", a0, key="lf_a", container=c1)
        b = ui.class_select(ds, "Class B (new label)", b0, key="lf_b", container=c2)
    else:
        a, b = a0, b0
        c1.caption("Each flipped label goes to a uniformly random *other* class.")
    seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="lf_seed")
    help_rate = (
        "Share of class A relabelled B."
        if mode == "targeted"
        else "Share of the whole training set given a random wrong label."
    )
    rates = ui.values_select(
        "Flip rates (one model each)",
        (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        DEFAULT_FLIP_RATES if mode == "random" else DEFAULT_TARGETED_RATES,
        key=f"lf_rates.{mode}",
        pct=True,
    )
    st.caption(help_rate)
    run = st.form_submit_button("Run label flipping", type="primary")

if run:
    if not rates:
        st.error("Pick at least one flip rate.")
    elif mode == "targeted" and a == b:
        st.error("Class A and class B must differ.")
    else:
        config = LabelFlip(mode=mode, source_class=a, target_class=b, seed=int(seed))
        args = (ds, arch, recipe, config, rates)
        jobs.start("label_flip", label_flip_spec(*args), label_flip_job(*args))

record = jobs.show("label_flip")
if record is not None:
    ui.show_label_flip(record, ds)
