"""Training loop and prediction helpers.

One recipe (:class:`TrainRecipe`) describes how a model is trained; the same declaration
drives the sidebar form, the model zoo's cache key and the CLI.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..device import fast_layout, in_layout, seed_everything
from ..errors import ValidationError
from ..params import Configurable, param
from ..progress import ProgressFn

METHODS = ("standard", "noise", "fgsm_rs", "pgd_at", "trades", "distillation")
METHOD_TITLES = {
    "standard": "Standard training",
    "noise": "Gaussian input noise",
    "fgsm_rs": "FGSM with random start (FGSM-RS)",
    "pgd_at": "PGD adversarial training (PGD-AT)",
    "trades": "TRADES",
    "distillation": "Defensive distillation",
}
ADVERSARIAL = ("fgsm_rs", "pgd_at", "trades")
_ATTACK = ("adv_eps", "adv_step_size", "adv_random_start", "eps_warmup", "watchdog")
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    "standard": (),
    "noise": ("noise_std",),
    "fgsm_rs": (*_ATTACK, "adv_share"),
    "pgd_at": (*_ATTACK, "adv_steps", "adv_share"),
    "trades": (*_ATTACK, "adv_steps", "trades_beta"),
    "distillation": ("temperature",),
}
"""Which recipe fields each training method reads."""
OPTIONAL_FIELDS = (
    "adv_eps",
    "adv_steps",
    "adv_step_size",
    "adv_random_start",
    "adv_share",
    "trades_beta",
    "eps_warmup",
    "watchdog",
    "temperature",
)

BatchHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TrainRecipe(Configurable):
    """How to train a model: optimiser, learning rate, batch size, epochs, regularisation.

    Gaussian input-noise augmentation adds N(0, noise_std²) to each training input (then
    clips to the data bounds); it buys robustness to random noise, not to adversarial
    perturbations (see the workshop's "general vs adversarial robustness").
    """

    name = "train"
    title = "Training recipe"

    epochs: int = param(5, low=1, high=200, step=1, help="Passes over the training set.")
    lr: float = param(
        1e-3,
        low=1e-6,
        high=1.0,
        log=True,
        label="Learning rate",
        help="Step size of the optimiser. Too high diverges, too low learns slowly.",
    )
    batch_size: int = param(
        64,
        low=1,
        high=4096,
        step=1,
        help="Examples per gradient step. Smaller batches give noisier, more frequent steps.",
    )
    optimizer: str = param("adam", choices=("adam", "sgd"), help="Adam, or SGD with momentum 0.9.")
    weight_decay: float = param(
        0.0,
        low=0.0,
        high=1.0,
        step=1e-4,
        label="Weight decay",
        help="L2 regularisation strength; larger values shrink weights and curb overfitting.",
    )
    noise_std: float = param(
        0.0,
        low=0.0,
        high=1.0,
        step=0.01,
        label="Input-noise σ",
        help="Standard deviation of Gaussian noise added to training inputs (0 = off).",
    )
    train_size: int = param(
        0,
        low=0,
        high=10_000_000,
        step=100,
        label="Training examples",
        help="Use only the first N training examples (0 = all). Fewer examples overfit more.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Random seed for init and order.")
    method: str = param(
        "standard",
        choices=METHODS,
        label="Training method",
        help="standard; noise (Gaussian input noise of σ); fgsm_rs (Wong et al. 2020); "
        "pgd_at (Madry et al. 2018); trades (Zhang et al. 2019); distillation "
        "(Papernot et al. 2016).",
    )
    adv_eps: float = param(
        0.3,
        low=0.0,
        high=10.0,
        step=0.01,
        label="Training ε (L∞)",
        help="The L∞ budget of the adversarial examples trained on (images in [0, 1]).",
    )
    adv_steps: int = param(
        10,
        low=1,
        high=100,
        step=1,
        label="Attack steps",
        help="PGD steps of the inner maximisation (PGD-AT, TRADES).",
    )
    adv_step_size: float = param(
        0.0,
        low=0.0,
        high=4.0,
        step=0.05,
        label="Step size (× ε; 0 = auto)",
        help="Each inner step's length as a multiple of ε. 0 picks 1.25 for FGSM-RS "
        "(Wong et al.) and 2.5 / steps for PGD-AT and TRADES (Madry et al.).",
    )
    adv_random_start: bool = param(
        True,
        label="Random start",
        help="Start the inner attack from a random point of the ε-ball. FGSM without it "
        "overfits catastrophically.",
    )
    adv_share: float = param(
        1.0,
        low=0.05,
        high=1.0,
        step=0.05,
        label="Adversarial share",
        help="Share of each batch replaced by adversarial examples (Madry et al.: all; "
        "Goodfellow et al.: half). FGSM-RS and PGD-AT only.",
    )
    trades_beta: float = param(
        6.0,
        low=0.0,
        high=100.0,
        step=0.5,
        label="TRADES β",
        help="Weight of the robustness term KL(f(x) ‖ f(x′)); larger trades accuracy for "
        "robustness (Zhang et al. use 6 on MNIST).",
    )
    eps_warmup: int = param(
        0,
        low=0,
        high=200,
        step=1,
        label="ε warm-up epochs",
        help="Grow the training ε linearly from 0 to its value over these first epochs.",
    )
    watchdog: bool = param(
        True,
        label="Overfitting watchdog",
        help="Each epoch, measure PGD accuracy on a fixed training subset; when it "
        "collapses (catastrophic overfitting), stop and keep the best epoch.",
    )
    temperature: float = param(
        20.0,
        low=1.0,
        high=100.0,
        step=1.0,
        label="Temperature T",
        help="Distillation: teacher and student are trained on softmax(logits / T); the "
        "student is deployed at T = 1.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method == "standard" and self.noise_std > 0:
            object.__setattr__(self, "method", "noise")  # the same training, one name

    def check(self) -> None:
        if self.method == "noise" and self.noise_std <= 0:
            raise ValidationError(
                "Gaussian-noise training needs an input-noise σ above 0 (set Input-noise σ)."
            )
        if self.method in ADVERSARIAL and self.adv_eps <= 0:
            raise ValidationError(
                f"{METHOD_TITLES[self.method]} needs a training ε above 0; got {self.adv_eps}."
            )

    def replace(self, **changes: Any) -> TrainRecipe:
        """A copy with some fields changed. Changing only ``noise_std`` of a standard or
        noise recipe moves it between the two (a σ of 0 is standard training)."""
        if (
            "noise_std" in changes
            and "method" not in changes
            and self.method in ("standard", "noise")
        ):
            changes["method"] = "noise" if changes["noise_std"] > 0 else "standard"
        return super().replace(**changes)

    @property
    def defended(self) -> bool:
        """Is any defense trained in (noise, adversarial training, distillation)?"""
        return self.method != "standard"

    def undefended(self) -> TrainRecipe:
        """The same recipe with standard training: the model a defense is compared with."""
        keep = {k: v for k, v in self.to_dict().items() if k not in (*OPTIONAL_FIELDS, "method")}
        return TrainRecipe.from_dict({**keep, "noise_std": 0.0})

    def describe_method(self) -> str:
        """The method and its settings in a few words (legends, labels, reports)."""
        m = self.method
        if m == "standard":
            return "standard training"
        if m == "noise":
            return f"Gaussian noise σ={self.noise_std:g}"
        if m == "distillation":
            return f"distillation T={self.temperature:g}"
        short = {"fgsm_rs": "FGSM-RS", "pgd_at": f"PGD-AT ({self.adv_steps} steps)"}
        name = short.get(m, f"TRADES β={self.trades_beta:g} ({self.adv_steps} steps)")
        return f"{name} ε={self.adv_eps:g}"

    @property
    def training_inputs(self) -> str:
        """What the training accuracy is measured on, in a few words: the clean training
        set, or the perturbed inputs the method trains on (then it sits below the clean
        accuracy, and the gap to test accuracy is not overfitting)."""
        if self.method == "noise":
            return "its noisy training inputs"
        if self.method == "pgd_at" and self.adv_share < 1:
            return f"its training batches ({self.adv_share:.0%} adversarial)"
        if self.adversarial:
            return "its adversarial training examples"
        return "the training set"

    @property
    def adversarial(self) -> bool:
        """Is this adversarial training (FGSM-RS, PGD-AT or TRADES)?"""
        return self.method in ADVERSARIAL

    def to_dict(self) -> dict[str, Any]:
        """The values that change training: a method's settings appear only with it, so
        a standard model's key does not depend on, say, the TRADES β it never used."""
        out = super().to_dict()
        if self.method in ("standard", "noise"):
            out.pop("method")  # implied by noise_std (and keeps keys of older runs)
        for name in OPTIONAL_FIELDS:
            if name not in METHOD_FIELDS[self.method]:
                out.pop(name)
        return out

    @classmethod
    def method_fields(cls, method: str) -> tuple[str, ...]:
        """The recipe fields a training method reads (forms show only these with it)."""
        return METHOD_FIELDS[method]


def predict_logits(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, device: torch.device | None = None
) -> torch.Tensor:
    """Logits for ``x`` in batches, without building a graph. Returned on the CPU."""
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    outs = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            outs.append(model(x[i : i + batch_size].to(device)).float().cpu())
    model.train(was_training)
    if not outs:
        return torch.zeros(0)
    return torch.cat(outs)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, device: torch.device | None = None
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of ``model`` on ``(x, y)``."""
    logits = predict_logits(model, x, device=device)
    loss = F.cross_entropy(logits, y.cpu()).item()
    acc = (logits.argmax(1) == y.cpu()).float().mean().item()
    return loss, acc


LossFn = Callable[
    [nn.Module, torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
]
"""``(model, x, y, epoch) -> (loss, logits, labels)``: one batch's training loss, and the
logits (one row per input of the batch) and labels its training accuracy is counted on.
The model is in train mode when it is called and is put back in train mode after."""


class EpochMonitor(Protocol):
    """Watches training once per epoch (robust accuracy, the overfitting watchdog)."""

    def after_epoch(self, model: nn.Module, epoch: int) -> dict[str, Any]:
        """Extra columns for this epoch's row; ``{"stop": True, ...}`` ends training."""
        ...

    def finish(self, model: nn.Module, rows: list[dict[str, Any]]) -> None:
        """After the last epoch: may restore an earlier epoch's weights and mark its row."""
        ...


def fit(
    model: nn.Module,
    dataset: Dataset,
    recipe: TrainRecipe,
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
    batch_hook: BatchHook | None = None,
) -> pd.DataFrame:
    """Train ``model`` in place by ``recipe`` (its method included) and return one row per
    epoch.

    Standard and Gaussian-noise training run here; adversarial training and defensive
    distillation run in :mod:`robustcore.defenses.training` (same loop, their own loss).

    Args:
        model: the network (on any device; moved to ``device``).
        dataset: training and test tensors; test metrics are logged after each epoch.
            ``dataset.y_train`` is normally int64 class indices; it may also be an (N, C)
            float tensor of class probabilities (soft targets, as in knowledge distillation
            or model stealing from a probability API): the loss is then the cross-entropy
            to those probabilities and the training accuracy counts agreement with their
            argmax.
        recipe: optimiser settings, epochs, seed, augmentation and training method.
        device: where to compute; whole batches are moved there once per step.
        progress: called as ``progress(fraction, message)``; it may raise to cancel
            (the job runner's ``JobCancelled``), which stops training at once.
        batch_hook: optional ``(model, x, y) -> (x, y)`` applied to each batch before the
            step. It runs with the model in train mode.

    Returns:
        DataFrame with columns epoch, train_loss, train_acc, test_loss, test_acc, seconds
        (training time of the epoch, without evaluation), and for defended models the
        monitor's columns (see :func:`robustcore.defenses.training.fit_defended`).
    """
    if recipe.method not in ("standard", "noise"):
        from ..defenses.training import fit_defended

        if batch_hook is not None:
            raise ValidationError("A batch hook cannot be combined with a training method.")
        return fit_defended(model, dataset, recipe, device=device, progress=progress)
    return run_epochs(
        model, dataset, recipe, device=device, progress=progress, batch_hook=batch_hook
    )


def run_epochs(
    model: nn.Module,
    dataset: Dataset,
    recipe: TrainRecipe,
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
    batch_hook: BatchHook | None = None,
    loss_fn: LossFn | None = None,
    monitor: EpochMonitor | None = None,
    y_train: torch.Tensor | None = None,
    phase: str = "",
) -> pd.DataFrame:
    """The training loop under :func:`fit`: ``loss_fn`` replaces the cross-entropy (a
    defense's loss), ``monitor`` is asked after each epoch, ``y_train`` replaces the
    dataset's training labels (soft labels), ``phase`` labels the rows (distillation's
    teacher and student)."""
    seed_everything(recipe.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(recipe.seed)
    model.to(device)
    x_train = dataset.x_train
    y_train = dataset.y_train if y_train is None else y_train
    if recipe.train_size and recipe.train_size < x_train.shape[0]:
        x_train, y_train = x_train[: recipe.train_size], y_train[: recipe.train_size]
    x_train = x_train.to(device)
    y_train = y_train.to(device)
    lo, hi = (b.to(device) for b in dataset.bounds)
    if recipe.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = x_train.shape[0]
    steps_per_epoch = max(1, math.ceil(n / recipe.batch_size))
    total = recipe.epochs * steps_per_epoch
    rows: list[dict[str, Any]] = []
    step = 0
    report_every = max(1, steps_per_epoch // 10)
    label = f"{phase}: " if phase else ""
    # Channels-last on the CPU (device.fast_layout); the weights leave in the default
    # layout, so the monitor's restored epoch and the saved model are unaffected.
    with fast_layout(model, device) as fmt:
        for epoch in range(1, recipe.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=gen, device=device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            for i in range(0, n, recipe.batch_size):
                idx = order[i : i + recipe.batch_size]
                xb, yb = in_layout(x_train[idx], fmt), y_train[idx]
                if recipe.noise_std > 0:
                    noise = torch.randn(xb.shape, generator=gen, device=device) * recipe.noise_std
                    xb = torch.maximum(torch.minimum(xb + noise, hi), lo)
                if batch_hook is not None:
                    xb, yb = batch_hook(model, xb, yb)
                    model.train()
                if loss_fn is None:
                    logits = model(xb)
                    loss = F.cross_entropy(logits, yb)
                    acc_y = yb
                else:
                    loss, logits, acc_y = loss_fn(model, xb, yb, epoch)
                    model.train()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * xb.shape[0]
                hard = acc_y.argmax(1) if acc_y.ndim > 1 else acc_y
                correct += (logits.detach().argmax(1) == hard).sum()
                step += 1
                if progress is not None and (step % report_every == 0 or step == total):
                    progress(step / total, f"{label}epoch {epoch}/{recipe.epochs}")
            seconds = time.perf_counter() - t0
            train_loss = (loss_sum / n).item()
            if not math.isfinite(train_loss):
                from ..errors import ModelError

                raise ModelError(
                    f"Training diverged in epoch {epoch} (loss is {train_loss}). "
                    f"Lower the learning rate (now {recipe.lr})."
                )
            test_loss, test_acc = evaluate(model, dataset.x_test, dataset.y_test, device=device)
            row: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": (correct / n).item(),
                "test_loss": test_loss,
                "test_acc": test_acc,
                "seconds": seconds,
            }
            if phase:
                row["phase"] = phase
            stop = False
            if monitor is not None:
                extra = monitor.after_epoch(model, epoch)
                stop = bool(extra.pop("stop", False))
                row.update(extra)
            rows.append(row)
            if stop:
                break
        if monitor is not None:
            monitor.finish(model, rows)
    model.eval()
    return pd.DataFrame(rows)
