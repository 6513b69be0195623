"""Report sections of the Certified robustness page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.certified_robustness import CertifiedResult
from ...viz.certified_robustness import BOUND_NOTE, certified_vs_radius, clean_accuracy_bars
from ..blocks import Chart, Checks, Metric, Metrics, Table, Text
from . import Part, builder, flagged_note


@builder("certified_robustness")
def certified_robustness(res: CertifiedResult, dataset: Dataset | None) -> Part:
    radii = res.radii
    r_ref = radii[len(radii) // 2] if radii else 0.0
    items = []
    for sigma in res.sigmas:
        row = res.row(sigma)
        items.append(
            Metric(
                f"Certified at r={r_ref:g}, σ={sigma:g}",
                f"{res.certified_at(sigma, r_ref):.0%}",
                flagged_note(
                    res.failed_checks(sigma),
                    f"PGD-L2: {res.empirical_at(sigma, r_ref):.0%} empirical; smoothed clean "
                    f"{row['smoothed_accuracy']:.0%} vs base {row['base_clean_accuracy']:.0%}",
                ),
            )
        )
    summary = res.summary_table()
    blocks = [
        Metrics(
            tuple(items),
            caption=f"{res.images} test images, n0 = {res.n0}, n = {res.n:,}, α = {res.alpha:g}; "
            f"PGD-L2 on the first {res.attack_images}.",
        ),
        Chart("certified", certified_vs_radius(res.curve(), res.empirical()), caption=BOUND_NOTE),
        Chart("clean", clean_accuracy_bars(summary, reference=res.reference_accuracy)),
        Text(
            "The certificate holds for every attack within the radius, with probability at "
            f"least 1 − α = {1 - res.alpha:g} per image; PGD-L2 is one attack, so the empirical "
            "accuracy is an upper bound on the true robust accuracy and the certified one a "
            "lower bound."
        ),
        Checks(tuple(res.sanity())),
        Table("summary", "Per noise level σ", summary),
        Table("empirical", "Empirical accuracy (PGD-L2, judged by PREDICT)", res.empirical()),
    ]
    return Part(
        blocks,
        threat=(
            "A white-box attacker who knows the smoothed classifier and its σ, with an L2 "
            f"budget up to {max(radii, default=0):g}: PGD-L2 on the soft smoothed classifier "
            "with expectation over the noise (the adaptive attack on smoothing); the "
            "certificate bounds every attacker within its radius."
        ),
        tried={"PGD"},
    )
