"""Training loop and prediction helpers.

One recipe (:class:`TrainRecipe`) describes how a model is trained; the same declaration
drives the sidebar form, the model zoo's cache key and the CLI.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..device import seed_everything
from ..params import Configurable, param
from ..progress import ProgressFn

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


def fit(
    model: nn.Module,
    dataset: Dataset,
    recipe: TrainRecipe,
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
    batch_hook: BatchHook | None = None,
) -> pd.DataFrame:
    """Train ``model`` in place and return one row per epoch.

    Args:
        model: the network (on any device; moved to ``device``).
        dataset: training and test tensors; test metrics are logged after each epoch.
            ``dataset.y_train`` is normally int64 class indices; it may also be an (N, C)
            float tensor of class probabilities (soft targets, as in knowledge distillation
            or model stealing from a probability API): the loss is then the cross-entropy
            to those probabilities and the training accuracy counts agreement with their
            argmax.
        recipe: optimiser settings, epochs, seed and augmentation.
        device: where to compute; whole batches are moved there once per step.
        progress: called as ``progress(fraction, message)``; it may raise to cancel
            (the job runner's ``JobCancelled``), which stops training at once.
        batch_hook: optional ``(model, x, y) -> (x, y)`` applied to each batch before the
            step (adversarial training, for example). It runs with the model in train mode.

    Returns:
        DataFrame with columns epoch, train_loss, train_acc, test_loss, test_acc, seconds.
    """
    seed_everything(recipe.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(recipe.seed)
    model.to(device)
    x_train, y_train = dataset.x_train, dataset.y_train
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
    rows = []
    step = 0
    report_every = max(1, steps_per_epoch // 10)
    for epoch in range(1, recipe.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for i in range(0, n, recipe.batch_size):
            idx = order[i : i + recipe.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if recipe.noise_std > 0:
                noise = torch.randn(xb.shape, generator=gen, device=device) * recipe.noise_std
                xb = torch.maximum(torch.minimum(xb + noise, hi), lo)
            if batch_hook is not None:
                xb, yb = batch_hook(model, xb, yb)
                model.train()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * xb.shape[0]
            hard = yb.argmax(1) if yb.ndim > 1 else yb
            correct += (logits.detach().argmax(1) == hard).sum()
            step += 1
            if progress is not None and (step % report_every == 0 or step == total):
                progress(step / total, f"epoch {epoch}/{recipe.epochs}")
        train_loss = (loss_sum / n).item()
        if not math.isfinite(train_loss):
            from ..errors import ModelError

            raise ModelError(
                f"Training diverged in epoch {epoch} (loss is {train_loss}). "
                f"Lower the learning rate (now {recipe.lr})."
            )
        test_loss, test_acc = evaluate(model, dataset.x_test, dataset.y_test, device=device)
        rows.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": (correct / n).item(),
                "test_loss": test_loss,
                "test_acc": test_acc,
                "seconds": time.perf_counter() - t0,
            }
        )
    model.eval()
    return pd.DataFrame(rows)
