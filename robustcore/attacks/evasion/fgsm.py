"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015, "Explaining and Harnessing
Adversarial Examples") and its L2 variant, the Fast Gradient Method."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...params import param
from .base import EvasionAttack, ProgressFn, input_gradient, l2_normalize


@dataclass(frozen=True)
class FGSM(EvasionAttack):
    """One step of size ε along the sign (L∞) or direction (L2) of the loss gradient.

    The paper's point: a model that behaves linearly in high dimension is fooled by a
    single, cheap step. On MNIST with ε = 0.25 it drove a shallow softmax classifier to
    99.9 % error and a maxout network to 89.4 %. The result is clipped to the data bounds.
    """

    name = "fgsm"
    title = "FGSM"
    paper = "Goodfellow, Shlens & Szegedy 2015, Explaining and Harnessing Adversarial Examples"

    eps: float = param(
        0.1,
        low=0.0,
        high=10.0,
        step=0.01,
        label="ε (budget)",
        help="How far each input may move: the largest change per feature (L∞) or the "
        "Euclidean length of the whole change (L2).",
    )
    norm: str = param(
        "linf",
        choices=("linf", "l2"),
        label="Norm",
        help="linf: every pixel moves by ±ε (the sign of the gradient). l2: the change has "
        "total length ε, along the gradient.",
    )

    def _attack(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        lo: torch.Tensor,
        hi: torch.Tensor,
        progress: ProgressFn | None,
    ) -> tuple[torch.Tensor, int]:
        if progress:
            progress(0.0, "FGSM: one gradient step")
        labels = target if target is not None else y
        grad, _ = input_gradient(model, x, labels, targeted=target is not None)
        step = grad.sign() if self.norm == "linf" else l2_normalize(grad)
        x_adv = torch.maximum(torch.minimum(x + self.eps * step, hi), lo)
        if progress:
            progress(1.0, "FGSM done")
        return x_adv.detach(), 1
