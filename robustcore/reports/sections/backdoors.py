"""Report sections of the Backdoors page: BadNets and the hidden-trigger backdoor."""

from __future__ import annotations

from typing import Any

from ...data import Dataset
from ...experiments.backdoors import BackdoorsResult
from ...experiments.hidden_trigger import HiddenTriggerResult
from ...viz import image_grid
from ...viz.backdoors import (
    INTERPRETATION,
    backdoor_sweep_figure,
    gallery_titles,
    hidden_trigger_figure,
    trend,
)
from ..blocks import Block, Chart, Metric, Metrics, Table, Text, accuracy_basis, pct
from . import Part, builder


def _gallery(images: Any, table: Any, cid: str, caption: str) -> Block:
    """Images with "true → predicted (confidence)" captions, or the table for tabular data."""
    if getattr(images, "ndim", 0) == 4:
        return Chart(cid, image_grid(images, gallery_titles(table), ncols=8), caption=caption)
    return Table(cid, caption, table)


def _basis(dataset: Dataset | None) -> str:
    return accuracy_basis(dataset.n_test, dataset.n_test) if dataset is not None else ""


def sweep_figure(res: BackdoorsResult) -> Any:
    """BadNets' clean accuracy and attack success against the swept setting."""
    label = res.sweep_label
    return backdoor_sweep_figure(
        res.sweep(),
        res.sweep_axis,
        x_title=label,
        clean_accuracy=res.clean_model_accuracy,
        percent_x=res.percent_axis,
        title=f"BadNets: clean accuracy and attack success against {label.lower()}",
    )


@builder("backdoors")
def backdoors(res: BackdoorsResult, dataset: Dataset | None) -> Part:
    label = res.sweep_label
    table = res.sweep()
    images, rows = res.gallery()
    sentence = trend(table, res.sweep_axis, label.lower(), pct=res.percent_axis)
    blocks = [
        Metrics(
            (
                Metric("Unpoisoned model accuracy", pct(res.clean_model_accuracy)),
                Metric(
                    "Clean accuracy (poisoned)",
                    pct(res.clean_accuracy),
                    f"{(res.clean_accuracy - res.clean_model_accuracy) * 100:+.1f} points, at "
                    f"{label.lower()} {res.headline_value:g}",
                ),
                Metric(
                    "Attack success",
                    pct(res.attack_success),
                    "Triggered test inputs (not of the target class) classified as the "
                    "attacker's label.",
                ),
                Metric("Poisoned training points", f"{res.n_poison:,}"),
            ),
            caption=_basis(dataset),
        ),
        Chart("sweep", sweep_figure(res)),
        Text(f"{sentence} {INTERPRETATION[res.sweep_axis]}"),
        _gallery(
            images,
            rows,
            "gallery",
            f"Triggered test images and what the poisoned model ({label.lower()} "
            f"{res.headline_value:g}) predicts.",
        ),
        Table("sweep", f"Clean accuracy and attack success per {label.lower()}", table),
    ]
    return Part(
        blocks,
        threat=(
            "A poisoning attacker who adds a few training points stamped with a trigger and "
            "relabelled to its target class (BadNets, Gu et al. 2017), but does not control "
            "training; measured by clean accuracy and by attack success on triggered test "
            "inputs."
        ),
        tried={"BadNets"},
    )


@builder("hidden_trigger")
def hidden_trigger(res: HiddenTriggerResult, dataset: Dataset | None) -> Part:
    table = res.sweep()
    blocks: list[Block] = [
        Metrics(
            (
                Metric("Clean accuracy", pct(res.clean_accuracy), f"At ε = {res.headline_eps:g}."),
                Metric(
                    "Attack success",
                    pct(res.attack_success),
                    f"{(res.attack_success - res.baseline_attack_success) * 100:+.1f} points "
                    "vs no poison",
                ),
                Metric("Poisons (clean label)", f"{res.n_poison:,}"),
                Metric(
                    "Victim retrains", "last layer" if res.setting == "head" else "whole network"
                ),
            ),
            caption=_basis(dataset),
        ),
        Chart("sweep", hidden_trigger_figure(table)),
        Text(
            f"{trend(table, 'eps', 'ε')} ε is the attacker's budget: a larger ε lets a poison "
            "move further from its genuine image, so its features can reach the triggered "
            "source images, but the change also becomes visible."
        ),
    ]
    poisons = res.poisons()
    if poisons is not None and getattr(poisons[1], "ndim", 0) == 4:
        orig, pois = poisons
        blocks.append(
            Chart(
                "poisons",
                image_grid(
                    pois,
                    [f"poison (ε = {res.headline_eps:g})" for _ in range(len(pois))],
                    perturbations=pois - orig,
                    ncols=8,
                ),
                caption="Poisons keep their correct label and show no trigger; the heat map "
                "is the change from the original image (amplified).",
            )
        )
    images, rows = res.gallery()
    blocks += [
        _gallery(
            images,
            rows,
            "gallery",
            "Source-class test images with the trigger and the victim's prediction.",
        ),
        Table("sweep", "Clean accuracy and attack success per ε", table),
    ]
    return Part(
        blocks,
        threat=(
            "A clean-label poisoning attacker (Saha et al. 2020) who perturbs a few "
            "target-class training images within an L∞ budget ε, keeps their labels and "
            "never shows the trigger; measured by attack success on triggered source-class "
            "test images."
        ),
        tried={"Hidden trigger"},
    )
