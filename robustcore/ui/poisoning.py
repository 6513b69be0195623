"""Streamlit pieces of the poisoning pages: victim choice, trigger designer, result views."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ..attacks.poisoning import SWEEPS, Trigger
from ..data import Dataset
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..runs import RunRecord
from ..viz import confusion_matrix_figure, image_grid
from ..viz.poisoning import (
    activation_projection_figure,
    attack_comparison_figure,
    backdoor_sweep_figure,
    before_after_figure,
    hidden_trigger_figure,
    label_flip_figure,
)
from .downloads import download_json, download_table
from .forms import param_form
from .state import ModelRef

PERCENT_COLUMNS = (
    "clean_accuracy",
    "attack_success",
    "triggered_accuracy",
    "baseline_attack_success",
    "accuracy",
    "class_a_accuracy",
    "a_predicted_as_b",
)


def victim_model(ds: Dataset, ref: ModelRef, *, key: str) -> tuple[str, TrainRecipe]:
    """The architecture and recipe every poisoned model is trained with.

    The session's model when it was trained here (so the clean reference comes from the
    zoo at once); otherwise a built-in architecture chosen on the page.
    """
    if ref.source == "zoo" and ref.arch and ref.recipe is not None:
        recipe = TrainRecipe.from_dict(ref.recipe)
        st.caption(
            f"Every poisoned model is trained from scratch like the current model: "
            f"**{ARCHITECTURES[ref.arch].title}**, {recipe.epochs} epochs, lr {recipe.lr:g}, "
            f"seed {recipe.seed} (change it in the sidebar). Models are kept in the model zoo, "
            "so only new settings train."
        )
        return ref.arch, recipe
    archs = compatible_architectures(ds.modality, ds.input_shape)
    st.info(
        "The current model was uploaded, so its training recipe is unknown: poisoning "
        "needs to train models, so pick a built-in architecture to train them with."
    )
    cols = st.columns(2)
    arch = cols[0].selectbox(
        "Architecture of the poisoned models",
        archs,
        format_func=lambda a: ARCHITECTURES[a].title,
        key=f"{key}.arch",
    )
    epochs = cols[1].slider("Epochs", 1, 20, 5, key=f"{key}.epochs")
    return arch, TrainRecipe(epochs=epochs)


def class_select(ds: Dataset, label: str, default: int, *, key: str, container: Any = st) -> int:
    """A select box over the dataset's classes (shown by name), returning the index."""
    names = [str(c) for c in ds.class_names]
    return container.selectbox(
        label,
        list(range(ds.num_classes)),
        index=min(default, ds.num_classes - 1),
        format_func=lambda i: f"{i}: {names[i]}" if names[i] != str(i) else names[i],
        key=key,
    )


