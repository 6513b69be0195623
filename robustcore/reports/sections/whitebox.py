"""Report sections of the White-box attacks page (one run: the page's what-if is a run of
its own and gets its own section)."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.whitebox import CW, WORST_CASE, WhiteBoxResult
from ...viz import accuracy_vs_eps
from ...viz.figures import adversarial_gallery
from ...viz.whitebox import (
    NORM_TITLES,
    gallery_default,
    norm_default,
    norm_histogram,
    success_vs_budget,
    sweep_curves,
)
from ..blocks import Block, Chart, Checks, Metric, Metrics, Table, Text, accuracy_basis, pct
from . import Part, builder, flagged_note

TRIED = {"fgsm": "FGSM", "pgd": "PGD", "cw": "C&W"}
"""The page's attack keys → their names in the attack catalogue."""

GALLERY_CAPTION = (
    "Successful attacks first. Rows: original with its true label; adversarial input with "
    "the model's prediction (✗ = fooled) and confidence; perturbation x_adv − x, amplified "
    "so that it is visible (red: brighter, blue: darker)."
)


def _is_image(images) -> bool:
    """Whether stored inputs are images (N, C, H, W), not rows of features."""
    return getattr(images, "ndim", 0) == 4


@builder("whitebox")
def whitebox(res: WhiteBoxResult, dataset: Dataset | None) -> Part:
    """The page's metrics, accuracy against ε, C&W's budget curve, the default gallery, the
    perturbation norms, the sanity checks and the sweep table of one run."""
    at_max = res.accuracy_at_max()
    items = [Metric("Clean accuracy", pct(res.clean_accuracy), f"On {res.n} inputs.")]
    for name in ("FGSM", "PGD", WORST_CASE):
        if name in at_max:
            items.append(
                Metric(
                    f"{name} accuracy at ε={res.eps_max:g}",
                    pct(at_max[name]),
                    flagged_note(
                        res.failed_checks(name), f"{at_max[name] - res.clean_accuracy:+.1%}"
                    ),
                )
            )
    cw = res.cw_summary()
    if cw:
        items.append(
            Metric(
                "C&W success",
                pct(cw["success_rate"], 0),
                flagged_note(
                    res.failed_checks(CW),
                    f"Median L2 of successful perturbations: {cw['median_l2']:.2f}; mean "
                    f"{cw['mean_l2']:.2f} (on {cw['n']} inputs).",
                ),
            )
        )
    n_test = dataset.n_test if dataset is not None else None
    blocks: list[Block] = [Metrics(tuple(items), caption=accuracy_basis(res.n, n_test))]
    curves = sweep_curves([("", res)])
    if curves:
        blocks.append(
            Chart(
                "sweep",
                accuracy_vs_eps(curves, chance=res.chance, x_title=f"ε ({NORM_TITLES[res.norm]})"),
            )
        )
    if res.has_cw:
        blocks.append(Chart("cw_curve", success_vs_budget({CW: res.cw_curve()})))
    options = res.gallery_options()
    if options:
        attack, eps = options[gallery_default(options)]
        clean, adv, rows = res.gallery(attack, eps)
        shown = attack if eps is None else f"{attack} at ε={eps:g}"
        if _is_image(clean) and (dataset is None or dataset.modality == "image"):
            blocks.append(
                Chart(
                    "gallery",
                    adversarial_gallery(clean, adv, rows),
                    caption=f"{shown}. {GALLERY_CAPTION}",
                )
            )
            blocks.append(Table("gallery", f"Gallery: {shown}", rows))
        else:
            blocks.append(Table("gallery", f"Gallery: {shown}", rows, caption=GALLERY_CAPTION))
    groups = res.successful_l2(norm_default(res.norm_eps_values()))
    if groups:
        blocks.append(
            Chart(
                "norms",
                norm_histogram(groups, norm="l2"),
                caption=(
                    "L2 length of each successful perturbation. For L∞ attacks the L∞ norm "
                    "is at most ε by construction; C&W minimises L2, so its bars sit to the "
                    f"left. Norm: {res.norm}."
                ),
            )
        )
    checks = res.sanity()
    if checks is None:
        blocks.append(Text("Sanity checks were switched off for this run."))
    else:
        blocks.append(Checks(tuple(checks)))
    blocks.append(Table("sweep", "Accuracy per attack and ε", res.sweep()))

    p = res.params()
    chosen = [k for k in TRIED if k in p.get("attacks", ())]
    tried = {TRIED[k] for k in chosen}
    if checks is not None and "pgd" not in chosen:
        tried.add("PGD")  # the sanity checks' unbounded attack is a PGD
    target = p.get("target_class")
    if target is not None:
        names = [str(c) for c in dataset.class_names] if dataset is not None else []
        goal = f"toward class {names[target] if target < len(names) else target}"
    else:
        goal = "to any wrong class"
    swept = " and ".join(TRIED[k] for k in chosen if k != "cw")
    threat = "A white-box attacker who knows the model's weights and gradients"
    if swept:
        threat += (
            f" moves each of {res.n:,} test inputs within an {NORM_TITLES[res.norm]} ball of "
            f"radius ε up to {res.eps_max:g} ({swept}), pushing it {goal}"
        )
    if "cw" in chosen:
        threat += f"; C&W looks for the smallest L2 change that flips the decision ({goal})"
    threat += ". Measured by the accuracy that remains (C&W: by its success and L2 norms)."
    return Part(blocks, threat=threat, tried=tried)
