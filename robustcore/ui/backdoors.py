"""Streamlit pieces of the Backdoors page: the BadNets and hidden-trigger forms, their
results, and both attacks side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..attacks.poisoning import BadNets, HiddenTrigger, Trigger
from ..data import Dataset
from ..experiments.backdoors import SWEEPS, Backdoors, BackdoorsResult
from ..experiments.base import Target
from ..experiments.hidden_trigger import EPS_CHOICES, HiddenTriggerBackdoor, HiddenTriggerResult
from ..reports.sections.backdoors import sweep_figure
from ..viz import image_grid
from ..viz.backdoors import (
    INTERPRETATION,
    attack_comparison_figure,
    hidden_trigger_figure,
    trend,
)
from . import notes
from .downloads import download_table
from .forms import param_values
from .triggers import (
    checked,
    class_select,
    downloads,
    gallery,
    percent_table,
    values_select,
)


def badnets_form(
    ds: Dataset, target: Target, trigger: Trigger | None, victim: str | None
) -> Backdoors | None:
    """The BadNets sweep's controls; the experiment when Run was pressed (and valid)."""
    start = Backdoors.for_dataset(ds)
    sweep = st.selectbox(
        "Sweep over",
        list(SWEEPS),
        format_func=lambda s: SWEEPS[s].label,
        key="bd_sweep",
        help="poison rate, trigger size, the noise level of a blended noise trigger, or the "
        "Gaussian noise the defender adds while training.",
    )
    info = SWEEPS[sweep]
    st.caption(info.help)
    with st.form("bd_form"):
        c1, c2 = st.columns(2)
        target_class = class_select(ds, "Target class", 0, key="bd_target", container=c1)
        attack = param_values(BadNets, key="bd_cfg", container=c2)
        rate = param_values(Backdoors, key="bd_cfg", only=("poison_rate",), container=c2)
        values = values_select(
            f"{info.label} values (one model each)",
            info.choices,
            getattr(start, info.field),
            key=f"bd_values.{sweep}",
            pct=info.percent,
        )
        pressed = st.form_submit_button("Run BadNets", type="primary")
    if not pressed or trigger is None:
        return None
    raw = {
        **rate,
        "sweep": sweep,
        info.field: values,
        "target_class": target_class,
        "trigger": trigger,
        "attack": attack,
        "victim_arch": victim,
    }
    return checked(Backdoors, raw, target, ds)


def hidden_form(
    ds: Dataset, target: Target, trigger: Trigger | None, victim: str | None
) -> HiddenTriggerBackdoor | None:
    """The hidden trigger's controls; the experiment when Run was pressed (and valid)."""
    start = HiddenTriggerBackdoor.for_dataset(ds)
    st.caption(
        "The attacker's feature extractor is the clean model above. *head*: the victim "
        "retrains only the last layer on top of it (the paper's setting); *full*: the "
        "victim retrains the whole network from scratch (harder for the attacker)."
    )
    with st.form("ht_form"):
        c1, c2 = st.columns(2)
        source = class_select(
            ds, "Source class (gets the trigger)", start.source_class, key="ht_src", container=c1
        )
        target_class = class_select(
            ds, "Target class (poisons)", start.target_class, key="ht_tgt", container=c2
        )
        attack = param_values(HiddenTrigger, key="ht_cfg")
        eps = values_select(
            "ε values (one set of poisons and one victim each)",
            EPS_CHOICES,
            start.eps,
            key="ht_eps",
            pct=False,
        )
        pressed = st.form_submit_button("Run hidden trigger", type="primary")
    if not pressed or trigger is None:
        return None
    raw = {
        "eps": eps,
        "source_class": source,
        "target_class": target_class,
        "trigger": trigger,
        "attack": attack,
        "victim_arch": victim,
    }
    return checked(HiddenTriggerBackdoor, raw, target, ds)


def show_backdoor(res: BackdoorsResult, ds: Dataset) -> None:
    """The BadNets sweep: metrics, the chart, the gallery, the table and downloads."""
    label = res.sweep_label
    cols = st.columns(4)
    cols[0].metric("Unpoisoned model accuracy", f"{res.clean_model_accuracy:.1%}")
    cols[1].metric(
        "Clean accuracy (poisoned)",
        f"{res.clean_accuracy:.1%}",
        delta=f"{res.clean_accuracy - res.clean_model_accuracy:+.1%}",
        help=f"At {label.lower()} {res.headline_value:g}.",
    )
    cols[2].metric(
        "Attack success",
        f"{res.attack_success:.1%}",
        help="Triggered test inputs (not of the target class) classified as the attacker's label.",
    )
    cols[3].metric("Poisoned training points", f"{res.n_poison:,}")
    notes.accuracy_basis(ds.n_test, ds)
    table = res.sweep()
    st.plotly_chart(sweep_figure(res), width="stretch", key="bd_chart")
    sentence = trend(table, res.sweep_axis, label.lower(), pct=res.percent_axis)
    st.markdown(f"{sentence} {INTERPRETATION[res.sweep_axis]}")
    images, rows = res.gallery()
    gallery(
        images,
        rows,
        ds,
        key="bd_gallery",
        caption=f"Triggered test images and what the poisoned model "
        f"({label.lower()} {res.headline_value:g}) predicts.",
    )
    percent_table(table, key="bd_table")
    downloads(res, table, "badnets_sweep")


