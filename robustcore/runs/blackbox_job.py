"""The black-box evaluation behind the "Black-box attacks" page and ``python -m robustcore
blackbox``: SimBA and ZOO through the query interface (success against queries, query
counts, gallery), and the transfer matrix of surrogate × target architectures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import QueryModel
from ..attacks.evasion.base import EvasionAttack, model_device
from ..data import Dataset
from ..defenses.postprocess import OutputDefense, make_defense
from ..errors import ValidationError
from ..evaluation.queries import success_vs_queries
from ..models import TrainRecipe, compatible_architectures, predict_logits
from .runner import JobContext
from .store import RunResult
from .whitebox_job import GALLERY_SIZE, _gallery_pick, select_inputs

Progress = Callable[[float, str], None]
MAX_IMAGES = 2000


def attack_label(key: str, attack: Any) -> str:
    """A legend label: the attack's title, with SimBA's basis (``SimBA (DCT)``)."""
    basis = getattr(attack, "basis", None)
    if basis:
        return f"{attack.title} ({'DCT' if basis == 'dct' else basis})"
    return str(getattr(attack, "title", key))


@dataclass
class BlackBoxPlan:
    """What to run: black-box attacks (by key), on how many test images, against what service.

    Attributes:
        attacks: key (e.g. ``simba_pixel``, ``simba_dct``, ``zoo``) → configured attack
            (:data:`robustcore.attacks.evasion.BLACKBOX_ATTACKS`).
        n: test images to attack, chosen at random among those the model classifies
            correctly (as in the SimBA and ZOO papers: an image already misclassified needs
            no attack).
        defense, defense_params: an output postprocessing defense the service applies to its
            probabilities (``none``, ``rounding``, ``top_k``, …), to see how the attacks
            cope with coarser answers.
        targeted, target: push every image toward class ``target`` (images of that class are
            left out).
        seed: chooses the images.
    """

    attacks: dict[str, Any]
    n: int = 100
    defense: str = "none"
    defense_params: dict[str, Any] = field(default_factory=dict)
    targeted: bool = False
    target: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.attacks:
            raise ValidationError("Choose at least one black-box attack.")
        for key, atk in self.attacks.items():
            if not callable(getattr(atk, "run", None)) or not hasattr(atk, "to_dict"):
                raise ValidationError(f"{key!r} is not a configured black-box attack.")
        if isinstance(self.n, bool) or not 1 <= int(self.n) <= MAX_IMAGES:
            raise ValidationError(f"Attack between 1 and {MAX_IMAGES} test images; got {self.n}.")
        if self.defense == "label_only":
            raise ValidationError(
                "SimBA and ZOO read probabilities; a label-only service gives them nothing to "
                "follow. Use the Threat models page for label-only attackers."
            )
        self.output_defense()  # validates name and parameters
        if self.targeted and self.target is None:
            raise ValidationError("A targeted attack needs a target class.")

    def output_defense(self) -> OutputDefense | None:
        if self.defense == "none":
            return None
        return make_defense(self.defense, self.defense_params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attacks": {
                k: {"name": type(a).__name__, **a.to_dict()} for k, a in self.attacks.items()
            },
            "n": int(self.n),
            "defense": self.defense,
            "defense_params": dict(self.defense_params) if self.defense != "none" else {},
            "targeted": bool(self.targeted),
            "target": int(self.target) if self.targeted else None,
            "seed": int(self.seed),
        }


def blackbox_spec(
    dataset: Dataset, model_id: str | Mapping[str, Any], plan: BlackBoxPlan
) -> dict[str, Any]:
    """The run spec: dataset (with its content fingerprint), model identity and the plan."""
    return {
        "kind": "blackbox",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model_id,
        **plan.to_dict(),
    }


def correct_inputs(
    model: nn.Module,
    dataset: Dataset,
    n: int,
    seed: int,
    *,
    exclude_class: int | None = None,
) -> tuple[torch.Tensor, float]:
    """Indices of ``n`` random test inputs the model classifies correctly, and the model's
    accuracy on the candidates it looked at (for context)."""
    order = select_inputs(dataset, dataset.n_test, seed, exclude_class=exclude_class)
    pool = order[: min(order.numel(), max(4 * n, 200))]
    pred = predict_logits(model, dataset.x_test[pool]).argmax(1)
    correct = pred == dataset.y_test[pool]
    chosen = pool[correct][:n]
    if chosen.numel() < n and pool.numel() < order.numel():  # a weak model: look further
        rest = order[pool.numel() :]
        pred = predict_logits(model, dataset.x_test[rest]).argmax(1)
        chosen = torch.cat([chosen, rest[pred == dataset.y_test[rest]]])[:n]
    if chosen.numel() == 0:
        raise ValidationError("The model classifies none of the test inputs correctly.")
    return chosen, float(correct.float().mean())


def _gallery_rows(label: str, res: Any, idx: torch.Tensor, names: list[str], y) -> list[dict]:
    return [
        {
            "attack": label,
            "slot": slot,
            "true": names[int(y[i])],
            "predicted": names[int(res.pred[i])],
            "confidence": float(res.confidence[i]),
            "success": bool(res.success[i]),
            "queries": int(res.queries[i]),
            "l2": float(res.l2[i]),
            "linf": float(res.linf[i]),
        }
        for slot, i in enumerate(idx.tolist())
    ]


def run_blackbox(
    model: nn.Module,
    dataset: Dataset,
    plan: BlackBoxPlan,
    progress: Progress | None = None,
    *,
    label: str = "",
) -> RunResult:
    """Run every attack of the plan through a fresh :class:`QueryModel` of ``model``."""
    progress = progress or (lambda f, m: None)
    if len(dataset.input_shape) != 3:
        dct = [k for k, a in plan.attacks.items() if getattr(a, "basis", None) == "dct"]
        if dct:
            raise ValidationError(
                f"SimBA's DCT basis needs images; {dataset.name} is {dataset.modality} data. "
                "Use SimBA with the pixel basis (one feature at a time) or ZOO."
            )
    device = model_device(model)
    exclude = plan.target if plan.targeted else None
    idx, pool_acc = correct_inputs(model, dataset, plan.n, plan.seed, exclude_class=exclude)
    x = dataset.x_test[idx].to(device)
    y = dataset.y_test[idx].to(device)
    bounds = (dataset.bounds[0].to(device), dataset.bounds[1].to(device))
    names = [str(c) for c in dataset.class_names]
    defense = plan.output_defense()

    metrics: dict[str, Any] = {"n": int(y.shape[0]), "clean_accuracy": pool_acc}
    per_image: list[pd.DataFrame] = []
    gallery: list[dict] = []
    artifacts: dict[str, Any] = {}
    results: dict[str, Any] = {}
    k = len(plan.attacks)
    for j, (key, atk) in enumerate(plan.attacks.items()):
        name = attack_label(key, atk)

        def sub(f: float, m: str, j: int = j, name: str = name) -> None:
            progress(min(0.99, (j + max(0.0, min(1.0, f))) / k), f"{name}: {m}")

        api = QueryModel(model, defense=defense)
        res = atk.run(
            api, x, y, targeted=plan.targeted, target=plan.target, bounds=bounds, progress=sub
        )
        if not torch.equal(api.queries.cpu(), res.queries.cpu()):
            raise RuntimeError(f"{name} reported other query counts than the interface counted.")
        results[name] = res
        succ = res.success.cpu()
        q = res.queries.cpu()
        won = q[succ].float()
        metrics[f"success_rate.{name}"] = float(succ.float().mean())
        metrics[f"median_queries.{name}"] = float(won.median()) if won.numel() else float("nan")
        metrics[f"mean_queries.{name}"] = float(won.mean()) if won.numel() else float("nan")
        metrics[f"total_queries.{name}"] = int(q.sum())
        metrics[f"mean_l2.{name}"] = float(res.l2[res.success].mean()) if won.numel() else 0.0
        metrics[f"mean_linf.{name}"] = float(res.linf[res.success].mean()) if won.numel() else 0.0
        metrics[f"seconds.{name}"] = float(res.seconds)
        per_image.append(
            pd.DataFrame(
                {
                    "attack": name,
                    "test_index": idx.numpy(),
                    "true": y.cpu().numpy(),
                    "predicted": res.pred.cpu().numpy(),
                    "success": succ.numpy(),
                    "queries": q.numpy(),
                    "l2": res.l2.cpu().numpy(),
                    "linf": res.linf.cpu().numpy(),
                }
            )
        )
        gidx = _gallery_pick(res, GALLERY_SIZE)
        gallery += _gallery_rows(name, res, gidx, names, y)
        artifacts[f"clean.{key}"] = x[gidx].cpu().numpy().astype(np.float32)
        artifacts[f"adv.{key}"] = res.x_adv[gidx].cpu().numpy().astype(np.float32)

    top = max(int(r.queries.max()) for r in results.values()) if results else 1
    budgets = sorted(
        {int(round(v)) for v in np.logspace(0, np.log10(max(top, 1)), 60)} | {max(top, 1)}
    )
    curves = pd.concat(
        [success_vs_queries(r.success, r.queries, budgets, label=n) for n, r in results.items()],
        ignore_index=True,
    )
    metrics["attacks"] = list(results)
    metrics["keys"] = list(plan.attacks)
    metrics["defense"] = defense.short() if defense is not None else "none"
    progress(1.0, "done")
    return RunResult(
        metrics=metrics,
        tables={
            "curves": curves,
            "per_image": pd.concat(per_image, ignore_index=True),
            "gallery": pd.DataFrame(gallery),
        },
        artifacts=artifacts,
        label=label,
    )


def blackbox_job(
    dataset: Dataset, plan: BlackBoxPlan, *, model: nn.Module, label: str = ""
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` that runs :func:`run_blackbox`."""

    def job(ctx: JobContext) -> RunResult:
        return run_blackbox(model, dataset, plan, ctx.progress, label=label)

    return job


