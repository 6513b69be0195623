"""Streamlit pieces of the Label flipping page: the form and the result view."""

from __future__ import annotations

import streamlit as st

from ..attacks.poisoning import LabelFlip
from ..data import Dataset
from ..experiments.base import Target
from ..experiments.label_flipping import (
    DEFAULT_FLIP_RATES,
    DEFAULT_TARGETED_RATES,
    RATE_CHOICES,
    LabelFlipping,
    LabelFlippingResult,
)
from ..viz import confusion_matrix_figure
from ..viz.label_flipping import label_flip_figure
from . import notes
from .forms import param_values
from .triggers import checked, class_select, downloads, percent_table, values_select


def flip_form(ds: Dataset, target: Target, victim: str | None) -> LabelFlipping | None:
    """Random or targeted flipping at several rates; the experiment when Run was pressed."""
    start = LabelFlipping.for_dataset(ds)
    mode = st.radio(
        "Flipping",
        ["random", "targeted"],
        format_func={"random": "Random (untargeted)", "targeted": "Targeted (A → B)"}.get,
        horizontal=True,
        key="lf_mode",
    )
    with st.form("lf_form"):
        c1, c2, c3 = st.columns(3)
        classes = {}
        if mode == "targeted":
            classes["source_class"] = class_select(
                ds, "Class A (flipped)", start.source_class, key="lf_a", container=c1
            )
            classes["target_class"] = class_select(
                ds, "Class B (new label)", start.target_class, key="lf_b", container=c2
            )
        else:
            c1.caption("Each flipped label goes to a uniformly random *other* class.")
        attack = param_values(
            LabelFlip, key="lf_attack", only=("seed",), values={"mode": mode}, container=c3
        )
        rates = values_select(
            "Flip rates (one model each)",
            RATE_CHOICES,
            DEFAULT_FLIP_RATES if mode == "random" else DEFAULT_TARGETED_RATES,
            key=f"lf_rates.{mode}",
            pct=True,
        )
        st.caption(
            "Share of class A relabelled B."
            if mode == "targeted"
            else "Share of the whole training set given a random wrong label."
        )
        pressed = st.form_submit_button("Run label flipping", type="primary")
    if not pressed:
        return None
    raw = {"rates": rates, **classes, "attack": attack, "victim_arch": victim}
    return checked(LabelFlipping, raw, target, ds)


def show_label_flip(res: LabelFlippingResult, ds: Dataset) -> None:
    """Label flipping: accuracy against flip rate, per class, confusion before and after."""
    table = res.sweep()
    per_class = res.per_class()
    cols = st.columns(3)
    cols[0].metric(f"Accuracy at flip rate {res.lowest_rate:.0%}", f"{res.accuracy_lowest:.1%}")
    cols[1].metric(
        f"Accuracy at flip rate {res.highest_rate:.0%}",
        f"{res.accuracy_highest:.1%}",
        delta=f"{res.accuracy_highest - res.accuracy_lowest:+.1%}",
    )
    cols[2].metric("Models", f"{res.n_models}", help="One per flip rate (0 % is the clean model).")
    notes.accuracy_basis(ds.n_test, ds)
    names = [str(c) for c in ds.class_names]
    targeted = res.mode == "targeted"
    highlight = [names[res.source_class], names[res.target_class]] if targeted else names
    st.plotly_chart(
        label_flip_figure(table, per_class, highlight=highlight),
        width="stretch",
        key="lf_chart",
    )
    if targeted:
        st.markdown(
            "Targeted flipping hits class A (coloured) and leaves the other classes almost "
            "untouched, so overall accuracy hides the damage: look at class A's line."
        )
    else:
        st.markdown(
            "Random flips spread their damage over every class. Networks resist moderate "
            "random label noise, because an image's true class still gets more labels than "
            "any single wrong class; the damage grows quickly once most labels are wrong."
        )
    left, right = st.columns(2)
    for col, cm, title, k in (
        (left, res.confusion_lowest(), f"Confusion at flip rate {res.lowest_rate:.0%}", "lf_cm0"),
        (
            right,
            res.confusion_highest(),
            f"Confusion at flip rate {res.highest_rate:.0%}",
            "lf_cm1",
        ),
    ):
        col.plotly_chart(
            confusion_matrix_figure(cm.to_numpy(), list(cm.columns), title=title),
            width="stretch",
            key=k,
        )
    percent_table(table, key="lf_table")
    with st.expander("Per-class accuracy"):
        wide = per_class.pivot(index="class", columns="rate", values="accuracy")
        wide.columns = [f"rate {c:.0%}" for c in wide.columns]
        st.dataframe(wide.reset_index(), hide_index=True)
    downloads(res, table, "label_flipping")
