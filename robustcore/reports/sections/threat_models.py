"""Report sections of the Threat models page."""

from __future__ import annotations

from ...data import Dataset
from ...evaluation.sanity import SanityCheck
from ...experiments.threat_models import CLI_COLUMNS, ThreatModelsResult
from ...viz.threat_models import explanations, threat_figure, threat_gallery, whitebox_verdict
from ..blocks import Block, Chart, Checks, Metric, Metrics, Table, Text, pct
from . import Part, builder, flagged_note

TRIED = {
    "white": "PGD",
    "gray": "Transfer",
    "label": "Transfer",
    "simba": "SimBA",
    "simba_pixel": "SimBA",
    "zoo": "ZOO",
}
"""The table's attack keys → their names in the attack catalogue."""

COLUMNS = [*CLI_COLUMNS[:5], "queries_total", *CLI_COLUMNS[5:]]
"""The table's columns a report shows (the page's wide table less the long texts of
knowledge and budget, which the explanations say; the ZIP export holds every column)."""

CHECK = "White-box at least as strong as every attacker who knows less"

TABLE_CAPTION = (
    "success_rate: images the model classified correctly that it misclassifies after the "
    "attack; success_within_eps: the same, counting only perturbations inside the L∞ "
    "ε-ball; queries_total includes the label-only attacker's training queries; "
    "setup_seconds is the surrogate's training time, paid once (recorded when it was "
    "trained, even if it is loaded from the model zoo now)."
)


@builder("threat_models")
def threat_models(res: ThreatModelsResult, dataset: Dataset | None) -> Part:
    """The page's metrics, the knowledge/cost chart, its verdict, the explanations, the
    table and the gallery of the same images under each attacker."""
    passed, verdict = whitebox_verdict(res)
    failed = [] if passed else [SanityCheck(CHECK, "warn", verdict)]
    items = [Metric("Clean accuracy", pct(res.clean_accuracy), "On the whole test split.")]
    cards: dict[str, Metric] = {}
    for threat, title in (
        ("white-box", "White-box"),
        ("gray-box", "Gray-box"),
        ("label-only", "Label-only"),
    ):
        r = res.row(threat)
        if r is not None:
            note = flagged_note(failed if threat == "white-box" else [], str(r["attack"]))
            cards[threat] = Metric(f"{title} success", pct(r["success_rate"], 0), note)
    top = res.best_black_box()
    if top is not None:
        cards["black-box"] = Metric(
            "Black-box success within ε",
            pct(top["success_within_eps"], 0),
            f"{top['attack']}; {top['success_rate']:.0%} with any perturbation size.",
        )
    # In the page's order: from most to least attacker knowledge.
    items += [cards[t] for t in ("white-box", "gray-box", "black-box", "label-only") if t in cards]
    split = f"all {dataset.n_test:,} test images" if dataset is not None else "the whole test split"
    table = res.threats()
    blocks: list[Block] = [
        Metrics(
            tuple(items),
            caption=(
                f"Clean accuracy on {split} (as on Home); success rates on the {res.n:,} "
                "correctly classified test images every attacker tries."
            ),
        ),
        Chart("threats", threat_figure(table, eps=res.eps)),
        Checks((SanityCheck(CHECK, "pass" if passed else "warn", verdict),)),
    ]
    for title, text in explanations(res):
        blocks.append(Text(f"**{title}.** {text}"))
    shown = table[[c for c in COLUMNS if c in table]]
    blocks.append(Table("threats", "Attacks by threat model", shown, caption=TABLE_CAPTION))
    clean, advs, gallery, order = res.gallery()
    if advs and getattr(clean, "ndim", 0) == 4:
        if dataset is None or dataset.modality == "image":
            blocks.append(Chart("gallery", threat_gallery(clean, advs, gallery, order=order)))
    keys = table["key"].tolist() if "key" in table else []
    return Part(
        blocks,
        threat=(
            f"Four attackers with the same L∞ budget ε = {res.eps:g} on {res.n:,} correctly "
            "classified test images, from most to least knowledge: the model's gradients "
            "(white-box), its training data only (gray-box transfer), its class "
            f"probabilities through at most {res.query_budget:,} queries per image "
            f"(black-box), and its top-1 labels for {res.label_budget:,} training images "
            "(label-only transfer); measured by the share of right answers turned wrong."
        ),
        tried={TRIED[k] for k in keys if k in TRIED},
    )
