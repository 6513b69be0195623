"""Report sections of the Postprocessing & ensembles page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.postprocessing import PostprocessingResult
from ...viz.postprocessing import defense_effects_figure
from ..blocks import Chart, Table, Text
from . import Part, builder

COLUMNS = (
    "defense",
    "accuracy",
    "abstention_rate",
    "label_agreement",
    "mi_auc",
    "mi_tpr@0.1%fpr",
    "mi_tpr@1%fpr",
    "mi_best_attack",
    "extraction_fidelity",
    "extraction_accuracy",
)


def setup_text(res: PostprocessingResult) -> str:
    """What the comparison was run on: the target, the membership candidates, the shadow
    models, the ensemble members and the copycat (under the page's table, and the report's)."""
    n = res.per_side
    parts = [
        f"Target: {res.target_description} (undefended accuracy "
        f"{res.undefended_accuracy:.1%} on the whole test split).",
        f"Membership: {n:,} members vs {n:,} non-members; each row shows the strongest of the "
        "attacks, run by an attacker who applies the same postprocessing to shadow models.",
    ]
    shadows = res.shadows()
    if shadows is not None:
        parts.append(f"{shadows['count']} shadow models ({shadows['trained']} trained now).")
    ensemble = res.ensemble()
    if ensemble is not None:
        accs = ", ".join(f"{a:.1%}" for a in ensemble["member_accuracy"])
        parts.append(f"Ensemble members: {', '.join(ensemble['archs'])} (accuracy {accs}).")
    if res.has_extraction:
        parts.append(
            "Extraction: a copycat trained on the defended API's answers; fidelity = agreement "
            "with the undefended service (for ensembles: the averaging ensemble)."
        )
    return " ".join(parts)


@builder("postprocessing")
def postprocessing(res: PostprocessingResult, dataset: Dataset | None) -> Part:
    summary = res.summary_table()
    blocks = [
        Chart("effects", defense_effects_figure(summary)),
        Table(
            "summary",
            "Each defense: accuracy, membership leakage and extraction",
            summary[[c for c in COLUMNS if c in summary.columns]],
            caption=setup_text(res),
        ),
        Table("per_attack", "Every attack against every defense", res.per_attack()),
        Text(
            "Output postprocessing changes what the service answers, not the model: it can "
            "lower membership leakage and extraction fidelity, at a cost in accuracy or "
            "abstentions, and does nothing against an attacker who sees the gradients."
        ),
    ]
    tried = {"Membership inference"} | ({"Model extraction"} if res.has_extraction else set())
    return Part(
        blocks,
        threat=(
            "A black-box attacker who sees only the defended service's answers (rounded, "
            "top-k, labels, reverse sigmoid, temperature or an ensemble's consensus) and "
            "knows the defense (its shadow models answer through it too); measured by "
            "membership-inference AUC and TPR at low FPR and by extraction fidelity."
        ),
        tried=tried,
    )
