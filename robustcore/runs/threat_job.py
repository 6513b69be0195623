"""The "Threat models" experiment: one model, one budget, four attackers who know more or less.

The same images of the same model are attacked by

* **white-box**: PGD (Madry et al. 2018) with the model's own gradients, L∞ budget ε;
* **gray-box**: PGD with the same ε on a *surrogate* of another architecture trained on the
  same training data, sent to the model once (transfer; Papernot et al. 2016);
* **black-box (scores)**: SimBA-DCT (Guo et al. 2019) and ZOO (Chen et al. 2017) through
  the prediction API, at most ``query_budget`` queries per image;
* **label-only**: PGD on a surrogate trained on the labels the API returned for
  ``label_budget`` training images (Papernot et al. 2017), then transfer; those queries
  are part of its cost.

Success is always measured on images the model classified correctly, so a success means
the attack changed a right answer into a wrong one. SimBA's and ZOO's perturbations are not
confined to the L∞ ε-ball (SimBA takes steps of length ε in the chosen basis; ZOO
minimises an L2 penalty), so next to their success the table gives their L∞ and L2 norms
and the success *within the same L∞ ε*, the number that is comparable with the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, QueryModel
from ..attacks.evasion.base import AttackResult, model_device
from ..attacks.evasion.transfer import TransferResult, surrogate_entry, transfer_attack
from ..data import Dataset
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures, predict_logits
from ..params import Configurable, param
from .runner import JobContext
from .store import RunResult

Progress = Callable[[float, str], None]

AUTO = "auto"
MAX_IMAGES = 1000
GALLERY_SIZE = 6
EPS_TOLERANCE = 1e-5
"""Float slack when checking that a perturbation stays within the L∞ ε-ball."""

BLACK_BOX = {"simba": "SimBA-DCT", "simba_pixel": "SimBA-pixel", "zoo": "ZOO"}
"""The score-based black-box attacks the plan may run: key → name in tables."""

BLACK_BOX_BUDGET = {
    "simba": lambda eps: f"steps of length ε = {eps:g} along DCT directions, no L∞ bound",
    "simba_pixel": lambda eps: f"each pixel moves by ±ε = {eps:g}, within one pass",
    "zoo": lambda eps: "L2-penalised (Carlini–Wagner loss), no L∞ bound",
}

THREAT_MODELS: tuple[str, ...] = ("white-box", "gray-box", "black-box", "label-only")
"""From most to least attacker knowledge."""

KNOWLEDGE = {
    "white-box": "the model itself: architecture, weights and gradients",
    "gray-box": "the training data, not the model: it trains a surrogate of its own",
    "black-box": "only the prediction API's class probabilities, one query at a time",
    "label-only": "only the prediction API's top-1 labels; it trains a surrogate on them",
}


@dataclass(frozen=True)
class ThreatPlan(Configurable):
    """One model, one budget, four threat models side by side."""

    name = "threat_models"
    title = "Threat models"
    paper = (
        "Papernot et al. 2016, Transferability in Machine Learning; Papernot et al. 2017, "
        "Practical Black-Box Attacks against Machine Learning; Madry et al. 2018; "
        "Guo et al. 2019 (SimBA); Chen et al. 2017 (ZOO)"
    )

    eps: float = param(
        0.2,
        low=0.01,
        high=1.0,
        step=0.01,
        label="ε (L∞ budget)",
        help="How far each pixel may move, for PGD and the transfer attacks; also SimBA's "
        "step length. 0.3 is the usual MNIST budget, 0.2 separates the threat models more.",
    )
    n: int = param(
        30,
        low=10,
        high=MAX_IMAGES,
        step=10,
        label="Test images",
        help="Images attacked (all classified correctly by the model before the attack).",
    )
    pgd_steps: int = param(
        20, low=1, high=200, step=1, label="PGD steps", help="Gradient steps of every PGD attack."
    )
    surrogate_arch: str = param(
        AUTO,
        choices=(AUTO, *ARCHITECTURES),
        label="Surrogate architecture",
        help="The attacker's own network (gray box and label-only). auto: LeNet-5, or "
        "another cheap architecture when the model is a LeNet-5.",
    )
    query_budget: int = param(
        1000,
        low=10,
        high=50_000,
        step=100,
        label="Query budget per image (black box)",
        help="The most queries SimBA and ZOO may send for each image.",
    )
    simba: bool = param(True, label="SimBA-DCT", help="Run SimBA with the DCT basis.")
    simba_pixel: bool = param(
        False,
        label="SimBA-pixel",
        help="Also run SimBA with the pixel basis: each pixel moves at most once by ε, so "
        "(within one pass over the pixels) it stays inside the L∞ ε-ball like PGD.",
    )
    zoo: bool = param(True, label="ZOO", help="Run ZOO (coordinate-wise finite differences).")
    label_budget: int = param(
        1000,
        low=10,
        high=100_000,
        step=100,
        label="Label queries for the surrogate",
        help="Training images the label-only attacker sends to the API; it trains its "
        "surrogate on the labels that come back.",
    )
    label_epochs: int = param(
        20,
        low=1,
        high=200,
        step=1,
        label="Label surrogate epochs",
        help="Training passes over the queried images (few images need more passes).",
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        step=1,
        label="Seed",
        help="Chooses the images, PGD's random starts, SimBA's and ZOO's random orders and "
        "the label-only attacker's queries.",
    )


def resolve_surrogate(dataset: Dataset, plan: ThreatPlan, target_arch: str | None) -> str:
    """The surrogate architecture: the plan's choice, or for ``auto`` a cheap one other than
    the target's (LeNet-5, then a small CNN, an MLP, logistic regression)."""
    allowed = compatible_architectures(dataset.modality, dataset.input_shape)
    if plan.surrogate_arch != AUTO:
        if plan.surrogate_arch not in allowed:
            raise ValidationError(
                f"Surrogate architecture {plan.surrogate_arch!r} does not fit {dataset.name}; "
                f"choose one of {', '.join(allowed)}."
            )
        return plan.surrogate_arch
    for a in ("lenet5", "small_cnn", "mlp", "logreg"):
        if a in allowed and a != target_arch:
            return a
    return allowed[0]


