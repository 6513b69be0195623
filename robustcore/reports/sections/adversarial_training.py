"""Report sections of the Adversarial training page."""

from __future__ import annotations

from typing import Any

from ...data import Dataset
from ...experiments.adversarial_training import (
    DEFENDED,
    UNDEFENDED,
    AdversarialTrainingResult,
)
from ...viz import accuracy_vs_eps
from ...viz.adversarial_training import robust_training_curves
from ...viz.whitebox import success_vs_budget
from ..blocks import Chart, Metric, Metrics, Table, Text, accuracy_basis, pct
from . import Part, builder


def eps_figure(res: AdversarialTrainingResult) -> Any:
    """PGD accuracy against ε of the defended and the undefended model."""
    return accuracy_vs_eps(
        res.curves(),
        chance=res.chance,
        title=f"PGD-{res.spec['params']['pgd']['steps']} accuracy against ε, defended vs "
        "undefended",
        x_title="ε (L∞)",
    )


@builder("adversarial_training")
def adversarial_training(res: AdversarialTrainingResult, dataset: Dataset | None) -> Part:
    d, u = DEFENDED, UNDEFENDED
    items = [
        Metric(
            "Clean accuracy (defended)",
            pct(res.clean_accuracy(d)),
            f"{(res.clean_accuracy(d) - res.clean_accuracy(u)) * 100:+.1f} points vs undefended",
        ),
        Metric(
            f"PGD accuracy at ε={res.train_eps:g} (defended)",
            pct(res.robust_accuracy(d)),
            f"{(res.robust_accuracy(d) - res.robust_accuracy(u)) * 100:+.1f} points vs undefended",
        ),
    ]
    if res.has_cw:
        items.append(
            Metric(
                "C&W median L2 (defended)",
                f"{res.cw_median_l2(d):.2f}",
                f"{res.cw_median_l2(d) - res.cw_median_l2(u):+.2f} vs undefended",
            )
        )
    ratio = res.train_seconds(d) / max(res.train_seconds(u), 1e-9)
    items.append(
        Metric(
            "Training time (defended)",
            f"{res.train_seconds(d):.0f} s",
            f"{ratio:.1f}× the undefended model's",
        )
    )
    total = dataset.n_test if dataset is not None else None
    blocks = [Metrics(tuple(items), caption=accuracy_basis(res.n, total))]
    if res.watchdog:
        blocks.append(Text(f"**Watchdog** — {res.watchdog}"))
    blocks += [
        Chart("training", robust_training_curves(res.history())),
        Chart("eps", eps_figure(res)),
    ]
    if res.has_cw:
        blocks.append(
            Chart(
                "cw",
                success_vs_budget(res.cw_curves(), title="C&W: inputs fooled within an L2 budget"),
            )
        )
    blocks += [
        Table("sweep", "Accuracy against ε, defended and undefended", res.sweep()),
        Table("history", "Training history", res.history()),
    ]
    return Part(
        blocks,
        threat=(
            f"A white-box attacker with the defended model's gradients and an L∞ budget "
            f"(the model was trained by {res.method_title} at ε = {res.train_eps:g}); PGD with "
            "restarts and C&W are adaptive to adversarial training, which changes only the "
            "weights. Measured by robust accuracy against ε, next to the undefended model."
        ),
        tried={"PGD"} | ({"C&W"} if res.has_cw else set()),
    )
