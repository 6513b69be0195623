"""Watching adversarial training once per epoch.

:class:`RobustMonitor` measures, after every epoch, clean and PGD-10 accuracy at the full
training ε on a fixed set of held-out test images (the training curves), and PGD-10
accuracy on a fixed subset of the training images: the **catastrophic-overfitting
watchdog** of Wong et al. (2020), who saw FGSM training lose all PGD robustness within a
few batches. When that training-subset accuracy falls more than ``drop`` below its best,
training stops and the best epoch's weights are kept; the decision is written into the
epoch table (``event``) so the page and the report can say so.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from ...attacks.evasion.base import Goal
from ...attacks.evasion.pgd import PGD
from ...data.dataset import Dataset
from ...models.training import TrainRecipe

EVAL_N = 128
"""Held-out test images the per-epoch robust accuracy is measured on."""
WATCH_N = 128
"""Training images the watchdog attacks each epoch."""
MONITOR_STEPS = 10
"""PGD steps of the per-epoch measurements."""
COLLAPSE_DROP = 0.2
"""A fall of PGD accuracy on the watched training images this far below its best is a
collapse (catastrophic overfitting takes it to about 0 within an epoch)."""


def _fixed_subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(n, n_total)]


class RobustMonitor:
    """Per-epoch robust accuracy and the watchdog (see the module docstring)."""

    def __init__(
        self,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
        x_watch: torch.Tensor,
        y_watch: torch.Tensor,
        *,
        eps: float,
        bounds: tuple[torch.Tensor, torch.Tensor],
        schedule,
        watchdog: bool = True,
        drop: float = COLLAPSE_DROP,
        steps: int = MONITOR_STEPS,
    ) -> None:
        self.x_eval, self.y_eval = x_eval, y_eval
        self.x_watch, self.y_watch = x_watch, y_watch
        self.eps = eps
        self.goal = Goal(bounds=bounds)
        self.schedule = schedule
        self.watchdog = watchdog
        self.drop = drop
        self.attack = PGD(steps=steps, random_start=True, seed=0)
        self.best_acc = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.event = ""

    @classmethod
    def for_recipe(
        cls, recipe: TrainRecipe, dataset: Dataset, device: torch.device
    ) -> RobustMonitor:
        from .adversarial import epsilon_schedule

        ev = _fixed_subset(dataset.n_test, EVAL_N, 0)
        n_train = dataset.n_train
        if recipe.train_size:
            n_train = min(n_train, recipe.train_size)
        wi = _fixed_subset(n_train, WATCH_N, 1)
        return cls(
            dataset.x_test[ev].to(device),
            dataset.y_test[ev].to(device),
            dataset.x_train[wi].to(device),
            dataset.y_train[wi].to(device),
            eps=recipe.adv_eps,
            bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)),
            schedule=lambda epoch: epsilon_schedule(recipe, epoch),
            watchdog=recipe.watchdog,
        )

    def _pgd_accuracy(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        res = self.attack.run(model, x, y, eps=self.eps, norm="linf", goal=self.goal)
        return float((res.pred == y).float().mean())

    def after_epoch(self, model: nn.Module, epoch: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        robust = self._pgd_accuracy(model, self.x_eval, self.y_eval)
        watch = self._pgd_accuracy(model, self.x_watch, self.y_watch)
        row: dict[str, Any] = {
            "eps": float(self.schedule(epoch)),
            "robust_acc": robust,
            "robust_n": int(self.y_eval.shape[0]),
            "watch_acc": watch,
        }
        if watch > self.best_acc:
            self.best_acc, self.best_epoch = watch, epoch
            if self.watchdog:
                self.best_state = copy.deepcopy(model.state_dict())
        elif self.watchdog and watch < self.best_acc - self.drop:
            self.event = (
                f"Catastrophic overfitting: in epoch {epoch} PGD accuracy on the watched "
                f"training images fell to {watch:.1%} (best {self.best_acc:.1%}, epoch "
                f"{self.best_epoch}). Training stopped; the weights of epoch "
                f"{self.best_epoch} were kept."
            )
            row["stop"] = True
        row["eval_seconds"] = time.perf_counter() - t0
        return row

    def finish(self, model: nn.Module, rows: list[dict[str, Any]]) -> None:
        kept = rows[-1]["epoch"] if rows else 0
        if self.event and self.best_state is not None:
            model.load_state_dict(self.best_state)
            kept = self.best_epoch
        for row in rows:
            row["kept"] = row["epoch"] == kept
            row["event"] = self.event if row is rows[-1] else ""
