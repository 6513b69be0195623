"""Report section of the Adversarial detector page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.adversarial_detector import ATTACKS, DetectorResult
from ...viz.adversarial_detector import (
    abstention_tradeoff,
    adaptive_bars,
    detection_vs_eps,
    roc_curves,
)
from ..blocks import Chart, Checks, Metric, Metrics, Table, Text
from . import Part, builder, flagged_note

TRIED = {"FGSM": "FGSM", "PGD": "PGD", "C&W L2": "C&W"}
"""Attack labels of the detection table → names of the report's attack catalogue."""


@builder("adversarial_detector")
def adversarial_detector(res: DetectorResult, dataset: Dataset | None) -> Part:
    trained = ATTACKS[res.train_attack]
    at = "" if res.train_attack == "cw" else f" at ε={res.train_eps:g}"
    own = res.detection_at(res.train_attack, None if res.train_attack == "cw" else res.train_eps)
    failed = [c for c in res.sanity() if not c.passed]
    items = (
        Metric(f"AUC on {trained}{at}", f"{float(own['auc']):.3f}"),
        Metric(
            f"Naive PGD detected at ε={res.train_eps:g}",
            f"{res.naive_detection:.0%}",
            f"success {res.naive_success:.0%}",
        ),
        Metric(
            "Adaptive PGD success",
            f"{res.adaptive_success:.0%}",
            flagged_note(
                failed,
                f"{res.adaptive_success - res.naive_success:+.0%} vs naive; "
                f"{res.adaptive_detection:.0%} detected",
            ),
        ),
        Metric(
            "Clean images abstained on",
            f"{res.clean_abstention:.1%}",
            f"guarded accuracy {res.guarded_accuracy:.1%} (model {res.clean_accuracy:.1%})",
        ),
    )
    if res.adaptive_success >= max(0.5, res.naive_success):
        verdict = (
            "**Verdict: the detector does not stop an attacker who knows it.** Against naive "
            f"PGD it flags {res.naive_detection:.0%} of the examples that fool the model; the "
            "adaptive attack (Carlini & Wagner 2017), within the same ε, gets a wrong answer "
            f"past it on {res.adaptive_success:.0%} of the images, and only "
            f"{res.adaptive_detection:.0%} of its examples are flagged."
        )
    else:
        verdict = (
            f"The adaptive attack gets past the guarded model on {res.adaptive_success:.0%} of "
            "the images: not a bypass at these settings, which does not make the detector "
            "robust (a stronger adaptive attack may still get through)."
        )
    detection = res.detection()
    blocks = [
        Metrics(items, caption=f"{res.n} test images; threshold for {res.fpr:.1%} FPR."),
        Text(verdict),
        Chart("roc", roc_curves(res.roc(), train_eps=res.train_eps, fpr=res.fpr)),
        Chart(
            "eps",
            detection_vs_eps(detection, train_eps=res.train_eps, fpr=res.fpr, train_attack=trained),
        ),
        Chart("adaptive", adaptive_bars(res.adaptive())),
        Chart("tradeoff", abstention_tradeoff(res.tradeoff())),
        Checks(tuple(res.sanity())),
        Table("detection", "Detection per attack and ε", detection),
        Table("adaptive", "Naive and adaptive attack on the guarded model", res.adaptive()),
    ]
    tried = {TRIED[a] for a in detection["attack"] if a in TRIED} | {"Joint detector attack"}
    return Part(
        blocks,
        threat=(
            f"A white-box attacker with an L∞ budget ε = {res.train_eps:g} against the model "
            f"guarded by a {res.kind} detector (trained on {trained}{at}): naive (the "
            "classifier's gradients only) and adaptive (classifier, detector and threshold "
            "known, one loss on both), which is the number that counts."
        ),
        tried=tried,
    )