def attack_configs(plan: ThreatPlan) -> dict[str, Configurable]:
    """The attacks the plan runs, each a full parameter declaration."""
    out: dict[str, Configurable] = {
        "pgd": PGD(eps=plan.eps, norm="linf", steps=plan.pgd_steps, seed=plan.seed)
    }
    if plan.simba:
        from ..attacks.evasion import SimBA

        out["simba"] = SimBA(
            basis="dct", eps=plan.eps, max_queries=plan.query_budget, seed=plan.seed
        )
    if plan.simba_pixel:
        from ..attacks.evasion import SimBA

        out["simba_pixel"] = SimBA(
            basis="pixel", eps=plan.eps, max_queries=plan.query_budget, seed=plan.seed
        )
    if plan.zoo:
        from ..attacks.evasion import ZOO

        out["zoo"] = ZOO(max_queries=plan.query_budget, seed=plan.seed)
    return out


def threat_spec(
    dataset: Dataset,
    model_id: str | Mapping[str, Any],
    plan: ThreatPlan,
    recipe: TrainRecipe,
    *,
    target_arch: str | None = None,
) -> dict[str, Any]:
    """The run spec: dataset (with fingerprint), model identity, the plan with the resolved
    surrogate architecture, the surrogates' training recipe and every attack's settings."""
    surrogate = resolve_surrogate(dataset, plan, target_arch)
    if plan.simba and len(dataset.input_shape) != 3:
        raise ValidationError(
            f"SimBA-DCT needs images; {dataset.name} is {dataset.modality} data. Untick "
            "SimBA-DCT and use SimBA-pixel (one feature at a time) instead."
        )
    if plan.n > dataset.n_test:
        raise ValidationError(
            f"{dataset.name} has {dataset.n_test:,} test images; choose at most that many."
        )
    if plan.label_budget > dataset.n_train:
        raise ValidationError(
            f"The label-only attacker can query at most the {dataset.n_train:,} training "
            f"images of {dataset.name}; got a budget of {plan.label_budget:,}."
        )
    return {
        "kind": "threat_models",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model_id,
        "plan": {**plan.to_dict(), "surrogate_arch": surrogate},
        "surrogate_recipe": recipe.to_dict(),
        "attacks": {k: a.to_dict() for k, a in attack_configs(plan).items()},
        "seed": plan.seed,
    }


