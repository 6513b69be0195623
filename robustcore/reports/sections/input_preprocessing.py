"""Report sections of the Input preprocessing page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.input_preprocessing import (
    BPDA,
    DETECT_ADAPTIVE,
    DETECT_CW,
    DETECT_PGD,
    EOT,
    NAIVE,
    UNDEFENDED,
    PreprocessingResult,
)
from ...viz.input_preprocessing import accuracy_vs_eps, clean_cost_figure, detection_roc_figure
from ..blocks import Block, Chart, Checks, Metric, Metrics, Table, Text, pct
from . import Part, builder, flagged_note


@builder("input_preprocessing")
def input_preprocessing(res: PreprocessingResult, dataset: Dataset | None) -> Part:
    top = res.eps_max
    naive = res.accuracy_at(NAIVE)
    items = [
        Metric(
            "Clean accuracy behind the transforms",
            pct(res.defended_clean),
            f"{res.defended_clean - res.undefended_clean:+.1%} vs undefended",
        ),
        Metric(
            f"Naive PGD accuracy at ε={top:g}",
            pct(naive, 0),
            flagged_note(res.failed_checks(NAIVE), "gradients as written"),
        ),
        Metric(
            f"BPDA PGD accuracy at ε={top:g}",
            pct(res.accuracy_at(BPDA), 0),
            flagged_note(res.failed_checks(BPDA), f"{res.accuracy_at(BPDA) - naive:+.0%} vs naive"),
        ),
    ]
    if res.random:
        items.append(
            Metric(
                f"EOT PGD accuracy at ε={top:g}",
                pct(res.accuracy_at(EOT), 0),
                f"{res.eot_samples} draws",
            )
        )
    items.append(
        Metric(f"Undefended PGD accuracy at ε={top:g}", pct(res.accuracy_at(UNDEFENDED), 0))
    )
    _, text = res.verdict()
    blocks: list[Block] = [
        Metrics(tuple(items), caption=f"{res.defense}, on {res.n} test images."),
        Text(text),
        Chart("eps", accuracy_vs_eps(res.sweep(), defense=res.defense, chance=res.chance)),
        Chart("clean", clean_cost_figure(res.clean())),
    ]
    tried = {"PGD", "Transfer", "BPDA"} | ({"EOT"} if res.random else set())
    if res.squeezing:
        det = res.detection()

        def rate(attack: str, column: str = "detection_rate") -> float:
            return float(det.loc[det["attack"] == attack, column].iloc[0])

        blocks.append(
            Metrics(
                (
                    Metric(f"PGD (ε={top:g}) detected", pct(rate(DETECT_PGD), 0)),
                    Metric("C&W detected", pct(rate(DETECT_CW), 0)),
                    Metric(
                        "Adaptive attacker detected",
                        pct(rate(DETECT_ADAPTIVE), 0),
                        f"success {rate(DETECT_ADAPTIVE, 'success_rate'):.0%}",
                    ),
                ),
                caption=(
                    f"Feature squeezing ({res.squeezers}) on the undefended model: threshold "
                    f"{res.threshold:.3f} set on {res.n_calibration} held-out clean images "
                    f"for {res.target_fpr:.0%} false positives (it flags {res.clean_fpr:.1%} "
                    f"of the {res.n} clean test images)."
                ),
            )
        )
        if not res.roc().empty:
            blocks.append(
                Chart(
                    "roc",
                    detection_roc_figure(
                        res.roc(),
                        target_fpr=res.target_fpr,
                        squeezers=res.squeezers,
                        n_clean=res.n,
                    ),  # fmt: skip
                )
            )
        tried.add("C&W")
    blocks.append(Checks(tuple(res.sanity())))
    blocks.append(Table("sweep", "Accuracy against ε per attack", res.sweep()))
    blocks.append(Table("clean", "Clean accuracy per transform", res.clean()))
    if res.squeezing:
        blocks.append(Table("detection", "Feature-squeezing detection", res.detection()))
    how = "BPDA and EOT" if res.random else "BPDA"
    threat = (
        f"A white-box attacker with an L∞ budget ε up to {top:g} against the model behind "
        f"{res.defense}: naive (gradients through the transforms as written, which "
        f"rounding masks) and adaptive ({how}, Athalye et al. 2018), which is the number "
        "that counts."
    )
    if res.squeezing:
        threat += (
            " Against feature squeezing as a detector: an attacker unaware of it (PGD, C&W) "
            "and one who knows it and keeps its score under the threshold (He et al. 2017)."
        )
    return Part(blocks, threat=threat, tried=tried)
