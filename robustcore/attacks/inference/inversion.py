"""Model inversion: MIFace (Fredrikson et al. 2015).

"Model Inversion Attacks that Exploit Confidence Information and Basic Countermeasures"
(Fredrikson, Jha and Ristenpart, CCS 2015) reconstructs a *class representative* — what
the model thinks a class looks like — from nothing but the model and the class label: start
from a blank input and run gradient descent on the input to lower the cost
``1 − p_c(x)`` (the model's confidence in class ``c``), keeping the input inside the data
bounds. On softmax regression (one template per class) the result resembles the class's
training images; on deeper networks the same procedure tends to find a high-confidence
adversarial pattern instead, which a total-variation prior (smooth images) and an L2 prior
(few bright pixels) make look more natural.

Here all classes are inverted at once, as one batch, on the model's device. Each
reconstruction is compared with the real class mean of the training data: the Pearson
correlation between the two, and whether the reconstruction is closest to its own class's
mean among all class means (the *identification rate*).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ...data.dataset import Dataset
from ...device import model_device, seed_everything
from ...errors import ValidationError
from ...params import Configurable, param
from ...progress import ProgressFn

LOSSES: tuple[str, ...] = ("one_minus_p", "cross_entropy")
INITS: tuple[str, ...] = ("zeros", "mid", "uniform")


@dataclass(frozen=True)
class MIFace(Configurable):
    """MIFace: gradient descent on the input towards a class, with optional priors.

    The cost of a reconstruction ``x`` for class ``c`` is
    ``loss(x, c) + tv_weight · TV(x) + l2_weight · Σx²``, where ``loss`` is
    ``1 − p_c(x)`` (the paper's cost) or ``−log p_c(x)`` (cross-entropy, whose gradient does
    not vanish when ``p_c`` is tiny). Each step is ``x ← clip(x − lr · ∇cost)``. As in the
    paper, a class stops early once the model's confidence in it reaches ``threshold``
    (cost ≤ γ) or its cost has not improved for ``patience`` steps (β).
    """

    name = "miface"
    title = "MIFace (model inversion)"
    paper = (
        "Fredrikson, Jha & Ristenpart 2015, Model Inversion Attacks that Exploit Confidence "
        "Information and Basic Countermeasures"
    )

    steps: int = param(
        500, low=1, high=20_000, step=50, help="Most gradient steps per class (α in the paper)."
    )
    lr: float = param(
        0.1,
        low=1e-4,
        high=100.0,
        log=True,
        label="Step size",
        help="Gradient step size on the input (λ in the paper).",
    )
    loss: str = param(
        "one_minus_p",
        choices=LOSSES,
        help="1 − p_c (the paper's cost) or cross-entropy −log p_c.",
    )
    tv_weight: float = param(
        0.0,
        low=0.0,
        high=1.0,
        step=0.001,
        label="Total-variation prior",
        help="Weight of the total-variation prior: larger values give smoother images "
        "(images only; 0 = off).",
    )
    l2_weight: float = param(
        0.0,
        low=0.0,
        high=1.0,
        step=0.001,
        label="L2 prior",
        help="Weight of the sum of squared input values: favours dark, sparse images.",
    )
    init: str = param(
        "zeros",
        choices=INITS,
        label="Start from",
        help="Initial input: all zeros (the paper), the middle of the data bounds, or "
        "uniform noise inside the bounds.",
    )
    threshold: float = param(
        0.99,
        low=0.0,
        high=1.0,
        step=0.01,
        label="Confidence threshold",
        help="A class stops once the model's confidence in it reaches this (γ); "
        "1 = never stop on confidence.",
    )
    patience: int = param(
        100,
        low=1,
        high=10_000,
        step=10,
        help="Steps without improvement before a class stops (β in the paper).",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of the uniform start.")


@dataclass
class InversionResult:
    """What :func:`invert` returns (all tensors on the CPU).

    Attributes:
        images: one reconstruction per inverted class, shaped like the inputs.
        classes: the inverted class indices.
        confidence: the model's probability of the target class for each reconstruction.
        predicted: the model's predicted class for each reconstruction.
        class_means: the mean training input of every class of the dataset.
        correlation: Pearson correlation of each reconstruction with its class's mean.
        nearest_mean: for each reconstruction, the class whose mean it correlates with
            most (equal to ``classes`` when the reconstruction is recognisable).
        steps: gradient steps run for each class.
        history: one row every few steps: ``step``, ``mean_confidence``,
            ``min_confidence``, ``mean_cost``, ``active`` (classes still descending).
        seconds: wall time.
    """

    images: torch.Tensor
    classes: torch.Tensor
    confidence: torch.Tensor
    predicted: torch.Tensor
    class_means: torch.Tensor
    correlation: torch.Tensor
    nearest_mean: torch.Tensor
    steps: torch.Tensor
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0

    @property
    def identification_rate(self) -> float:
        """Fraction of reconstructions closest (by correlation) to their own class mean."""
        return float((self.nearest_mean == self.classes).float().mean().item())

    def table(self, class_names: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per inverted class: confidence, prediction, correlation, steps."""
        names = [str(c) for c in class_names] if class_names is not None else None

        def name(i: int) -> str:
            return names[i] if names is not None else str(i)

        return pd.DataFrame(
            {
                "class": [name(int(c)) for c in self.classes],
                "confidence": self.confidence.numpy(),
                "predicted": [name(int(c)) for c in self.predicted],
                "correlation_with_class_mean": self.correlation.numpy(),
                "closest_class_mean": [name(int(c)) for c in self.nearest_mean],
                "steps": self.steps.numpy(),
            }
        )