def select_correct(
    model: nn.Module, dataset: Dataset, n: int, seed: int
) -> tuple[torch.Tensor, float]:
    """The first ``n`` test indices, in a seeded random order, that the model classifies
    correctly, and the model's accuracy on the whole test split."""
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(dataset.n_test, generator=gen)
    pred = predict_logits(model, dataset.x_test).argmax(dim=1)
    correct = pred == dataset.y_test.cpu()
    picked = order[correct[order]][:n]
    if picked.numel() < n:
        raise ValidationError(
            f"The model classifies only {picked.numel()} test images correctly; ask for at "
            f"most that many."
        )
    return picked, float(correct.float().mean())


def _row(
    key: str,
    threat: str,
    attack: str,
    success: torch.Tensor,
    l2: torch.Tensor,
    linf: torch.Tensor,
    eps: float,
    *,
    queries_total: float,
    seconds: float,
    setup_seconds: float = 0.0,
    setup_queries: int = 0,
    budget: str,
) -> dict[str, Any]:
    s = success.detach().cpu().bool()
    l2 = l2.detach().cpu().float()
    linf = linf.detach().cpu().float()
    n = int(s.numel())
    within = s & (linf <= eps + EPS_TOLERANCE)
    return {
        "key": key,
        "threat_model": threat,
        "attack": attack,
        "knowledge": KNOWLEDGE[threat],
        "success_rate": float(s.float().mean()) if n else 0.0,
        "success_within_eps": float(within.float().mean()) if n else 0.0,
        "n": n,
        "queries_per_image": float(queries_total) / max(n, 1),
        "queries_total": float(queries_total),
        "setup_queries": int(setup_queries),
        "seconds": float(seconds),
        "setup_seconds": float(setup_seconds),
        "mean_l2": float(l2[s].mean()) if bool(s.any()) else float("nan"),
        "mean_linf": float(linf[s].mean()) if bool(s.any()) else float("nan"),
        "max_linf": float(linf[s].max()) if bool(s.any()) else float("nan"),
        "budget": budget,
    }


