"""The transfer matrix of the "Black-box attacks" page: models of several architectures are
trained with one recipe (the current model's) through the zoo; a white-box attack is crafted
on each (the surrogate, a row) and sent to each (the target, a column) through a label-only
query interface (Papernot, McDaniel & Goodfellow 2016; Tramèr et al. 2017). The diagonal is
the white-box attack on the model itself.

``python -m robustcore transfer --archs small_cnn,lenet5,mlp --attack pgd --eps 0.2``
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import FGSM, PGD, EvasionAttack, Goal
from ..attacks.evasion.transfer import as_recipe, check_arch, transfer_success
from ..data import Dataset
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..models.zoo import train_entry
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, training_work

MAX_IMAGES = 2000
CHEAP = ("small_cnn", "lenet5", "mlp", "logreg")


def default_archs(dataset: Dataset, current: str | None = None) -> tuple[str, ...]:
    """Up to four cheap architectures for the matrix (the current one first, if it fits)."""
    allowed = compatible_architectures(dataset.modality, dataset.input_shape)
    preferred = [a for a in CHEAP if a in allowed]
    out = ([current] if current in allowed else []) + [a for a in preferred if a != current]
    return tuple(out[:4] if len(out) >= 2 else allowed[:4])


def crafting_work(attack: EvasionAttack, model: str, n: int) -> Work:
    """What ``attack.run`` on ``n`` inputs of ``model`` computes: PGD's steps × restarts
    input gradients (an upper bound with early stop) and a scoring pass per extra restart,
    FGSM's one gradient; then the forward pass that judges the result."""
    if isinstance(attack, PGD):
        scoring = n * attack.restarts if attack.restarts > 1 else 0
        return Work.of(model, gradient=n * attack.steps * attack.restarts, forward=n + scoring)
    return Work.of(model, gradient=n, forward=n)


def transfer_matrix(
    dataset: Dataset,
    archs: Sequence[str],
    recipe: TrainRecipe | Mapping[str, Any] | None,
    attack: EvasionAttack,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | None = None,
    norm: str | None = None,
    goal: Goal | None = None,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Transfer success of every surrogate architecture against every target architecture.

    Every architecture is trained once with ``recipe`` on the dataset's training data (from
    the model zoo when it was trained before) and plays both roles: the attack is crafted
    once on each surrogate and its adversarial inputs are sent to each target. The diagonal
    (surrogate = target) is the white-box attack on the model itself.

    Args:
        dataset: the task; its bounds are used when ``goal`` has none.
        archs: architectures (at least one; duplicates dropped, order kept).
        recipe: the training recipe shared by all (``TrainRecipe`` or dict; ``None``:
            default).
        attack: the white-box attack (e.g. ``PGD(steps=10)``).
        x, y: the inputs to attack and their labels.
        eps, norm, goal: the attack's budget and goal, as in ``attack.run``.

    Returns:
        One row per (surrogate, target) with columns ``surrogate``, ``target``,
        ``success_rate`` (target fooled among inputs it classified correctly),
        ``surrogate_success_rate``, ``n`` (inputs attacked), ``n_clean_correct`` and
        ``seconds`` (crafting on the surrogate plus querying the target).
    """
    if not isinstance(dataset, Dataset):
        raise ValidationError(f"Expected a Dataset, got {type(dataset).__name__}.")
    if isinstance(archs, str) or not archs:
        raise ValidationError("Give a list of at least one architecture, e.g. ['mlp', 'lenet5'].")
    names = list(dict.fromkeys(archs))
    for a in names:
        check_arch(dataset, a)
    rec = as_recipe(recipe)
    if not isinstance(attack, EvasionAttack):
        raise ValidationError(
            f"The matrix needs a white-box attack (FGSM, PGD, C&W), got {type(attack).__name__}."
        )
    goal = goal or Goal()
    bounds = goal.bounds if goal.bounds is not None else dataset.bounds
    training, attacking = split(progress, [1, 1])
    train_parts = split(training, {f"training {a}": 1 for a in names})
    models: dict[str, nn.Module] = {}
    for a, part in zip(names, train_parts, strict=True):
        models[a] = train_entry(a, dataset, rec, progress=part).model
    rows = []
    y_cpu = y.detach().cpu().long()
    for s, part in zip(names, split(attacking, {f"attacking {s}": 1 for s in names}), strict=True):
        sm = models[s]
        lo, hi = (torch.as_tensor(b).to(model_device(sm)) for b in bounds)
        craft, _ = split(part, [9, 1])
        t0 = time.perf_counter()
        on_device = Goal(target=goal.target, bounds=(lo, hi))
        res = attack.run(sm, x, y, eps=eps, norm=norm, goal=on_device, progress=craft)
        craft_seconds = time.perf_counter() - t0
        for t in names:
            t1 = time.perf_counter()
            rate, base = transfer_success(models[t], res.x_adv, x, y)
            rows.append(
                {
                    "surrogate": s,
                    "target": t,
                    "success_rate": rate,
                    "surrogate_success_rate": res.success_rate,
                    "n": int(y_cpu.numel()),
                    "n_clean_correct": base,
                    "seconds": craft_seconds + time.perf_counter() - t1,
                }
            )
    return pd.DataFrame(rows)


class TransferMatrixResult(ExperimentResult):
    """The matrix of one transfer run and its white-box / transfer means."""

    @property
    def eps(self) -> float:
        return float(self._metric("eps"))

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def attack(self) -> str:
        """The white-box attack's title (PGD or FGSM)."""
        return str(self._metric("attack"))

    @property
    def whitebox_mean(self) -> float:
        """Mean success on the diagonal (each model attacked with its own gradients)."""
        return float(self._metric("whitebox_mean"))

    @property
    def transfer_mean(self) -> float:
        """Mean success off the diagonal (crafted on another model)."""
        return float(self._metric("transfer_mean"))

    @property
    def transfer_best(self) -> float:
        """The most successful surrogate → target pair off the diagonal."""
        return float(self._metric("transfer_best"))

    def matrix(self) -> pd.DataFrame:
        """One row per (surrogate, target): success rates, images, seconds."""
        return self._table("matrix")

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"matrix": self.matrix()}


