"""What every evasion attack shares: the result type, the run contract and tensor helpers.

An evasion attack perturbs test inputs so that a trained model misclassifies them
(Szegedy et al. 2014; Goodfellow et al. 2015). Each attack here is a frozen dataclass whose
fields are its parameters (see :mod:`robustcore.params`) and whose :meth:`EvasionAttack.run`
attacks a whole batch at once on the model's device:

    result = PGD(eps=0.3, steps=40).run(model, x, y)
    result.success.float().mean()   # fraction of inputs now misclassified

Inputs stay inside the data bounds (``[0, 1]`` for images; per-feature minimum and maximum
for tabular data) and, for budgeted attacks, inside the ε-ball around the original.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...errors import ValidationError
from ...params import Configurable

ProgressFn = Callable[[float, str], None]
Bounds = tuple[torch.Tensor | float, torch.Tensor | float]


@dataclass
class AttackResult:
    """The outcome of an attack on a batch.

    Attributes:
        x_adv: the adversarial inputs, same shape as the originals.
        success: per input, ``True`` when the attack reached its goal: a prediction other
            than the true label (untargeted) or the target class (targeted).
        pred: the model's predicted class on each adversarial input.
        confidence: the model's softmax probability of that predicted class.
        l2, linf: per-input L2 and L∞ norms of the perturbation ``x_adv - x``.
        queries: model evaluations per input (black-box attacks); ``None`` for white-box.
        seconds: wall time of the attack.
        steps: gradient steps (forward+backward passes of the batch) the attack took.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    pred: torch.Tensor
    confidence: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor
    queries: torch.Tensor | None = None
    seconds: float = 0.0
    steps: int = 0

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean().item()) if self.success.numel() else 0.0


def as_bounds(bounds: Bounds | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds as tensors broadcastable to ``x`` (default: 0 and 1)."""
    lo, hi = (0.0, 1.0) if bounds is None else bounds
    lo_t = torch.as_tensor(lo, dtype=x.dtype, device=x.device)
    hi_t = torch.as_tensor(hi, dtype=x.dtype, device=x.device)
    if bool((lo_t > hi_t).any()):
        raise ValidationError("Data bounds are inverted: every lower bound must be ≤ the upper.")
    return lo_t.expand_as(x[0]).unsqueeze(0), hi_t.expand_as(x[0]).unsqueeze(0)


def flat_norms(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample L2 and L∞ norms of a batch of perturbations."""
    flat = delta.flatten(1)
    return flat.norm(p=2, dim=1), flat.abs().amax(dim=1)


def l2_normalize(g: torch.Tensor, tiny: float = 1e-10) -> torch.Tensor:
    """Each sample of ``g`` scaled to unit L2 norm (zero stays zero)."""
    norms = g.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (g.dim() - 1)))
    return g / (norms + tiny)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project each perturbation onto the ε-ball of the given norm."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    norms = delta.flatten(1).norm(p=2, dim=1)
    factor = torch.clamp(eps / (norms + 1e-12), max=1.0).view(-1, *([1] * (delta.dim() - 1)))
    return delta * factor


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def resolve_target(
    targeted: bool, target: int | torch.Tensor | None, y: torch.Tensor, num_classes: int | None
) -> torch.Tensor | None:
    """The per-sample target labels of a targeted attack (``None`` when untargeted)."""
    if not targeted:
        return None
    if target is None:
        raise ValidationError("A targeted attack needs a target class (an int or one per input).")
    t = torch.as_tensor(target, device=y.device, dtype=torch.long)
    if t.dim() == 0:
        t = t.expand_as(y).clone()
    if t.shape != y.shape:
        raise ValidationError(
            f"Targets must be one class or one per input: got {tuple(t.shape)} for "
            f"{y.shape[0]} inputs."
        )
    if bool((t < 0).any()) or (num_classes is not None and bool((t >= num_classes).any())):
        top = "C-1" if num_classes is None else str(num_classes - 1)
        raise ValidationError(f"Target classes must lie in 0..{top}.")
    return t


class EvasionAttack(Configurable):
    """Base of the white-box evasion attacks (FGSM, PGD, Carlini–Wagner).

    Subclasses implement :meth:`_attack`; :meth:`run` validates the inputs, moves them to
    the model's device, times the attack and measures the outcome.
    """

    norm_kind: ClassVar[str] = "linf"
    #: does the attack take an ε budget (False for minimum-norm attacks like C&W)?
    budgeted: ClassVar[bool] = True

    def with_eps(self, eps: float) -> EvasionAttack:
        """The same attack with another budget (used by ε sweeps)."""
        if not self.budgeted:
            raise ValidationError(f"{self.title} has no ε budget; it finds minimal perturbations.")
        return self.replace(eps=eps)

    @property
    def norm_name(self) -> str:
        return getattr(self, "norm", self.norm_kind)

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        targeted: bool = False,
        target: int | torch.Tensor | None = None,
        bounds: Bounds | None = None,
        progress: ProgressFn | None = None,
    ) -> AttackResult:
        """Attack the batch ``x`` with true labels ``y``.

        Args:
            model: a classifier returning logits; its parameters are not changed.
            x: inputs shaped ``(N, ...)`` like the data; y: their true labels ``(N,)``.
            targeted: push each input toward ``target`` instead of away from ``y``.
            target: the target class (one int, or one label per input) when targeted.
            bounds: ``(lower, upper)`` valid input range (tensors shaped like one sample, or
                numbers); default ``(0, 1)`` as for images.
            progress: optional ``progress(fraction, message)``; it may raise to cancel.
        """
        if x.dim() < 2 or x.shape[0] != y.shape[0]:
            raise ValidationError(
                f"Inputs and labels must have the same length: got {tuple(x.shape)} inputs "
                f"and {tuple(y.shape)} labels."
            )
        device = model_device(model)
        x = x.detach().to(device, torch.float32)
        y = y.detach().to(device, torch.long)
        lo, hi = as_bounds(bounds, x)
        was_training = model.training
        model.eval()
        t0 = time.perf_counter()
        try:
            num_classes = None
            if targeted and x.shape[0]:
                with torch.no_grad():  # one input, to validate the target classes
                    num_classes = int(model(x[:1]).shape[1])
            tgt = resolve_target(targeted, target, y, num_classes)
            if x.shape[0] == 0:
                x_adv, steps = x.clone(), 0
            else:
                x_adv, steps = self._attack(model, x, y, tgt, lo, hi, progress)
            with torch.inference_mode():
                logits = model(x_adv) if x.shape[0] else torch.zeros(0, 1, device=device)
            probs = torch.softmax(logits, dim=1)
            conf, pred = probs.max(dim=1)
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - t0
        success = pred == tgt if tgt is not None else pred != y
        l2, linf = flat_norms(x_adv - x)
        return AttackResult(
            x_adv=x_adv.detach(),
            success=success,
            pred=pred,
            confidence=conf,
            l2=l2,
            linf=linf,
            seconds=seconds,
            steps=steps,
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
        raise NotImplementedError


def input_gradient(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the attack loss w.r.t. the input, and the per-sample loss.

    The loss is the cross-entropy to the true label (to increase) or, for a targeted
    attack, minus the cross-entropy to the target (so that ascending it approaches the
    target). One forward and one backward pass of the batch.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, labels, reduction="none")
        if targeted:
            loss = -loss
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return grad, loss.detach()
