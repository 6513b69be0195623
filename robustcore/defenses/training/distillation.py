"""Defensive distillation (Papernot, McDaniel, Wu, Jha & Swami 2016, "Distillation as a
Defense to Adversarial Perturbations against Deep Neural Networks").

A teacher is trained on softmax(logits / T); its softened probabilities on the training
set become the labels of a student of the same architecture, also trained at temperature
T. The student is deployed at T = 1: its logits are about T times larger than a normal
model's, so the softmax saturates, the cross-entropy's gradient underflows to zero and
gradient attacks on it stall. Carlini & Wagner (2016, "Defensive Distillation is Not
Robust to Adversarial Examples") showed that this is gradient masking, not robustness: an
attack on the logits, or on the logits divided by T, succeeds as before.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ...attacks.evasion.base import input_gradient
from ...data.dataset import Dataset
from ...errors import ModelError
from ...models.training import TrainRecipe, predict_logits, run_epochs
from ...progress import ProgressFn, split


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to a probability target, averaged over the batch."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def output_layer(model: nn.Module, num_classes: int) -> nn.Linear:
    """The linear layer that produces the logits (the last one with ``num_classes``
    outputs)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers or layers[-1].out_features != num_classes:
        raise ModelError("Distillation needs a model whose logits come from a linear layer.")
    return layers[-1]


def scale_logits(model: nn.Module, factor: float, probe: torch.Tensor, num_classes: int) -> None:
    """Multiply the model's logits by ``factor`` in place (its output layer's weights and
    bias), and check on ``probe`` that it did exactly that."""
    layer = output_layer(model, num_classes)
    was = model.training
    model.eval()
    with torch.no_grad():
        before = model(probe)
        layer.weight.mul_(factor)
        if layer.bias is not None:
            layer.bias.mul_(factor)
        after = model(probe)
    model.train(was)
    if not torch.allclose(after, before * factor, rtol=1e-4, atol=1e-4 * factor):
        raise ModelError("The model's logits are not linear in its last layer: cannot distil.")


def fit_distilled(
    model: nn.Module,
    dataset: Dataset,
    recipe: TrainRecipe,
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
    teacher: nn.Module | None = None,
    teacher_history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Train a teacher at temperature T, then ``model`` (the student, in place) on the
    teacher's soft labels at T, and deploy the student at T = 1. Both get
    ``recipe.epochs`` epochs; the rows carry ``phase`` (teacher, student).

    ``teacher`` (with its ``teacher_history``): an already trained teacher to take the soft
    labels from instead of training one. In the parametrisation below the teacher does not
    depend on T and is the recipe's undefended model, which the model zoo passes here.

    Both networks are trained in the parametrisation Z = T · g(x): training at
    temperature T, softmax(Z / T) = softmax(g(x)), is then an ordinary training of g, the
    same function class and loss as Papernot et al.'s but without the T-fold slower
    start that Adam has on logits that must grow T-fold. At the end the student's output
    layer is multiplied by T, so the deployed model outputs Z = T · g(x) and is read at
    T = 1, as in the paper.
    """
    t = recipe.temperature
    if teacher is None:
        teach_p, student_p = split(progress, [1.0, 1.0])
        teacher = copy.deepcopy(model)
        hist_t = run_epochs(
            teacher, dataset, recipe, device=device, progress=teach_p, phase="teacher"
        )
    else:
        student_p = progress
        hist_t = (teacher_history if teacher_history is not None else pd.DataFrame()).copy()
        hist_t["phase"] = "teacher"
    x_train = dataset.x_train
    if recipe.train_size and recipe.train_size < x_train.shape[0]:
        x_train = x_train[: recipe.train_size]
    # softmax(Z_teacher / T) = softmax(g_teacher): the teacher's soft labels at T.
    soft = torch.softmax(predict_logits(teacher, x_train, device=device), dim=1)
    if soft.shape[0] < dataset.n_train:  # rows past train_size are never used
        pad = torch.zeros(dataset.n_train - soft.shape[0], soft.shape[1])
        soft = torch.cat([soft, pad])

    def student_loss(m, x, y_soft, epoch):
        logits = m(x)
        return soft_cross_entropy(logits, y_soft), logits, y_soft

    hist_s = run_epochs(
        model, dataset, recipe, device=device, progress=student_p, loss_fn=student_loss,
        y_train=soft, phase="student",
    )  # fmt: skip
    scale_logits(model, t, dataset.x_test[:8].to(device), dataset.num_classes)
    hist_t["kept"] = False
    hist_s["kept"] = True
    return pd.concat([hist_t, hist_s], ignore_index=True)


class LogitsDividedBy(nn.Module):
    """``model``'s logits divided by ``temperature``: the adaptive attacker's view of a
    distilled model (Carlini & Wagner 2016). Same predictions, but the softmax is no
    longer saturated, so the cross-entropy's gradient is usable again."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"The temperature must be positive, got {temperature}.")
        self.model = model
        self.temperature = float(temperature)
        # In the wrapped model's mode: attacks restore the mode they found, and a wrapper
        # left in train mode would switch the shared (zoo) model to train mode with it.
        self.training = model.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def input_gradient_norms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512
) -> torch.Tensor:
    """L2 norm of the cross-entropy's gradient with respect to each input (on the CPU).
    On a distilled model at high T most are exactly 0: the softmax saturates in float32."""
    was = model.training
    model.eval()
    out = []
    try:
        for i in range(0, x.shape[0], batch_size):
            g, _ = input_gradient(model, x[i : i + batch_size], y[i : i + batch_size], False)
            out.append(g.flatten(1).norm(dim=1).cpu())
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0)