def trigger_defaults(ds: Dataset) -> dict[str, Any]:
    """Starting trigger values that suit the data: an 8 px square on 28–32 px images, about a
    third of the side on smaller ones, a few features on tabular data."""
    if ds.modality == "image":
        return {"size": max(1, min(8, min(ds.input_shape[1:]) // 3))}
    return {"size": max(1, min(3, ds.input_shape[0] // 4))}


def trigger_form(ds: Dataset, *, key: str) -> Trigger | None:
    """The trigger's widgets (no preview); ``None`` with a message if it is invalid."""
    trigger = param_form(Trigger, key=key, values=trigger_defaults(ds))
    if trigger is None:
        return None
    try:
        trigger.build(ds.input_shape, ds.bounds)
    except ValidationError as exc:
        st.error(str(exc))
        return None
    return trigger


def trigger_designer(ds: Dataset, *, key: str) -> Trigger | None:
    """Trigger widgets with a live preview on test inputs; ``None`` if the trigger is invalid."""
    left, right = st.columns([1, 2])
    with left:
        trigger = param_form(Trigger, key=key, values=trigger_defaults(ds))
    if trigger is None:
        return None
    try:
        stamp = trigger.build(ds.input_shape, ds.bounds)
    except ValidationError as exc:
        left.error(str(exc))
        return None
    with right:
        if ds.modality == "image":
            y = ds.y_test
            pick = [int(torch.nonzero(y == c)[0]) for c in range(ds.num_classes) if (y == c).any()]
            pick = pick[:6]
            x = ds.x_test[pick]
            imgs = np.concatenate([x.numpy(), stamp.apply(x).numpy()])
            titles = [f"clean · {ds.class_names[y[i]]}" for i in pick] + [
                "with trigger" for _ in pick
            ]
            st.plotly_chart(
                image_grid(imgs, titles, ncols=len(pick)),
                width="stretch",
                key=f"{key}.preview",
            )
        else:
            changed = np.flatnonzero(stamp.mask.numpy() > 0)
            st.caption("Tabular data: the trigger sets these features (standardised units).")
            st.dataframe(
                pd.DataFrame(
                    {
                        "feature": changed,
                        "mask weight": stamp.mask.numpy()[changed],
                        "value": stamp.pattern.numpy()[changed],
                    }
                ).head(40),
                hide_index=True,
            )
    return trigger


def values_select(
    label: str, choices: tuple[float, ...], defaults: tuple[float, ...], *, key: str, pct: bool
) -> list[float]:
    """A multiselect of sweep values."""
    fmt = (lambda v: f"{v:.1%}".replace(".0%", "%")) if pct else (lambda v: f"{v:g}")
    return st.multiselect(label, list(choices), default=list(defaults), format_func=fmt, key=key)


def _table(df: pd.DataFrame, *, key: str) -> None:
    cfg = {
        c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
        for c in df.columns
        if c in PERCENT_COLUMNS
    }
    st.dataframe(df, hide_index=True, width="stretch", column_config=cfg, key=key)


def _downloads(record: RunRecord, name: str, table: str = "sweep") -> None:
    cols = st.columns(2)
    download_table(
        record.table(table),
        f"{name}.csv",
        label="Table (CSV)",
        key=f"dl.{name}.csv",
        container=cols[0],
    )
    download_json(
        {"key": record.key, "spec": record.spec, "metrics": record.metrics, "seed": record.seed},
        f"{name}.json",
        label="Run (JSON)",
        key=f"dl.{name}.json",
        container=cols[1],
    )


def _gallery(record: RunRecord, ds: Dataset, *, key: str, caption: str) -> None:
    gallery = record.table("gallery")
    st.caption(caption)
    if ds.modality == "image" and "gallery_images" in record.artifact_names:
        titles = [
            f"true {t} → pred {p} ({c:.0%})"
            for t, p, c in zip(
                gallery["true"], gallery["predicted"], gallery["confidence"], strict=True
            )
        ]
        st.plotly_chart(
            image_grid(record.artifact("gallery_images"), titles, ncols=8),
            width="stretch",
            key=key,
        )
    else:
        st.dataframe(gallery, hide_index=True)


def _trend(table: pd.DataFrame, x: str, x_label: str, *, pct: bool = False) -> str:
    first, last = table.iloc[0], table.iloc[-1]
    a, b = (f"{first[x]:.1%}", f"{last[x]:.1%}") if pct else (f"{first[x]:g}", f"{last[x]:g}")
    return (
        f"From {x_label} {a} to {b}, attack success goes from "
        f"{first['attack_success']:.0%} to {last['attack_success']:.0%} and clean accuracy "
        f"from {first['clean_accuracy']:.1%} to {last['clean_accuracy']:.1%}."
    )


INTERPRETATION = {
    "poison_rate": "A handful of poisoned points is enough: the network learns the trigger "
    "as a shortcut while clean accuracy barely moves, which is why clean accuracy alone "
    "cannot reveal a backdoor.",
    "trigger_size": "A bigger trigger is a stronger, easier-to-learn feature, but also easier "
    "for a person (or a data check) to spot.",
    "blend_alpha": "This is the noise level of the poison: a faint noise pattern (small α) is "
    "hard to see and to detect, yet the network can still learn it; too faint and the "
    "signal drowns in the image, so the attack needs more poisons or fails.",
    "noise_std": "Gaussian noise added while training is the defender's noise level: it "
    "blurs fine trigger patterns, so strong noise can weaken a small trigger, at some cost "
    "in clean accuracy; a large, high-contrast trigger usually survives it.",
}


def show_backdoor(record: RunRecord, ds: Dataset) -> None:
    """The BadNets sweep: metrics, the chart, the gallery, the table and downloads."""
    m = record.metrics
    sweep = m["sweep"]
    info = SWEEPS[sweep]
    cols = st.columns(4)
    cols[0].metric("Unpoisoned model accuracy", f"{m['clean_model_accuracy']:.1%}")
    cols[1].metric(
        "Clean accuracy (poisoned)",
        f"{m['clean_accuracy']:.1%}",
        delta=f"{m['clean_accuracy'] - m['clean_model_accuracy']:+.1%}",
        help=f"At {info.label.lower()} {m['headline_value']:g}.",
    )
    cols[2].metric(
        "Attack success",
        f"{m['attack_success']:.1%}",
        help="Triggered test inputs (not of the target class) classified as the attacker's label.",
    )
    cols[3].metric("Poisoned training points", f"{m['n_poison']:,}")
    table = record.table("sweep")
    st.plotly_chart(
        backdoor_sweep_figure(
            table,
            sweep,
            x_title=info.label,
            clean_accuracy=m["clean_model_accuracy"],
            percent_x=sweep == "poison_rate",
            title=f"BadNets: clean accuracy and attack success against {info.label.lower()}",
        ),
        width="stretch",
        key="bd_chart",
    )
    trend = _trend(table, sweep, info.label.lower(), pct=sweep == "poison_rate")
    st.markdown(f"{trend} {INTERPRETATION[sweep]}")
    _gallery(
        record,
        ds,
        key="bd_gallery",
        caption=f"Triggered test images and what the poisoned model "
        f"({info.label.lower()} {m['headline_value']:g}) predicts.",
    )
    _table(table, key="bd_table")
    _downloads(record, "badnets_sweep")


def show_hidden(record: RunRecord, ds: Dataset) -> None:
    """The hidden-trigger ε sweep: metrics, chart, poisons, gallery, table, downloads."""
    m = record.metrics
    cols = st.columns(4)
    cols[0].metric(
        "Clean accuracy", f"{m['clean_accuracy']:.1%}", help=f"At ε = {m['headline_eps']:g}."
    )
    cols[1].metric(
        "Attack success",
        f"{m['attack_success']:.1%}",
        delta=f"{m['attack_success'] - m['baseline_attack_success']:+.1%} vs no poison",
        help="Triggered source-class test images classified as the target class.",
    )
    cols[2].metric("Poisons (clean label)", f"{m['n_poison']:,}")
    cols[3].metric(
        "Victim retrains",
        "last layer" if m["setting"] == "head" else "whole network",
        help="head: frozen clean features, new last layer (the paper's setting); full: "
        "the whole network trained from scratch on the poisoned data.",
    )
    table = record.table("sweep")
    st.plotly_chart(hidden_trigger_figure(table), width="stretch", key="ht_chart")
    st.markdown(
        f"{_trend(table, 'eps', 'ε')} ε is the attacker's budget: a larger ε lets a poison "
        "move further from its genuine image, so its features can reach the triggered "
        "source images, but the change also becomes visible (compare the poisons below)."
    )
    if ds.modality == "image" and "poison_images" in record.artifact_names:
        orig = record.artifact("poison_originals")
        pois = record.artifact("poison_images")
        st.plotly_chart(
            image_grid(
                pois,
                [f"poison (ε = {m['headline_eps']:g})" for _ in range(len(pois))],
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
    _gallery(
        record,
        ds,
        key="ht_gallery",
        caption="Source-class test images with the trigger and the victim's prediction.",
    )
    _table(table, key="ht_table")
    _downloads(record, "hidden_trigger_sweep")


def show_side_by_side(badnets: RunRecord | None, hidden: RunRecord | None) -> None:
    """Compare the latest BadNets and hidden-trigger results."""
    if badnets is None or hidden is None:
        st.info("Run BadNets and the hidden trigger (tabs above) to compare them here.")
        return
    b, h = badnets.metrics, hidden.metrics
    rows = pd.DataFrame(
        [
            {
                "attack": "BadNets",
                "poisons": b["n_poison"],
                "labels of poisons": "changed to the attacker's",
                "trigger in training data": "yes",
                "clean_accuracy": b["clean_accuracy"],
                "attack_success": b["attack_success"],
                "measured on": "triggered test inputs of every other class",
            },
            {
                "attack": "Hidden trigger",
                "poisons": h["n_poison"],
                "labels of poisons": "correct (clean label)",
                "trigger in training data": "no",
                "clean_accuracy": h["clean_accuracy"],
                "attack_success": h["attack_success"],
                "measured on": "triggered test inputs of the source class",
            },
        ]
    )
    st.plotly_chart(
        attack_comparison_figure(
            {
                "BadNets": b,
                f"Hidden trigger (ε = {h['headline_eps']:g})": h,
            }
        ),
        width="stretch",
        key="cmp_chart",
    )
    weaker = h["attack_success"] < b["attack_success"]
    st.markdown(
        "BadNets shows the network the trigger with the wrong label, so it learns the "
        "shortcut directly; the hidden trigger never shows it and must reach it through "
        f"feature collisions within ε, which is {'weaker' if weaker else 'not weaker'} here "
        f"({h['attack_success']:.0%} against {b['attack_success']:.0%}), but every poison "
        "carries its correct label and no trigger, so checking the labels finds nothing."
    )
    _table(rows, key="cmp_table")
    download_table(rows, "backdoor_comparison.csv", label="Comparison (CSV)", key="dl.cmp")


def show_label_flip(record: RunRecord, ds: Dataset) -> None:
    """Label flipping: accuracy against flip rate, per class, confusion before and after."""
    m = record.metrics
    table = record.table("sweep")
    per_class = record.table("per_class")
    cols = st.columns(3)
    cols[0].metric(f"Accuracy at flip rate {m['lowest_rate']:.0%}", f"{m['accuracy_lowest']:.1%}")
    cols[1].metric(
        f"Accuracy at flip rate {m['highest_rate']:.0%}",
        f"{m['accuracy_highest']:.1%}",
        delta=f"{m['accuracy_highest'] - m['accuracy_lowest']:+.1%}",
    )
    cols[2].metric("Models", f"{len(table)}", help="One per flip rate (0 % is the clean model).")
    highlight = [str(c) for c in ds.class_names]
    if m["mode"] == "targeted":
        spec = record.spec["attack"]
        names = [str(c) for c in ds.class_names]
        highlight = [names[spec["source_class"]], names[spec["target_class"]]]
    st.plotly_chart(
        label_flip_figure(table, per_class, highlight=highlight),
        width="stretch",
        key="lf_chart",
    )
    if m["mode"] == "targeted":
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
    for col, name, title, k in (
        (left, "confusion_before", f"Confusion at flip rate {m['lowest_rate']:.0%}", "lf_cm0"),
        (right, "confusion_after", f"Confusion at flip rate {m['highest_rate']:.0%}", "lf_cm1"),
    ):
        cm = record.table(name)
        col.plotly_chart(
            confusion_matrix_figure(cm.to_numpy(), list(cm.columns), title=title),
            width="stretch",
            key=k,
        )
    _table(table, key="lf_table")
    with st.expander("Per-class accuracy"):
        wide = per_class.pivot(index="class", columns="rate", values="accuracy")
        wide.columns = [f"rate {c:.0%}" for c in wide.columns]
        st.dataframe(wide.reset_index(), hide_index=True)
    _downloads(record, "label_flipping")


def show_sanitize(record: RunRecord, ds: Dataset) -> None:
    """Sanitization: precision/recall, before/after, the 2-D projection of one class."""
    m = record.metrics
    cols = st.columns(4)
    cols[0].metric(
        "Precision",
        "–" if np.isnan(m["precision"]) else f"{m['precision']:.1%}",
        help="Share of the removed points that really were poisons.",
    )
    cols[1].metric(
        "Recall",
        "–" if np.isnan(m["recall"]) else f"{m['recall']:.1%}",
        help="Share of the poisons that were removed.",
    )
    cols[2].metric(
        "Attack success after",
        f"{m['after_attack_success']:.1%}",
        delta=f"{m['after_attack_success'] - m['before_attack_success']:+.1%}",
        delta_color="inverse",
    )
    cols[3].metric(
        "Clean accuracy after",
        f"{m['after_clean_accuracy']:.1%}",
        delta=f"{m['after_clean_accuracy'] - m['before_clean_accuracy']:+.1%}",
    )
    st.caption(
        f"Removed {m['n_flagged']:,} of {m['n_flagged'] + m['n_train_after']:,} training points; "
        f"{m['true_positives']:,} of the {m['n_poison']:,} poisons."
    )
    per_class = record.table("per_class")
    _marginal_notes(per_class, ds)
    summary = record.table("summary")
    st.plotly_chart(before_after_figure(summary), width="stretch", key="san_bars")
    proj = record.table("projection")
    classes = sorted(proj["class"].unique().tolist())
    default = m["target_class"] if m["mode"] == "all_to_one" else classes[0]
    shown = class_select(ds, "Class to project", int(default), key="san_cls")
    if shown not in classes:
        st.info(f"Class {ds.class_names[shown]} has no training points.")
        return
    pts = proj[proj["class"] == shown]
    title = (
        "2-means clusters" if m["detector"] == "activation_clustering" else "removed (top scores)"
    )
    st.plotly_chart(
        activation_projection_figure(
            pts,
            cluster_title=title,
            title=f"Class {ds.class_names[shown]}: penultimate activations (PCA to 2-D)",
        ),
        width="stretch",
        key="san_proj",
    )
    _table(summary, key="san_summary")
    with st.expander("Per class: split, decision and second opinion"):
        st.dataframe(per_class, hide_index=True, width="stretch")
        if "decision" in per_class:
            st.caption(
                "smaller_share: the smaller 2-means cluster's share of the class; silhouette: "
                "how cleanly the class splits (on the activations); reduce: the reduction "
                "whose split was kept; reclass_own / reclass_ratio: the second opinion (share "
                "of the cluster a model trained without it gives its own label, and that "
                "count over the most common other class)."
            )
    _downloads(record, "sanitization", table="summary")


def _marginal_notes(per_class: pd.DataFrame, ds: Dataset) -> None:
    """Say which decisions were marginal and what the second opinion made of them."""
    if "decision" not in per_class:
        return
    for row in per_class[per_class["decision"].str.startswith("marginal")].itertuples(False):
        name = ds.class_names[int(row[0])]
        where = (
            f"its smaller cluster holds {row.smaller_share:.0%} of it with silhouette "
            f"{row.silhouette:.2f}, within the margin of the thresholds, so another CPU's "
            "arithmetic could tip the decision either way"
        )
        if row.decision == "marginal":
            st.warning(f"Class {name}: {where}. It was kept (no second opinion asked).")
            continue
        ratio = getattr(row, "reclass_ratio", float("nan"))
        own = getattr(row, "reclass_own", float("nan"))
        verdict = "kept" if "kept" in row.decision else "removed"
        st.info(
            f"Class {name}: {where}. Second opinion (exclusionary reclassification): a "
            f"model trained without the cluster gives {own:.0%} of it its own label "
            f"(own / most common other = {ratio:.2f}), so it was **{verdict}**."
        )
