"""Report sections of the Defensive distillation page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.defensive_distillation import ADAPTIVE, CW, NAIVE, DistillationResult
from ...viz.defensive_distillation import gradient_norm_histogram, success_vs_temperature
from ..blocks import Chart, Checks, Metric, Metrics, Table, Text
from . import Part, builder, flagged_note


@builder("defensive_distillation")
def defensive_distillation(res: DistillationResult, dataset: Dataset | None) -> Part:
    top = res.top_temperature
    success = res.success()
    models = res.models()
    naive = res.success_at(NAIVE, top)
    items = [
        Metric(
            f"Naive PGD success at T={top:g}",
            f"{naive:.0%}",
            flagged_note(
                res.failed_checks(NAIVE), f"{naive - res.undefended_success:+.0%} vs undefended"
            ),
        ),
        Metric(
            f"Adaptive PGD success at T={top:g}",
            f"{res.success_at(ADAPTIVE, top):.0%}",
            flagged_note(res.failed_checks(ADAPTIVE)),
        ),
    ]
    if CW in set(success["attack"]):
        items.append(Metric(f"C&W success at T={top:g}", f"{res.success_at(CW, top):.0%}"))
    zero = float(models.loc[models["temperature"] == top, "zero_gradients"].iloc[0])
    items.append(Metric(f"Zero gradients at T={top:g}", f"{zero:.0%}"))
    verdict = (
        "**Verdict: gradient masking, not robustness.** The sanity checks flag the distilled "
        f"model at T={top:g}: the naive attack's failure comes from vanishing gradients, and "
        "the adaptive attacks, which do not depend on them, succeed "
        f"({res.success_at(ADAPTIVE, top):.0%} for PGD on logits ÷ T)."
        if res.masked
        else "No sanity check flags the highest temperature: the naive attack is not masked here."
    )
    blocks = [
        Metrics(tuple(items)),
        Text(verdict),
        Chart(
            "success",
            success_vs_temperature(success, undefended=res.undefended_success, eps=res.eps),
        ),
        Chart("gradients", gradient_norm_histogram(res.gradient_norms())),
        Checks(tuple(res.sanity())),
        Table("success", "Attack success per temperature", success),
        Table("models", "Students", models),
    ]
    tried = {"PGD"} | ({"C&W"} if CW in set(success["attack"]) else set())
    if any("transfer" in str(a).lower() for a in success["attack"]):
        tried.add("Transfer")
    return Part(
        blocks,
        threat=(
            f"A white-box attacker with an L∞ budget ε = {res.eps:g} against distilled "
            "students, both naive (gradients of the softmax output, which distillation "
            "masks) and adaptive (PGD on the logits ÷ T, C&W on logits), which is the "
            "number that counts."
        ),
        tried=tried,
    )
