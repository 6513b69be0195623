"""What every evasion attack shares: the result type, the run contract and tensor helpers.

An evasion attack perturbs test inputs so that a trained model misclassifies them
(Szegedy et al. 2014; Goodfellow et al. 2015). Each attack here is a frozen dataclass whose
fields are its parameters (see :mod:`robustcore.params`) and whose :meth:`EvasionAttack.run`
attacks a whole batch at once on the model's device:

    result = PGD(steps=40).run(model, x, y, eps=0.3)            # L∞ by default
    result = PGD(steps=40).run(model, x, y, eps=2.0, norm="l2")
    result = PGD().run(model, x, y, eps=0.3, goal=Goal(target=3, bounds=ds.bounds))
    result.success.float().mean()   # fraction of inputs now misclassified

The budget (``eps`` and its ``norm``) is an argument of the run, not a field of the
attack: a sweep runs one declared attack at many budgets, and the caller (an experiment,
a sanity check) is the only place that says which norm a budget is measured in. What the
attacker wants and where inputs may go travel together as a :class:`Goal`.

Inputs stay inside the data bounds (``[0, 1]`` for images; per-feature minimum and maximum
for tabular data) and, for budgeted attacks, inside the ε-ball around the original.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ...device import model_device
from ...errors import ValidationError
from ...params import Configurable
from ...progress import ProgressFn

Bounds = tuple[torch.Tensor | float, torch.Tensor | float]
NORMS = ("linf", "l2")


@dataclass(frozen=True, eq=False)
class Goal:
    """What the attacker wants and where the inputs may go.

    Attributes:
        target: ``None`` for an untargeted attack (any wrong class will do), else the class
            every input should be pushed to (an int, or one label per input).
        bounds: ``(lower, upper)`` valid input range (tensors shaped like one sample, or
            numbers); ``None`` means ``(0, 1)`` as for images.
    """

    target: int | torch.Tensor | None = None
    bounds: Bounds | None = None

    @property
    def targeted(self) -> bool:
        return self.target is not None


UNTARGETED = Goal()


def check_budget(eps: float | None, norm: str, *, needed: bool = True) -> tuple[float, str]:
    """Validate a run's budget: a finite ε ≥ 0 in a known norm (any size is allowed: an ε
    beyond the data's diameter is simply unbounded)."""
    if norm not in NORMS:
        raise ValidationError(f"Norm must be 'linf' or 'l2', got {norm!r}.")
    if eps is None:
        if needed:
            raise ValidationError("This attack needs a budget: pass eps=… to run().")
        return 0.0, norm
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise ValidationError(f"ε must be a number, got {eps!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationError(f"ε must be a finite number ≥ 0, got {eps!r}.")
    return value, norm


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


def _probe(model: nn.Module, x: torch.Tensor) -> int:
    """Run one input through the model (it must accept the batch's shape) → class count."""
    try:
        with torch.no_grad():
            out = model(x[:1])
    except RuntimeError:
        raise ValidationError(
            f"The model cannot take inputs shaped {tuple(x.shape[1:])} (one input of the "
            "batch): give inputs shaped like the dataset's, with a batch axis first."
        ) from None
    if out.dim() != 2 or out.shape[0] != 1:
        raise ValidationError(
            f"The model must return one row of class scores per input, got {tuple(out.shape)}."
        )
    return int(out.shape[1])


class EvasionAttack(Configurable):
    """Base of the white-box evasion attacks (FGSM, PGD, Carlini–Wagner).

    Subclasses implement :meth:`_attack`; :meth:`run` validates the inputs, moves them to
    the model's device, times the attack and measures the outcome.
    """

    #: does the attack take an ε budget (False for minimum-norm attacks like C&W)?
    budgeted: ClassVar[bool] = True
    #: the norms the attack supports
    norms: ClassVar[tuple[str, ...]] = NORMS

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float | None = None,
        norm: str | None = None,
        goal: Goal | None = None,
        progress: ProgressFn | None = None,
    ) -> AttackResult:
        """Attack the batch ``x`` with true labels ``y``.

        Args:
            model: a classifier returning logits; its parameters are not changed.
            x: inputs shaped ``(N, ...)`` like the data; y: their true labels ``(N,)``.
            eps: the budget (required for budgeted attacks; C&W takes none).
            norm: ``linf`` (every feature moves by at most ε) or ``l2`` (the whole change
                has length at most ε); default: the attack's first supported norm.
            goal: targeted or not, and the data bounds (default: untargeted in [0, 1]).
            progress: optional ``progress(fraction, message)``; it may raise to cancel.
        """
        was_training = model.training
        model.eval()  # before the shape probe too: batch norm must not see one input in training
        t0 = time.perf_counter()
        try:
            x, y, tgt, lo, hi, eps, norm = self._prepare(model, x, y, eps, norm, goal)
            device = x.device
            if x.shape[0] == 0:
                x_adv, steps = x.clone(), 0
            else:
                x_adv, steps = self._attack(model, x, y, tgt, lo, hi, eps, norm, progress)
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

    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float | None = None,
        norm: str | None = None,
        goal: Goal | None = None,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        """The adversarial inputs only, like torchattacks' ``attack(x, y)``: the same checks
        and the same ``x_adv`` as :meth:`run`, without the extra forward pass that
        :meth:`run` makes for the predictions, confidences and success of its result.
        Arguments as for :meth:`run`."""
        was_training = model.training
        model.eval()
        try:
            x, y, tgt, lo, hi, eps, norm = self._prepare(model, x, y, eps, norm, goal)
            if x.shape[0] == 0:
                return x.clone()
            x_adv, _ = self._attack(model, x, y, tgt, lo, hi, eps, norm, progress)
        finally:
            model.train(was_training)
        return x_adv.detach()

    def _prepare(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float | None,
        norm: str | None,
        goal: Goal | None,
    ) -> tuple[Any, ...]:
        """Check a run's arguments; (x, y, target, lo, hi, eps, norm) on the model's device."""
        goal = goal or UNTARGETED
        norm = norm or self.norms[0]
        if self.budgeted:
            eps, norm = check_budget(eps, norm)
        elif eps is not None:
            raise ValidationError(
                f"{self.title} has no ε budget: it looks for each input's smallest change."
            )
        if norm not in self.norms:
            raise ValidationError(
                f"{self.title} supports the {' and '.join(self.norms)} norm, not {norm!r}."
            )
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValidationError(
                f"Give a batch of inputs (N, …) and one label per input: got inputs shaped "
                f"{tuple(x.shape)} and labels shaped {tuple(y.shape)}."
            )
        device = model_device(model)
        x = x.detach().to(device, torch.float32)
        y = y.detach().to(device, torch.long)
        lo, hi = as_bounds(goal.bounds, x)
        # The class count is needed to check a target; the shape check runs either way.
        num_classes = _probe(model, x) if x.shape[0] else None
        tgt = resolve_target(goal.targeted, goal.target, y, num_classes)
        return x, y, tgt, lo, hi, eps, norm

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
        raise NotImplementedError


def input_gradient(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the attack loss w.r.t. the input, and the per-sample loss.

    The loss is the cross-entropy to the true label (to increase) or, for a targeted
    attack, minus the cross-entropy to the target (so that ascending it approaches the
    target). One forward and one backward pass of the batch.
    """
    grad, loss, _ = gradient_loss_logits(model, x, labels, targeted)
    return grad, loss


def gradient_loss_logits(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`input_gradient`, plus the logits of that same forward pass (detached), from
    which an attack can tell which inputs already fool the model at no extra cost."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, labels, reduction="none")
        if targeted:
            loss = -loss
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return grad, loss.detach(), logits.detach()
