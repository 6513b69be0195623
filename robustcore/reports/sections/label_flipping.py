"""Report sections of the Label flipping page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.label_flipping import LabelFlippingResult
from ...viz import confusion_matrix_figure
from ...viz.label_flipping import label_flip_figure
from ..blocks import Chart, Metric, Metrics, Table, Text, accuracy_basis, pct
from . import Part, builder


@builder("label_flipping")
def label_flipping(res: LabelFlippingResult, dataset: Dataset | None) -> Part:
    table = res.sweep()
    per_class = res.per_class()
    targeted = res.mode == "targeted"
    names = sorted(per_class["class"].astype(str).unique().tolist())
    if dataset is not None:
        names = [str(c) for c in dataset.class_names]
    highlight = names
    if targeted and res.source_class is not None and res.target_class is not None:
        highlight = [names[res.source_class], names[res.target_class]]
    n_test = dataset.n_test if dataset is not None else None
    blocks = [
        Metrics(
            (
                Metric(f"Accuracy at flip rate {res.lowest_rate:.0%}", pct(res.accuracy_lowest)),
                Metric(
                    f"Accuracy at flip rate {res.highest_rate:.0%}",
                    pct(res.accuracy_highest),
                    f"{(res.accuracy_highest - res.accuracy_lowest) * 100:+.1f} points",
                ),
                Metric("Models", str(res.n_models), "One per flip rate (0 % is the clean model)."),
            ),
            caption=accuracy_basis(n_test or 0, n_test) if n_test else "",
        ),
        Chart("sweep", label_flip_figure(table, per_class, highlight=highlight)),
        Text(
            "Targeted flipping hits class A and leaves the other classes almost untouched, "
            "so overall accuracy hides the damage: look at class A's line."
            if targeted
            else "Random flips spread their damage over every class; networks resist "
            "moderate random label noise, and the damage grows quickly once most labels "
            "are wrong."
        ),
    ]
    for cm, title, cid in (
        (res.confusion_lowest(), f"Confusion at flip rate {res.lowest_rate:.0%}", "cm_lowest"),
        (res.confusion_highest(), f"Confusion at flip rate {res.highest_rate:.0%}", "cm_highest"),
    ):
        blocks.append(
            Chart(cid, confusion_matrix_figure(cm.to_numpy(), list(cm.columns), title=title))
        )
    blocks.append(Table("sweep", "Accuracy per flip rate", table))
    mode = "targeted (class A relabelled B)" if targeted else "random"
    return Part(
        blocks,
        threat=(
            f"A poisoning attacker who controls the labels of part of the training set "
            f"({mode} flips) but no input; measured by clean test accuracy of the model "
            "trained on the flipped labels."
        ),
        tried={"Label flipping"},
    )