# -- transfer matrix -----------------------------------------------------------------------


@dataclass
class TransferPlan:
    """The transfer matrix: models of ``archs`` trained with one recipe; a white-box
    ``attack`` crafted on each (row) and sent to each (column).

    Attributes:
        archs: architectures (2 or more) trained on the same data with ``recipe``.
        attack: the white-box attack crafted on the surrogate (PGD or FGSM, with its ε).
        n: test images (random, seeded).
        seed: chooses the images.
    """

    archs: list[str]
    attack: EvasionAttack
    n: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.archs) < 2 or len(set(self.archs)) != len(self.archs):
            raise ValidationError("Choose at least two different architectures.")
        if not isinstance(self.attack, EvasionAttack) or not self.attack.budgeted:
            raise ValidationError("The transfer attack must be an ε-bounded white-box attack.")
        if isinstance(self.n, bool) or not 1 <= int(self.n) <= MAX_IMAGES:
            raise ValidationError(f"Use between 1 and {MAX_IMAGES} test images; got {self.n}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "archs": list(self.archs),
            "attack": {"name": type(self.attack).__name__, **self.attack.to_dict()},
            "n": int(self.n),
            "seed": int(self.seed),
        }


def transfer_spec(dataset: Dataset, recipe: TrainRecipe, plan: TransferPlan) -> dict[str, Any]:
    return {
        "kind": "transfer_matrix",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "recipe": recipe.to_dict(),
        **plan.to_dict(),
    }