def show_hidden(res: HiddenTriggerResult, ds: Dataset) -> None:
    """The hidden-trigger ε sweep: metrics, chart, poisons, gallery, table, downloads."""
    cols = st.columns(4)
    cols[0].metric(
        "Clean accuracy", f"{res.clean_accuracy:.1%}", help=f"At ε = {res.headline_eps:g}."
    )
    cols[1].metric(
        "Attack success",
        f"{res.attack_success:.1%}",
        delta=f"{res.attack_success - res.baseline_attack_success:+.1%} vs no poison",
        help="Triggered source-class test images classified as the target class.",
    )
    cols[2].metric("Poisons (clean label)", f"{res.n_poison:,}")
    cols[3].metric(
        "Victim retrains",
        "last layer" if res.setting == "head" else "whole network",
        help="head: frozen clean features, new last layer (the paper's setting); full: "
        "the whole network trained from scratch on the poisoned data.",
    )
    notes.accuracy_basis(ds.n_test, ds)
    table = res.sweep()
    st.plotly_chart(hidden_trigger_figure(table), width="stretch", key="ht_chart")
    st.markdown(
        f"{trend(table, 'eps', 'ε')} ε is the attacker's budget: a larger ε lets a poison "
        "move further from its genuine image, so its features can reach the triggered "
        "source images, but the change also becomes visible (compare the poisons below)."
    )
    poisons = res.poisons()
    if ds.modality == "image" and poisons is not None:
        orig, pois = poisons
        st.plotly_chart(
            image_grid(
                pois,
                [f"poison (ε = {res.headline_eps:g})" for _ in range(len(pois))],
                perturbations=pois - orig,
                ncols=8,
            ),
            width="stretch",
            key="ht_poisons",
        )
        st.caption(
            "Poisons keep their correct label and show no trigger; the heat map is the "
            "change from the original image (amplified)."
        )
    images, rows = res.gallery()
    gallery(
        images,
        rows,
        ds,
        key="ht_gallery",
        caption="Source-class test images with the trigger and the victim's prediction.",
    )
    percent_table(table, key="ht_table")
    downloads(res, table, "hidden_trigger_sweep")


def show_side_by_side(badnets: BackdoorsResult | None, hidden: HiddenTriggerResult | None) -> None:
    """Compare the latest BadNets and hidden-trigger results."""
    if badnets is None or hidden is None:
        st.info("Run BadNets and the hidden trigger (tabs above) to compare them here.")
        return
    b, h = badnets, hidden
    rows = pd.DataFrame(
        [
            {
                "attack": "BadNets",
                "poisons": b.n_poison,
                "labels of poisons": "changed to the attacker's",
                "trigger in training data": "yes",
                "clean_accuracy": b.clean_accuracy,
                "attack_success": b.attack_success,
                "measured on": "triggered test inputs of every other class",
            },
            {
                "attack": "Hidden trigger",
                "poisons": h.n_poison,
                "labels of poisons": "correct (clean label)",
                "trigger in training data": "no",
                "clean_accuracy": h.clean_accuracy,
                "attack_success": h.attack_success,
                "measured on": "triggered test inputs of the source class",
            },
        ]
    )
    st.plotly_chart(
        attack_comparison_figure(
            {
                "BadNets": {"clean_accuracy": b.clean_accuracy, "attack_success": b.attack_success},
                f"Hidden trigger (ε = {h.headline_eps:g})": {
                    "clean_accuracy": h.clean_accuracy,
                    "attack_success": h.attack_success,
                },
            }
        ),
        width="stretch",
        key="cmp_chart",
    )
    weaker = h.attack_success < b.attack_success
    st.markdown(
        "BadNets shows the network the trigger with the wrong label, so it learns the "
        "shortcut directly; the hidden trigger never shows it and must reach it through "
        f"feature collisions within ε, which is {'weaker' if weaker else 'not weaker'} here "
        f"({h.attack_success:.0%} against {b.attack_success:.0%}), but every poison "
        "carries its correct label and no trigger, so checking the labels finds nothing."
    )
    percent_table(rows, key="cmp_table")
    download_table(rows, "backdoor_comparison.csv", label="Comparison (CSV)", key="dl.cmp")
