"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015, "Explaining and Harnessing
Adversarial Examples") and its L2 variant, the Fast Gradient Method."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...progress import ProgressFn
from .base import EvasionAttack, input_gradient, l2_normalize


@dataclass(frozen=True)
class FGSM(EvasionAttack):
    """One step of size ε along the sign (L∞) or direction (L2) of the loss gradient.

    It has no settings of its own: ε and the norm are the run's (``run(..., eps=, norm=)``).

    The paper's point: a model that behaves linearly in high dimension is fooled by a
    single, cheap step. On MNIST with ε = 0.25 it drove a shallow softmax classifier to
    99.9 % error and a maxout network to 89.4 %. The result is clipped to the data bounds.
    """

    name = "fgsm"
    title = "FGSM"
    paper = "Goodfellow, Shlens & Szegedy 2015, Explaining and Harnessing Adversarial Examples"

    def _attack(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        lo: torch.Tensor,
        hi: torch.Tensor,
        eps: float,
        norm: str,
        progress: ProgressFn | None,
    ) -> tuple[torch.Tensor, int]:
        if progress:
            progress(0.0, "FGSM: one gradient step")
        labels = target if target is not None else y
        grad, _ = input_gradient(model, x, labels, targeted=target is not None)
        step = grad.sign() if norm == "linf" else l2_normalize(grad)
        x_adv = torch.maximum(torch.minimum(x + eps * step, hi), lo)
        if progress:
            progress(1.0, "FGSM done")
        return x_adv.detach(), 1