def run_transfer(
    dataset: Dataset,
    recipe: TrainRecipe,
    plan: TransferPlan,
    progress: Progress | None = None,
    *,
    label: str = "",
) -> RunResult:
    """Train (or load from the zoo) every architecture and fill the transfer matrix."""
    from ..attacks.evasion.transfer import transfer_matrix

    allowed = compatible_architectures(dataset.modality, dataset.input_shape)
    bad = [a for a in plan.archs if a not in allowed]
    if bad:
        raise ValidationError(f"{bad} do not fit {dataset.name}; choose among {allowed}.")
    idx = select_inputs(dataset, plan.n, plan.seed)
    x, y = dataset.x_test[idx], dataset.y_test[idx]
    matrix = transfer_matrix(
        dataset, plan.archs, recipe, plan.attack, x, y, bounds=dataset.bounds, progress=progress
    )
    off = matrix[matrix["surrogate"] != matrix["target"]]
    diag = matrix[matrix["surrogate"] == matrix["target"]]
    metrics = {
        "eps": float(plan.attack.eps),
        "n": int(y.shape[0]),
        "whitebox_mean": float(diag["success_rate"].mean()),
        "transfer_mean": float(off["success_rate"].mean()),
        "transfer_best": float(off["success_rate"].max()),
    }
    return RunResult(metrics=metrics, tables={"matrix": matrix}, label=label)


def transfer_job(
    dataset: Dataset, recipe: TrainRecipe, plan: TransferPlan, *, label: str = ""
) -> Callable[[JobContext], RunResult]:
    def job(ctx: JobContext) -> RunResult:
        return run_transfer(dataset, recipe, plan, ctx.progress, label=label)

    return job


def default_archs(dataset: Dataset, current: str | None = None) -> list[str]:
    """Up to four cheap architectures for the matrix (the current one included)."""
    allowed = compatible_architectures(dataset.modality, dataset.input_shape)
    preferred = [a for a in ("small_cnn", "lenet5", "mlp", "logreg") if a in allowed]
    out = ([current] if current in allowed else []) + [a for a in preferred if a != current]
    return out[:4] if len(out) >= 2 else allowed[:4]
