"""Small measurements of trained defenses, shared by the unit tests and
``bench/threshold_spread.py`` (so that a test's bound and its measured spread come from the
same code)."""

from __future__ import annotations

import torch
from torch import nn

from ...attacks.evasion import PGD
from ...data.dataset import Dataset
from ...evaluation.metrics import fooled_rate
from ...models import TrainRecipe, build_model, fit
from .distillation import LogitsDividedBy


def train_small(
    dataset: Dataset, recipe: TrainRecipe, *, arch: str = "mlp", seed: int | None = None
) -> tuple[nn.Module, object]:
    """Train ``arch`` by ``recipe`` on the CPU (no zoo); (model, history)."""
    seed = recipe.seed if seed is None else seed
    model = build_model(arch, dataset.input_shape, dataset.num_classes, seed=seed)
    history = fit(model, dataset, recipe, device=torch.device("cpu"))
    return model, history


def pgd_accuracy(
    model: nn.Module, dataset: Dataset, *, eps: float, n: int = 300, steps: int = 10
) -> float:
    """PGD accuracy on the first ``n`` test images (random start, seed 0)."""
    x, y = dataset.x_test[:n], dataset.y_test[:n]
    res = PGD(steps=steps).run(model, x, y, eps=eps, norm="linf")
    return float((res.pred == y).float().mean())


def pgd_success(
    model: nn.Module, dataset: Dataset, *, eps: float, n: int = 300, temperature: float = 1.0
) -> float:
    """Share of the first ``n`` test images the model had right that PGD-20 turns wrong;
    with ``temperature`` > 1 the attack runs on the logits divided by it (adaptive)."""
    x, y = dataset.x_test[:n], dataset.y_test[:n]
    view = model if temperature == 1.0 else LogitsDividedBy(model, temperature)
    res = PGD(steps=20).run(view, x, y, eps=eps, norm="linf")
    return fooled_rate(model, x, y, res.x_adv)
