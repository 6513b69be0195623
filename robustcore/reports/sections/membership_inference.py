"""Report sections of the Membership inference page: the attacks and the overfitting
sweep."""

from __future__ import annotations

from ...attacks.inference import ATTACKS, fpr_resolution
from ...data import Dataset
from ...experiments.membership_inference import MembershipInferenceResult
from ...experiments.overfitting_sweep import OverfittingSweepResult
from ...viz.membership_inference import overfitting_figure, roc_figure, score_histogram
from ..blocks import Chart, Metric, Metrics, Table, Text
from . import Part, builder

THREAT = (
    "A black-box attacker who sees the model's output scores for a record and guesses "
    "whether it was in the training set (loss and confidence thresholds, shadow models, "
    "LiRA); measured on balanced members and non-members by AUC and by the true-positive "
    "rate at a low false-positive rate."
)


def setup_text(res: MembershipInferenceResult) -> str:
    """The candidates and shadow models the attacks ran on, and what 0.1 % FPR means with
    that many non-members (under the page's metrics, and the report's)."""
    n = res.per_side
    allowed = fpr_resolution(n, 0.001)
    shadows = res.shadows()
    return (
        f"Target: {res.target_description}. {n:,} members (training examples) and {n:,} "
        f"non-members (test examples), drawn with seed {res.seed}. "
        + (
            "At 0.1% FPR no false positive at all is allowed with this many non-members, "
            "so that column is the share of members found before the first non-member. "
            if allowed == 0
            else f"0.1% FPR = {allowed} false positive(s). "
        )
        + (
            f"{shadows['count']} shadow models of {shadows['train_size']:,} examples each "
            f"(held-out accuracy {shadows['heldout_accuracy']:.1%}; "
            f"{shadows['trained']} trained now)."
            if shadows is not None
            else ""
        )
    )


@builder("membership_inference")
def membership_inference(res: MembershipInferenceResult, dataset: Dataset | None) -> Part:
    n = res.per_side
    best = res.attack_metrics(res.best_low_fpr_attack)
    loss = res.attack_metrics("loss")
    caption = setup_text(res)
    names = res.attack_names()
    table = res.metrics_table()
    shown = table.assign(name=table["attack"].map(names))[
        ["name", "auc", "balanced_accuracy", "advantage", "tpr@0.1%fpr", "tpr@1%fpr"]
    ]
    curves = res.roc_curves()
    attack = res.best_low_fpr_attack
    blocks = [
        Metrics(
            (
                Metric(
                    "Best TPR at 0.1% FPR",
                    f"{best['tpr@0.1%fpr']:.1%}",
                    ATTACKS.get(best["attack"], best["attack"]),
                ),
                Metric("Its AUC", f"{best['auc']:.3f}", "0.5 = guessing, 1 = perfect."),
                Metric("Loss-threshold AUC", f"{loss['auc']:.3f}"),
                Metric(
                    "Accuracy on members / non-members",
                    f"{res.member_accuracy:.0%} / {res.nonmember_accuracy:.0%}",
                    f"gap {res.gap * 100:+.1f} points",
                ),
            ),
            caption=caption,
        ),
        Chart("roc_log", roc_figure(curves, log=True, n_nonmembers=n, n_members=n)),
        Chart("roc", roc_figure(curves)),
        Table("metrics", "Every attack", shown.rename(columns={"name": "attack"})),
        Chart("scores", score_histogram(res.scores(), attack, name=names[attack])),
    ]
    return Part(blocks, threat=THREAT, tried={"Membership inference"})


@builder("overfitting_sweep")
def overfitting_sweep(res: OverfittingSweepResult, dataset: Dataset | None) -> Part:
    table = res.sweep()
    blocks = [
        Chart("sweep", overfitting_figure(table, knob_title=res.knob_title)),
        Table(
            "sweep",
            f"Membership leakage against {res.knob_title}",
            table.drop(columns=["zoo_key", "knob"]).rename(columns={"value": res.knob_title}),
            caption="Each target is attacked with the loss and confidence thresholds only (no "
            "shadow models), on its own members and as many test examples.",
        ),
        Text(
            "Membership inference feeds on the generalisation gap: the advantage follows the "
            "gap between accuracy on members and on non-members as the knob makes the target "
            "overfit more or less."
        ),
    ]
    return Part(blocks, threat=THREAT, tried={"Membership inference"})