@register
@dataclass(frozen=True)
class Transfer(Experiment):
    """Every architecture of ``archs`` trained with the target's recipe; a white-box attack
    crafted on each (row) and sent to each (column)."""

    name = "transfer"
    title = "Transfer matrix"
    paper = (
        "Papernot, McDaniel & Goodfellow 2016, Transferability in Machine Learning; "
        "Tramèr et al. 2017, The Space of Transferable Adversarial Examples"
    )
    result_class = TransferMatrixResult
    headline = "transfer_best"
    needs_model = False  # it trains its own models with the target's recipe

    archs: tuple[str, ...] = param(
        CHEAP,
        choices=tuple(ARCHITECTURES),
        label="Architectures (each is trained with the current model's recipe)",
        help="Rows craft the attack (the surrogate), columns receive it (the target). "
        "Trained models are cached in the zoo.",
    )
    attack: str = param(
        "pgd",
        choices=("pgd", "fgsm"),
        label="Attack",
        help="The white-box attack crafted on each surrogate.",
    )
    eps: float = param(
        0.2,
        low=0.0,
        high=10.0,
        step=0.01,
        label="ε (L∞)",
        help="How far each feature may move. Images live in [0, 1]; tabular features are "
        "standardised.",
    )
    n: int = param(200, low=1, high=MAX_IMAGES, step=10, label="Test images")
    seed: int = param(0, low=0, high=2**31 - 1, label="Input seed", help="Which test images.")
    pgd: PGD = nested(PGD, label="PGD settings")

    def check(self) -> None:
        if len(self.archs) < 2:
            raise ValidationError("Choose at least two different architectures.")

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        return {
            "archs": default_archs(dataset),
            "eps": 0.2 if dataset.modality == "image" else 1.0,
            "n": min(200, dataset.n_test),
        }

    def check_data(self, dataset: Dataset) -> None:
        allowed = compatible_architectures(dataset.modality, dataset.input_shape)
        bad = [a for a in self.archs if a not in allowed]
        if bad:
            raise ValidationError(
                f"{', '.join(bad)} do not fit {dataset.name}; choose among {', '.join(allowed)}."
            )
        if dataset.modality == "image" and self.eps > 1.0:
            raise ValidationError(
                f"Images live in [0, 1]: an L∞ ε above 1 makes no sense; got {self.eps:g}."
            )
        if self.n > dataset.n_test:
            raise ValidationError(
                f"{dataset.name} has {dataset.n_test:,} test images; use at most that many."
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.attack != "pgd":
            out.pop("pgd")  # FGSM has no settings: PGD's do not change the result
        return out

    def white_box(self) -> EvasionAttack:
        return self.pgd if self.attack == "pgd" else FGSM()

    def work(self, dataset: Dataset) -> Work:
        """Training each architecture through the zoo with the target's recipe (nothing for
        those already there), crafting on each, and every target's two label queries per
        input (its clean answer and the adversarial one) for every surrogate."""
        _, recipe = self.target.training if self.target is not None else (None, TrainRecipe())
        archs = list(dict.fromkeys(self.archs))
        n = min(self.n, dataset.n_test)
        work = Work()
        for a in archs:
            work = work + training_work(a, dataset, recipe)
            work = work + crafting_work(self.white_box(), a, n)
            work = work + Work.of(a, forward=2 * n * len(archs))
        return work

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        _, recipe = self.target.training if self.target is not None else (None, TrainRecipe())
        idx = select_inputs(dataset, self.n, self.seed)
        x, y = dataset.x_test[idx], dataset.y_test[idx]
        attack = self.white_box()
        matrix = transfer_matrix(
            dataset,
            self.archs,
            recipe,
            attack,
            x,
            y,
            eps=self.eps,
            norm="linf",
            goal=Goal(bounds=dataset.bounds),
            progress=progress,
        )
        off = matrix[matrix["surrogate"] != matrix["target"]]
        diag = matrix[matrix["surrogate"] == matrix["target"]]
        metrics = {
            "eps": float(self.eps),
            "n": int(y.shape[0]),
            "attack": attack.title,
            "whitebox_mean": float(diag["success_rate"].mean()),
            "transfer_mean": float(off["success_rate"].mean()),
            "transfer_best": float(off["success_rate"].max()),
        }
        return RunResult(metrics=metrics, tables={"matrix": matrix})