def _weights(plan: ThreatPlan) -> dict[str, float]:
    w = {"select": 0.02, "white": 0.08, "gray_train": 0.12, "gray": 0.05}
    w["simba"] = 0.3 if plan.simba else 0.0
    w["simba_pixel"] = 0.3 if plan.simba_pixel else 0.0
    w["zoo"] = 0.3 if plan.zoo else 0.0
    w["label"] = 0.13
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def run_threat(
    model: nn.Module,
    dataset: Dataset,
    plan: ThreatPlan,
    recipe: TrainRecipe,
    progress: Progress | None = None,
    *,
    target_arch: str | None = None,
    label: str = "",
) -> RunResult:
    """Attack ``model`` under each threat model with the plan's budget (see the module doc).

    Args:
        model: the model under attack (its gradients are used by the white-box attacker
            only; the others query it through a :class:`QueryModel`).
        dataset: its task; the surrogates train on its training split.
        plan: the budget and settings.
        recipe: the surrogates' training recipe (the model's own recipe when it is known:
            the gray-box attacker trains "the same way on the same data").
        progress: ``progress(fraction, message)``; it may raise to cancel.
        target_arch: the model's architecture, when known (``auto`` avoids it).

    Returns:
        Tables ``threats`` (one row per attack, with success, cost and norms) and
        ``gallery``; metrics per attack; artifacts ``clean`` and ``adv.<key>`` (a few images).
    """
    report = progress or (lambda f, m: None)
    w = _weights(plan)
    cursor = [0.0]

    def stage(key: str) -> Progress:
        start = cursor[0]
        cursor[0] += w[key]
        return lambda f, m: report(min(0.999, start + w[key] * max(0.0, min(1.0, f))), m)

    sur_arch = resolve_surrogate(dataset, plan, target_arch)
    attacks = attack_configs(plan)
    pgd: PGD = attacks["pgd"]  # type: ignore[assignment]
    device = model_device(model)
    bounds = (dataset.bounds[0].to(device), dataset.bounds[1].to(device))
    eps = float(plan.eps)

    stage("select")(0.0, "choosing images the model classifies correctly")
    idx, clean_acc = select_correct(model, dataset, plan.n, plan.seed)
    x = dataset.x_test[idx].to(device)
    y = dataset.y_test[idx].to(device)
    n = int(y.shape[0])
    rows: list[dict[str, Any]] = []
    advs: dict[str, torch.Tensor] = {}
    preds: dict[str, torch.Tensor] = {}

    # White box: PGD with the model's gradients.
    white = pgd.run(model, x, y, bounds=bounds, progress=stage("white"))
    rows.append(
        _row(
            "white",
            "white-box",
            f"PGD-{pgd.steps}",
            white.success,
            white.l2,
            white.linf,
            eps,
            queries_total=0,
            seconds=white.seconds,
            budget=f"L∞ ε = {eps:g}, {pgd.steps} gradient steps",
        )
    )
    advs["white"], preds["white"] = white.x_adv, white.pred

    # Gray box: a surrogate trained on the same data, then transfer.
    entry = surrogate_entry(dataset, sur_arch, recipe, source="data", progress=stage("gray_train"))
    gray = transfer_attack(entry, model, x, y, pgd, bounds=bounds, progress=stage("gray"))
    rows.append(
        _row(
            "gray",
            "gray-box",
            f"transfer from {sur_arch} (same data)",
            gray.target_success,
            gray.l2,
            gray.linf,
            eps,
            queries_total=float(gray.target_queries.sum()),
            seconds=gray.seconds,
            setup_seconds=float(entry.metrics.get("train_seconds", 0.0)),
            budget=f"L∞ ε = {eps:g}; 1 query per image to check",
        )
    )
    advs["gray"], preds["gray"] = gray.x_adv, gray.target_pred
    metrics: dict[str, Any] = {"gray.surrogate_accuracy": float(entry.metrics["test_acc"])}

    # Black box with scores: SimBA-DCT and ZOO through the query interface.
    for key, title in BLACK_BOX.items():
        if key not in attacks:
            continue
        api = QueryModel(model, output="probs")
        res: AttackResult = attacks[key].run(api, x, y, bounds=bounds, progress=stage(key))
        used = int(api.queries.sum())
        rows.append(
            _row(
                key,
                "black-box",
                title,
                res.success,
                res.l2,
                res.linf,
                eps,
                queries_total=used,
                seconds=res.seconds,
                budget=f"≤ {plan.query_budget:,} queries per image; " + BLACK_BOX_BUDGET[key](eps),
            )
        )
        advs[key], preds[key] = res.x_adv, res.pred

    # Label only: a surrogate trained on the API's labels, then transfer.
    lrec = recipe.replace(epochs=plan.label_epochs)
    label_api = QueryModel(model, output="labels")
    lentry = surrogate_entry(
        dataset,
        sur_arch,
        lrec,
        source="labels",
        target=label_api,
        budget=plan.label_budget,
        seed=plan.seed,
        progress=stage("label"),
    )
    setup_q = int(label_api.queries.sum())
    lres: TransferResult = transfer_attack(lentry, model, x, y, pgd, bounds=bounds)
    rows.append(
        _row(
            "label",
            "label-only",
            f"transfer from {sur_arch} ({setup_q:,} labels)",
            lres.target_success,
            lres.l2,
            lres.linf,
            eps,
            queries_total=float(lres.target_queries.sum()) + setup_q,
            seconds=lres.seconds,
            setup_seconds=float(lentry.metrics.get("train_seconds", 0.0)),
            setup_queries=setup_q,
            budget=f"L∞ ε = {eps:g}; {setup_q:,} label queries to train + 1 per image",
        )
    )
    advs["label"], preds["label"] = lres.x_adv, lres.target_pred
    metrics.update(
        {
            "label.surrogate_accuracy": float(lentry.metrics["test_acc"]),
            "label.fidelity": float(lentry.metrics.get("fidelity", float("nan"))),
            "label.setup_queries": setup_q,
        }
    )

    table = pd.DataFrame(rows)
    table["cost_seconds"] = table["seconds"] + table["setup_seconds"]
    for r in rows:
        k = r["key"]
        metrics[f"success.{k}"] = r["success_rate"]
        metrics[f"success_within_eps.{k}"] = r["success_within_eps"]
        metrics[f"queries_per_image.{k}"] = r["queries_per_image"]
    white_rate = rows[0]["success_rate"]
    beaten = [r["attack"] for r in rows[1:] if r["success_within_eps"] > white_rate + 1e-9]
    metrics.update(
        {
            "eps": eps,
            "n": n,
            "clean_accuracy": clean_acc,
            "surrogate_arch": sur_arch,
            "query_budget": int(plan.query_budget),
            "label_budget": int(plan.label_budget),
            "whitebox_beats_all": not beaten,
            "beats_whitebox": beaten,
        }
    )

    # A small gallery: the same images under every attack.
    g = torch.arange(min(GALLERY_SIZE, n))
    names = [str(c) for c in dataset.class_names]
    artifacts: dict[str, Any] = {"clean": x[g].cpu().numpy().astype(np.float32)}
    gallery = []
    for key, adv in advs.items():
        artifacts[f"adv.{key}"] = adv[g].detach().cpu().numpy().astype(np.float32)
        for j in g.tolist():
            gallery.append(
                {
                    "attack": key,
                    "slot": j,
                    "true": names[int(y[j])],
                    "predicted": names[int(preds[key][j])],
                    "fooled": int(preds[key][j]) != int(y[j]),
                }
            )
    report(1.0, "done")
    return RunResult(
        metrics=metrics,
        tables={"threats": table, "gallery": pd.DataFrame(gallery)},
        artifacts=artifacts,
        label=label or f"Threat models at ε={eps:g}",
    )


