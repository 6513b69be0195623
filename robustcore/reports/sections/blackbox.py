"""Report sections of the Black-box attacks page: the query attacks ("blackbox") and the
transfer matrix ("transfer")."""

from __future__ import annotations

import math

from ...data import Dataset
from ...experiments.blackbox import BlackBoxResult
from ...experiments.transfer import TransferMatrixResult
from ...viz.blackbox import query_histogram, success_vs_queries_figure, transfer_heatmap
from ...viz.figures import adversarial_gallery
from ..blocks import Block, Chart, Metric, Metrics, Table, pct
from . import Part, builder

TRIED = {"simba_pixel": "SimBA", "simba_dct": "SimBA", "zoo": "ZOO"}
"""The page's attack keys → their names in the attack catalogue."""

GALLERY_CAPTION = (
    "Successful attacks first. Rows: original; adversarial input with the model's "
    "prediction (✗ = fooled) and confidence; the perturbation, amplified. The table gives "
    "the queries each image cost."
)


def _count(value: float) -> str:
    """A query count ("1,234"); "–" when no image succeeded (NaN)."""
    try:
        return "–" if math.isnan(float(value)) else f"{float(value):,.0f}"
    except (TypeError, ValueError):
        return "–"


@builder("blackbox")
def blackbox(res: BlackBoxResult, dataset: Dataset | None) -> Part:
    """The page's success cards, success against queries, the query histogram with its
    summary table and the first attack's gallery (the page's picker opens on it). The
    per-image table is left to the ZIP export: one row per attack and image."""
    items = []
    for name in res.attacks:
        m = res.attack_metrics(name)
        items.append(
            Metric(
                f"{name} success",
                pct(m["success_rate"], 0),
                f"Median queries of the successful ones: {_count(m['median_queries'])}; "
                f"mean L2 {m['mean_l2']:.2f}; {m['seconds']:.1f} s.",
            )
        )
    blocks: list[Block] = [
        Metrics(tuple(items), caption=f"Of {res.n} correctly classified test images."),
        Chart(
            "queries",
            success_vs_queries_figure(res.curves()),
            caption=(
                f"Each line: the fraction of the {res.n} images fooled within a query budget "
                f"(service: {res.service}). One run gives the whole curve: every image stops "
                "at its first success, so its query count is what that success cost."
            ),
        ),
        Chart("query_counts", query_histogram(res.successful_queries())),
        Table("attacks", "Per attack", res.summary_table()),
    ]
    if res.attacks:  # the page's gallery opens on the first attack
        name = res.attacks[0]
        clean, adv, rows = res.gallery(name)
        image = getattr(clean, "ndim", 0) == 4 and (dataset is None or dataset.modality == "image")
        if image and len(rows):
            blocks.append(
                Chart("gallery", adversarial_gallery(clean, adv, rows), caption=GALLERY_CAPTION)
            )
            blocks.append(Table("gallery", f"Gallery: {name}", rows))
        else:
            blocks.append(Table("gallery", f"Gallery: {name}", rows, caption=GALLERY_CAPTION))

    p = res.params()
    keys = res.keys or [k for k in TRIED if k in p.get("attacks", ())]
    budgets = []
    if any(k.startswith("simba") for k in keys):
        budgets.append(
            f"SimBA at most {p.get('simba_queries', 0):,} queries per image with steps of "
            f"length ε = {p.get('eps', '?')}"
        )
    if "zoo" in keys:
        budgets.append(f"ZOO at most {p.get('zoo_queries', 0):,}")
    answers = "class probabilities" if res.service == "none" else f"answers ({res.service})"
    target = p.get("target_class")
    if target is None:
        goal = "any wrong class"
    else:
        names = [str(c) for c in dataset.class_names] if dataset is not None else []
        goal = f"class {names[target] if target < len(names) else target}"
    return Part(
        blocks,
        threat=(
            f"A black-box attacker who sees only the service's {answers}, never the "
            f"weights or gradients, and sends queries ({'; '.join(budgets)}), pushing each "
            f"of {res.n} correctly classified test images to {goal}; measured by the share "
            "fooled within the query budget (the perturbation size is not bounded)."
        ),
        tried={TRIED[k] for k in keys if k in TRIED},
    )


@builder("transfer")
def transfer(res: TransferMatrixResult, dataset: Dataset | None) -> Part:
    """The page's means, the transfer heat map and the matrix."""
    matrix = res.matrix()
    blocks: list[Block] = [
        Metrics(
            (
                Metric("White-box (diagonal), mean", pct(res.whitebox_mean, 0)),
                Metric(
                    "Transfer (off-diagonal), mean",
                    pct(res.transfer_mean, 0),
                    f"{res.transfer_mean - res.whitebox_mean:+.0%}",
                ),
                Metric("Best transfer pair", pct(res.transfer_best, 0)),
            )
        ),
        Chart(
            "matrix",
            transfer_heatmap(matrix),
            caption=(
                f"{res.attack}, ε = {res.eps:g} (L∞) on {res.n} test images. Success = the "
                "target misclassifies an image it classified correctly before. The diagonal "
                "is the white-box attack on the model itself; the other cells show how far "
                "adversarial examples carry to a model the attacker never touched (Papernot "
                "et al. 2016)."
            ),
        ),
        Table("matrix", "Transfer matrix", matrix),
    ]
    archs = list(dict.fromkeys(matrix["surrogate"].astype(str))) if len(matrix) else []
    tried = {"Transfer"} | ({res.attack} if res.attack in ("PGD", "FGSM") else set())
    return Part(
        blocks,
        threat=(
            f"An attacker who crafts {res.attack} at L∞ ε = {res.eps:g} on a surrogate model "
            "trained on the same data with the same recipe and sends the result unchanged "
            "to a target it never touched (no weights, gradients or adaptive queries); "
            f"every pair of {', '.join(archs)} on {res.n} test images, measured by the share "
            "of right answers turned wrong."
        ),
        tried=tried,
    )
