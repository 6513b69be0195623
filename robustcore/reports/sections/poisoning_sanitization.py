"""Report sections of the Poisoning sanitization page."""

from __future__ import annotations

import math

from ...data import Dataset
from ...experiments.poisoning_sanitization import SanitizationResult
from ...viz.poisoning_sanitization import activation_projection_figure, before_after_figure
from ..blocks import Chart, Metric, Metrics, Table, Text, accuracy_basis, pct
from . import Part, builder


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1%}"


@builder("poisoning_sanitization")
def poisoning_sanitization(res: SanitizationResult, dataset: Dataset | None) -> Part:
    summary = res.summary_table()
    names = [str(c) for c in dataset.class_names] if dataset is not None else None
    caption = (
        f"Removed {res.n_flagged:,} of {res.n_flagged + res.n_train_after:,} training points; "
        f"{res.true_positives:,} of the {res.n_poison:,} poisons."
    )
    if dataset is not None:
        caption += " " + accuracy_basis(dataset.n_test, dataset.n_test)
    blocks = [
        Metrics(
            (
                Metric("Precision", _pct(res.precision), "Removed points that were poisons."),
                Metric("Recall", _pct(res.recall), "Poisons that were removed."),
                Metric(
                    "Attack success after",
                    pct(res.after_attack_success),
                    f"{(res.after_attack_success - res.before_attack_success) * 100:+.1f} points",
                ),
                Metric(
                    "Clean accuracy after",
                    pct(res.after_clean_accuracy),
                    f"{(res.after_clean_accuracy - res.before_clean_accuracy) * 100:+.1f} points",
                ),
            ),
            caption=caption,
        )
    ]
    for row in res.marginal_decisions().itertuples(False):
        name = names[int(row[0])] if names else f"class {int(row[0])}"
        blocks.append(
            Text(
                f"Class {name}: its smaller cluster holds {row.smaller_share:.0%} of it with "
                f"silhouette {row.silhouette:.2f}, within the margin of the thresholds "
                f"(decision: {row.decision})."
            )
        )
    blocks.append(Chart("before_after", before_after_figure(summary)))
    shown = res.default_class()
    if shown in res.projection_classes():
        label = names[shown] if names else str(shown)
        title = (
            "2-means clusters"
            if res.detector == "activation_clustering"
            else "removed (top scores)"
        )
        blocks.append(
            Chart(
                "projection",
                activation_projection_figure(
                    res.projection_of(shown),
                    cluster_title=title,
                    title=f"Class {label}: penultimate activations (PCA to 2-D)",
                ),
            )
        )
    blocks += [
        Table("summary", "Before and after sanitization", summary),
        Table("per_class", "Per class: split, decision and second opinion", res.per_class()),
    ]
    return Part(
        blocks,
        threat=(
            "A BadNets poisoning attacker against a defender who inspects the training set's "
            "penultimate activations (activation clustering or spectral signatures), removes "
            "what it flags and retrains; the attacker does not adapt to the detector. "
            "Measured by the detector's precision and recall and by attack success after "
            "retraining."
        ),
        tried={"BadNets"},
    )