def threat_job(
    model: nn.Module,
    dataset: Dataset,
    plan: ThreatPlan,
    recipe: TrainRecipe,
    *,
    target_arch: str | None = None,
    label: str = "",
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` running :func:`run_threat`."""

    def job(ctx: JobContext) -> RunResult:
        return run_threat(
            model, dataset, plan, recipe, ctx.progress, target_arch=target_arch, label=label
        )

    return job


def main(argv: list[str] | None = None) -> None:
    """``python -m robustcore threats [--eps 0.3 …]``: run the comparison on a zoo
    model and print the table as Markdown (flags come from :class:`ThreatPlan`)."""
    import argparse
    import time

    from ..data import load
    from ..device import configure_threads
    from ..models import train_entry
    from ..params import add_arguments, from_namespace

    parser = argparse.ArgumentParser(prog="python -m robustcore threats", description=main.__doc__)
    parser.add_argument("--dataset", default="mnist5k", help="Dataset (default mnist5k).")
    parser.add_argument("--arch", default="small_cnn", help="The target's architecture.")
    parser.add_argument(
        "--epochs", type=int, default=5, help="The target's (and surrogates') epochs."
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: env).")
    add_arguments(parser, ThreatPlan)
    args = parser.parse_args(argv)
    threads = configure_threads(args.threads)
    plan = from_namespace(ThreatPlan, args)
    ds = load(args.dataset)
    recipe = TrainRecipe(epochs=args.epochs)
    target = train_entry(args.arch, ds, recipe)
    t0 = time.perf_counter()
    res = run_threat(target.model, ds, plan, recipe, target_arch=args.arch)
    wall = time.perf_counter() - t0
    t = res.tables["threats"]
    cols = [
        "threat_model",
        "attack",
        "success_rate",
        "success_within_eps",
        "queries_per_image",
        "seconds",
        "setup_seconds",
        "mean_linf",
        "mean_l2",
    ]
    print(
        f"{args.arch} on {ds.name} (test accuracy {res.metrics['clean_accuracy']:.1%}), "
        f"{plan.n} correctly classified test images, L∞ ε = {plan.eps:g}, "
        f"{plan.query_budget:,} queries per image, {plan.label_budget:,} label queries, "
        f"{threads} thread(s); whole run {wall:.1f} s\n"
    )
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for _, r in t[cols].iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c.startswith("success"):
                cells.append(f"{v:.0%}")
            elif isinstance(v, float):
                cells.append(f"{v:,.2f}" if c != "queries_per_image" else f"{v:,.1f}")
            else:
                cells.append(str(v))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
