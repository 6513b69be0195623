"""Training-time defenses: a defended model is a zoo model whose recipe names its method.

* :mod:`.adversarial` – FGSM with random start (Wong et al. 2020), PGD adversarial training
  (Madry et al. 2018) and TRADES (Zhang et al. 2019): the inner attacks and the losses;
* :mod:`.monitor` – per-epoch clean and PGD accuracy on held-out images, and the
  catastrophic-overfitting watchdog;
* :mod:`.distillation` – defensive distillation (Papernot et al. 2016).

Nothing here is called directly by pages: ``TrainRecipe(method="pgd_at", adv_eps=0.3)``
given to :func:`robustcore.models.train_entry` (or chosen in the sidebar) trains through
:func:`fit_defended`. Example::

    from robustcore.models import TrainRecipe, train_entry
    entry = train_entry("small_cnn", "mnist5k", TrainRecipe(method="trades", adv_eps=0.3))
    entry.history[["epoch", "test_acc", "robust_acc"]]
"""

from __future__ import annotations

import torch
from torch import nn

from ...data.dataset import Dataset
from ...models.training import TrainRecipe, run_epochs
from ...progress import ProgressFn
from .adversarial import (
    AdversarialLoss,
    epsilon_schedule,
    fgsm_rs_examples,
    pgd_examples,
    trades_loss,
)
from .distillation import LogitsDividedBy, fit_distilled, input_gradient_norms
from .monitor import RobustMonitor

__all__ = [
    "AdversarialLoss",
    "LogitsDividedBy",
    "RobustMonitor",
    "epsilon_schedule",
    "fgsm_rs_examples",
    "fit_defended",
    "fit_distilled",
    "input_gradient_norms",
    "pgd_examples",
    "trades_loss",
]


def fit_defended(
    model: nn.Module,
    dataset: Dataset,
    recipe: TrainRecipe,
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
):
    """Train ``model`` in place by a defended recipe; one row per epoch (a DataFrame).

    Adversarial methods add the columns ``eps`` (the training ε of the epoch, under the
    warm-up), ``robust_acc`` and ``robust_n`` (PGD-10 accuracy at the full training ε on
    fixed held-out test images), ``watch_acc`` (the same on a fixed training subset, for
    the watchdog), ``eval_seconds``, ``kept`` (the epoch whose weights were kept) and
    ``event`` (the watchdog's decision, if it stopped training). Distillation adds
    ``phase`` (teacher or student).
    """
    if recipe.method == "distillation":
        return fit_distilled(model, dataset, recipe, device=device, progress=progress)
    if not recipe.adversarial:
        raise ValueError(f"{recipe.method!r} is not a defended training method.")
    loss = AdversarialLoss(recipe, dataset, device)
    monitor = RobustMonitor.for_recipe(recipe, dataset, device)
    return run_epochs(
        model, dataset, recipe, device=device, progress=progress, loss_fn=loss, monitor=monitor
    )