def class_means(dataset: Dataset) -> torch.Tensor:
    """The mean training input of each class (zeros for a class with no training data)."""
    x, y = dataset.x_train, dataset.y_train.long()
    sums = torch.zeros((dataset.num_classes, x[0].numel()), dtype=torch.float32)
    sums.index_add_(0, y, x.reshape(x.shape[0], -1).float())
    counts = torch.bincount(y, minlength=dataset.num_classes).clamp_min(1).unsqueeze(1)
    return (sums / counts).reshape(dataset.num_classes, *dataset.input_shape)


def correlation_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every row of ``a`` with every row of ``b`` (flattened).

    A constant row has no defined correlation; it gets 0.
    """
    a = a.reshape(a.shape[0], -1).double()
    b = b.reshape(b.shape[0], -1).double()
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    a = torch.where(na > 0, a / na.clamp_min(1e-12), torch.zeros_like(a))
    b = torch.where(nb > 0, b / nb.clamp_min(1e-12), torch.zeros_like(b))
    return (a @ b.T).float()


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image of an (N, C, H, W) batch: the sum of absolute
    differences between neighbouring pixels. Zeros for inputs that are not images."""
    if x.ndim != 4:
        return torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(dim=1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(dim=1)
    return dh + dw


def invert(
    model: nn.Module,
    dataset: Dataset,
    config: MIFace | None = None,
    *,
    classes: Sequence[int] | None = None,
    progress: ProgressFn | None = None,
) -> InversionResult:
    """Reconstruct one representative input per class with MIFace.

    Args:
        model: a classifier returning logits (logreg, MLP, CNN or an uploaded model); it
            needs gradients with respect to its input, not to its weights.
        dataset: gives the input shape, the bounds (every reconstruction stays inside them)
            and the training data whose class means the reconstructions are compared with.
        config: the MIFace settings (default ``MIFace()``).
        classes: which classes to invert (default: all), as one batch.
        progress: ``progress(fraction, message)``; it may raise to cancel.

    Returns:
        An :class:`InversionResult`.

    Raises:
        ValidationError: a class index is out of range, or the model's output does not have
            one logit per class.
    """
    config = config if config is not None else MIFace()
    if not isinstance(config, MIFace):
        raise ValidationError(f"config must be an MIFace instance, got {type(config).__name__}.")
    if classes is None:
        cls_list = list(range(dataset.num_classes))
    else:
        cls_list = [int(c) for c in classes]
        bad = [c for c in cls_list if not 0 <= c < dataset.num_classes]
        if not cls_list or bad:
            raise ValidationError(
                f"Classes to invert must be indices 0..{dataset.num_classes - 1}; got "
                f"{list(classes)!r}."
            )
    t0 = time.perf_counter()
    report = progress or (lambda f, m: None)
    device = model_device(model)
    seed_everything(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    lo, hi = (b.to(device).unsqueeze(0) for b in dataset.bounds)
    n = len(cls_list)
    target = torch.tensor(cls_list, device=device)
    shape = (n, *dataset.input_shape)
    if config.init == "zeros":
        x0 = torch.zeros(shape)
    elif config.init == "mid":
        x0 = ((dataset.bounds[0] + dataset.bounds[1]) / 2).expand(shape).clone()
    else:
        u = torch.rand(shape, generator=gen)
        x0 = dataset.bounds[0] + (dataset.bounds[1] - dataset.bounds[0]) * u
    x = torch.maximum(torch.minimum(x0.to(device), hi), lo)

    was_training = model.training
    model.eval()

    def costs(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(xb)
        if logits.ndim != 2 or logits.shape[1] != dataset.num_classes:
            raise ValidationError(
                f"The model must return (batch, {dataset.num_classes}) logits; it returned "
                f"{tuple(logits.shape)}."
            )
        logp = F.log_softmax(logits.float(), dim=1)
        logp_c = logp.gather(1, target.unsqueeze(1)).squeeze(1)
        p_c = logp_c.exp()
        loss = 1.0 - p_c if config.loss == "one_minus_p" else -logp_c
        cost = loss
        if config.tv_weight > 0:
            cost = cost + config.tv_weight * total_variation(xb)
        if config.l2_weight > 0:
            cost = cost + config.l2_weight * xb.pow(2).flatten(1).sum(dim=1)
        return cost, p_c

    active = torch.ones(n, dtype=torch.bool, device=device)
    steps_run = torch.zeros(n, dtype=torch.long, device=device)
    best_cost = torch.full((n,), float("inf"), device=device)
    since_best = torch.zeros(n, dtype=torch.long, device=device)
    rows = []
    log_every = max(1, config.steps // 50)
    report_every = max(1, config.steps // 100)
    try:
        for step in range(1, config.steps + 1):
            xg = x.detach().requires_grad_(True)
            with torch.enable_grad():
                cost, p_c = costs(xg)
                (grad,) = torch.autograd.grad(cost.sum(), xg)
            with torch.no_grad():
                mask = active.view(-1, *([1] * (x.ndim - 1)))
                x = torch.where(mask, x - config.lr * grad, x)
                x = torch.maximum(torch.minimum(x, hi), lo)
                steps_run += active.long()
                c = cost.detach()
                improved = c < best_cost - 1e-6
                best_cost = torch.where(improved, c, best_cost)
                since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
                stalled = since_best >= config.patience
                confident = p_c.detach() >= config.threshold
                active = active & ~(stalled | confident)
                if step % log_every == 0 or step == 1 or step == config.steps:
                    rows.append(
                        {
                            "step": step,
                            "mean_confidence": float(p_c.mean()),
                            "min_confidence": float(p_c.min()),
                            "mean_cost": float(c.mean()),
                            "active": int(active.sum()),
                        }
                    )
            if step % report_every == 0:
                report(step / config.steps, f"step {step}/{config.steps}")
            if not bool(active.any()):
                break
        with torch.no_grad():
            logits = model(x)
            probs = torch.softmax(logits.float(), dim=1)
    finally:
        model.train(was_training)
    images = x.detach().cpu()
    conf = probs.gather(1, target.unsqueeze(1)).squeeze(1).cpu()
    means = class_means(dataset)
    corr = correlation_matrix(images, means)
    idx = torch.arange(n)
    cls_t = torch.tensor(cls_list)
    report(1.0, "done")
    return InversionResult(
        images=images,
        classes=cls_t,
        confidence=conf,
        predicted=probs.argmax(dim=1).cpu(),
        class_means=means,
        correlation=corr[idx, cls_t],
        nearest_mean=corr.argmax(dim=1),
        steps=steps_run.cpu(),
        history=pd.DataFrame(rows),
        seconds=time.perf_counter() - t0,
    )
