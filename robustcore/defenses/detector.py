"""Adversarial-example detectors, the model they guard, and the attack that adapts to both.

A detector is a second network that tells clean inputs from adversarial ones of a chosen
attack; in front of a classifier it makes a **guarded model** that predicts a class, or
abstains when the detector flags the input. Two kinds (:class:`DetectorConfig` ``kind``):

* ``"features"``: the *detection subnetwork* of Metzen et al. (2017, "On Detecting
  Adversarial Perturbations", ICLR): a small MLP on the classifier's own penultimate
  activations (:func:`robustcore.models.features.split_model`). The classifier stays
  frozen; only the MLP is trained. The paper reports detectability above 90 % for most
  attacks it was trained on (CIFAR-10 and a 10-class ImageNet subset), and that it often
  generalises to other attacks and budgets.
* ``"input"``: an input-space binary classifier, as ART's ``BinaryInputDetector``
  (Adversarial Robustness Toolbox, ``art.defences.detector.evasion``): a small CNN on the
  images (an MLP on tabular rows), trained from scratch on clean vs adversarial inputs.

Both are trained the same way (:meth:`DetectorConfig.fit`): adversarial examples of the
chosen attack are crafted on training images, and the detector learns label 1 for them and
0 for their clean originals, with binary cross-entropy, in mini-batches of tensors that
stay on the model's device, from a seeded initialisation and a seeded order (the same seed
gives the same detector on the CPU). Its output is one *logit* per input (higher = more
likely adversarial). :func:`threshold_for_fpr` sets the decision threshold on clean
held-out data so that only a chosen share of them is flagged.

**The adaptive attack** (Carlini & Wagner 2017, "Adversarial Examples Are Not Easily
Detected: Bypassing Ten Detection Methods", AISec): the attacker knows the classifier, the
detector and its threshold, and attacks the joint system. :class:`GuardedModel` builds the
combined logits of their construction (one more class, "abstain", whose logit exceeds every
class logit exactly when the detector flags the input); :class:`AdaptiveAttack` runs PGD
under the same ε on a loss that both fools the classifier and keeps the detector's logit
under its threshold. C&W found that detectors of both kinds (Metzen et al.'s subnetwork,
and the adversarial-example classifiers of Gong et al. and Grosse et al.) fall to such an
attack, at a distortion only somewhat larger than the undefended model needs.

Example::

    from robustcore.attacks.evasion import PGD
    from robustcore.defenses.detector import (
        AdaptiveAttack, DetectorConfig, GuardedModel, threshold_for_fpr,
    )

    cfg = DetectorConfig(kind="features", epochs=20)
    x_adv = PGD(steps=20).perturb(model, x_tr, y_tr, eps=0.2)
    det = cfg.fit(model, x_tr, x_adv, bounds=ds.bounds)
    t = threshold_for_fpr(det.scores(x_cal), fpr=0.05)
    guarded = GuardedModel(model, det, t)
    guarded.predict(x)                   # class, or ABSTAIN (-1) where flagged
    res = AdaptiveAttack(steps=50).run(guarded, x, y, eps=0.2, bounds=ds.bounds)
    res.success.float().mean()           # misclassified and not flagged
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.evasion.base import Bounds, as_bounds, check_budget
from ..device import model_device
from ..errors import ModelError, ValidationError
from ..models.features import feature_dim, split_model
from ..params import Configurable, param
from ..progress import ProgressFn

__all__ = [
    "ABSTAIN",
    "KINDS",
    "AdaptiveAttack",
    "AdaptiveResult",
    "Detector",
    "DetectorConfig",
    "GuardedModel",
    "detection_rate",
    "judge",
    "threshold_for_fpr",
]

KINDS: dict[str, str] = {
    "features": "Detection subnetwork on the features (Metzen et al. 2017)",
    "input": "Input-space binary classifier (ART's BinaryInputDetector)",
}
"""Detector kind → what it is."""

ABSTAIN = -1
"""What :meth:`GuardedModel.predict` returns for an input the detector flags."""


# -- the detector networks --------------------------------------------------------------------


class Detector(nn.Module):
    """A trained detector: ``forward(x)`` gives one logit per input (N,), higher = more
    likely adversarial. Built and trained by :meth:`DetectorConfig.fit`.

    Attributes:
        kind: ``"features"`` or ``"input"`` (see :data:`KINDS`).
        encode: what the trainable part sees: the classifier's frozen penultimate layer
            with the clean features' mean and spread taken out (``features``), or the
            inputs scaled to [0, 1] by the data bounds (``input``).
        net: the trainable part (an MLP, or a small CNN for images).
        history: per epoch of training, the mean loss and accuracy on the training pairs.
    """

    def __init__(self, kind: str, encode: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.kind = kind
        self.encode = encode
        self.net = net
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encode(x)).squeeze(1)

    def scores(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """The detector's logits for ``x`` (moved to the detector's device), in batches,
        without gradients; on that device."""
        device = model_device(self)
        self.eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                outs.append(self(x[i : i + batch_size].to(device, torch.float32)))
        return torch.cat(outs) if outs else torch.zeros(0, device=device)


class _FeatureEncoder(nn.Module):
    """The classifier's body (shared, frozen) with the features standardised."""

    def __init__(self, body: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.body(x) - self.mean) / self.std


class _InputEncoder(nn.Module):
    """Inputs scaled into [0, 1] per feature by the data bounds."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("lo", lo)
        self.register_buffer("span", (hi - lo).clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.lo) / self.span


def _mlp(d_in: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(d_in, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def _cnn(input_shape: tuple[int, ...], hidden: int) -> nn.Module:
    """The convolutions of the ``small_cnn`` architecture (32 and 64 channels, 3×3, with
    2×2 pooling) with one dense layer of ``hidden`` units and a single output."""
    c = input_shape[0]
    conv = nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        n = int(conv(torch.zeros(1, *input_shape)).shape[1])
    return nn.Sequential(*conv, nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, 1))


# -- the declaration and training -------------------------------------------------------------


@dataclass(frozen=True)
class DetectorConfig(Configurable):
    """How a detector is built and trained (one declaration for the form, the key, the CLI).

    Fields:
        kind: ``"features"`` (Metzen et al.'s MLP on the classifier's penultimate
            activations; needs a built-in architecture) or ``"input"`` (a small CNN on
            images, an MLP on tabular rows, as ART's BinaryInputDetector).
        hidden: units of each hidden dense layer of the detector.
        epochs: passes over the training pairs (clean and adversarial).
        lr: Adam's learning rate.
        batch_size: training pairs per step (half clean, half adversarial on average).
        seed: seeds the detector's initial weights and the order of its training batches.
    """

    name = "detector"
    title = "Adversarial detector"
    paper = (
        "Metzen et al. 2017, On Detecting Adversarial Perturbations; "
        "ART's BinaryInputDetector (Nicolae et al. 2018, Adversarial Robustness Toolbox)"
    )

    kind: str = param(
        "features",
        choices=tuple(KINDS),
        label="Detector",
        help="features: a small MLP on the model's penultimate activations (Metzen et al. "
        "2017; the model stays frozen). input: a small CNN (an MLP for tabular data) on the "
        "inputs themselves, trained from scratch (ART's BinaryInputDetector).",
    )
    hidden: int = param(
        128, low=8, high=1024, step=8, label="Hidden width", help="Units per hidden layer."
    )
    epochs: int = param(
        20, low=1, high=200, label="Detector epochs", help="Passes over the training pairs."
    )
    lr: float = param(
        1e-3, low=1e-5, high=1.0, log=True, label="Learning rate", help="Adam's step size."
    )
    batch_size: int = param(
        128, low=8, high=4096, step=8, label="Batch size", help="Training examples per step."
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        label="Detector seed",
        help="Seeds the detector's initial weights and the order of its batches.",
    )

    def describe(self) -> str:
        what = "feature detector" if self.kind == "features" else "input detector"
        return f"{what} (hidden {self.hidden}, {self.epochs} epochs, seed {self.seed})"

    def build(self, model: nn.Module, bounds: Bounds, example: torch.Tensor) -> Detector:
        """An untrained detector for ``model`` (its weights drawn from :attr:`seed`).

        Args:
            model: the classifier to guard (for ``features``: a built-in architecture).
            bounds: the data bounds (lower, upper), tensors shaped like one input.
            example: a few clean training inputs (N, ...): the ``features`` detector
                standardises the penultimate activations by their mean and spread.
        """
        device = model_device(model)
        example = example.to(device, torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.kind == "features":
                try:
                    body, _ = split_model(model)
                    d = feature_dim(model)
                except ModelError as exc:
                    raise ValidationError(
                        f"The feature detector needs the model's penultimate layer: {exc} "
                        "Choose the input detector instead."
                    ) from None
                for p in body.parameters():
                    p.requires_grad_(False)
                with torch.inference_mode():
                    feats = body(example).float()
                mean = feats.mean(0).detach().clone()
                std = feats.std(0).clamp_min(1e-3).detach().clone()
                encode: nn.Module = _FeatureEncoder(body, mean, std)
                net = _mlp(d, self.hidden)
            else:
                lo, hi = as_bounds(bounds, example)
                encode = _InputEncoder(lo[0].clone(), hi[0].clone())
                shape = tuple(example.shape[1:])
                net = (
                    _cnn(shape, self.hidden)
                    if len(shape) == 3
                    else _mlp(math.prod(shape), self.hidden)
                )
        return Detector(self.kind, encode, net).to(device)

    def fit(
        self,
        model: nn.Module,
        x_clean: torch.Tensor,
        x_adv: torch.Tensor,
        *,
        bounds: Bounds,
        progress: ProgressFn | None = None,
    ) -> Detector:
        """Train a detector on clean inputs (label 0) and adversarial ones (label 1).

        Args:
            model: the classifier (frozen; for ``features`` its body is the encoder).
            x_clean: clean training inputs (N, ...).
            x_adv: adversarial inputs (M, ...), usually crafted from ``x_clean``.
            bounds: the data bounds.
            progress: optional ``progress(fraction, message)`` per epoch.

        Returns:
            The trained :class:`Detector` in eval mode, on the model's device, with its
            per-epoch ``history``.
        """
        if x_clean.shape[0] == 0 or x_adv.shape[0] == 0:
            raise ValidationError(
                "The detector needs clean and adversarial training examples; got "
                f"{x_clean.shape[0]} clean and {x_adv.shape[0]} adversarial."
            )
        if x_clean.shape[1:] != x_adv.shape[1:]:
            raise ValidationError(
                f"Clean inputs are shaped {tuple(x_clean.shape[1:])} but adversarial ones "
                f"{tuple(x_adv.shape[1:])}: they must be shaped alike."
            )
        device = model_device(model)
        was_training = model.training
        model.eval()
        try:
            det = self.build(model, bounds, x_clean)
            x = torch.cat([x_clean, x_adv]).to(device, torch.float32)
            labels = torch.cat([torch.zeros(x_clean.shape[0]), torch.ones(x_adv.shape[0])]).to(
                device
            )
            # The features detector's encoder is frozen: encode once, train the MLP only.
            if self.kind == "features":
                with torch.inference_mode():
                    inputs = torch.cat(
                        [det.encode(x[i : i + 1024]) for i in range(0, x.shape[0], 1024)]
                    )
                inputs = inputs.clone()
            else:
                inputs = det.encode(x).detach()
            det.history = _train(det.net, inputs, labels, self, progress)
        finally:
            model.train(was_training)
        det.eval()
        return det


def _train(
    net: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    cfg: DetectorConfig,
    progress: ProgressFn | None,
) -> list[dict[str, float]]:
    """Adam on binary cross-entropy, batches drawn in a seeded order (on the device)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    n = inputs.shape[0]
    history = []
    net.train()
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(inputs.device)
        total = torch.zeros((), device=inputs.device)
        right = torch.zeros((), device=inputs.device)
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            logits = net(inputs[idx]).squeeze(1)
            loss = F.binary_cross_entropy_with_logits(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
            right += ((logits.detach() > 0).float() == labels[idx]).sum()
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(total) / n,
                "accuracy": float(right) / n,
                "seconds": time.perf_counter() - t0,
            }
        )
        if progress:
            progress((epoch + 1) / cfg.epochs, f"detector epoch {epoch + 1}/{cfg.epochs}")
    net.eval()
    return history


# -- thresholds and the guarded model ----------------------------------------------------------


def threshold_for_fpr(clean_scores: torch.Tensor, fpr: float) -> float:
    """The threshold that flags at most a share ``fpr`` of ``clean_scores``.

    An input is flagged when its score is *above* the threshold. With ``n`` clean scores,
    ``floor(fpr · n)`` of them may lie above it: the threshold is the next-largest score.
    Set it on clean data the detector was not trained on; on new clean data the flagged
    share is then about ``fpr`` (within sampling noise).

    Raises:
        ValidationError: ``fpr`` is not in [0, 1), or there are no scores.
    """
    if not (isinstance(fpr, int | float) and 0.0 <= float(fpr) < 1.0):
        raise ValidationError(f"The target false-positive rate must be in [0, 1), got {fpr!r}.")
    s = clean_scores.detach().flatten().float()
    if s.numel() == 0:
        raise ValidationError("Setting a threshold needs at least one clean score.")
    if bool(torch.isnan(s).any()):
        raise ValidationError("The clean scores contain NaN: the detector did not train.")
    k = int(math.floor(float(fpr) * s.numel() + 1e-9))
    ordered = torch.sort(s, descending=True).values
    return float(ordered[min(k, s.numel() - 1)])


def detection_rate(scores: torch.Tensor, threshold: float) -> float:
    """The share of ``scores`` above ``threshold`` (flagged); 0 for no scores."""
    return int((scores > threshold).sum()) / scores.numel() if scores.numel() else 0.0


def _shared_head(model: nn.Module, detector: Detector) -> nn.Module | None:
    """The model's head when ``detector`` reads this model's own penultimate layer."""
    enc = detector.encode
    if not isinstance(enc, _FeatureEncoder):
        return None
    try:
        body, head = split_model(model)
    except ModelError:
        return None
    mine, theirs = list(body.parameters()), list(enc.body.parameters())
    if len(mine) != len(theirs) or not mine:
        return None
    if any(a is not b for a, b in zip(mine, theirs, strict=True)):
        return None
    return head


class GuardedModel(nn.Module):
    """A classifier that abstains when its detector flags the input.

    ``forward(x)`` returns the combined logits of Carlini & Wagner (2017, §3): the model's
    ``C`` logits and one more, "abstain", equal to ``max_j Z_j(x) + (D(x) − threshold)``,
    where ``Z`` are the model's logits and ``D`` the detector's. Its argmax is the abstain
    class exactly when the detector flags the input (``D(x) > threshold``), and otherwise
    the model's class. (C&W write ``(Z_D + 1) · max_j Z_j``, which needs a positive largest
    logit; the sum makes the same decision always.) Any attack that reads logits can so
    attack the joint system; :class:`AdaptiveAttack` is the one that wants a wrong class
    that is *not* the abstain class.

    Args:
        model: the classifier (logits (N, C)).
        detector: a trained :class:`Detector`.
        threshold: flag inputs whose detector logit is above it (:func:`threshold_for_fpr`).
    """

    def __init__(self, model: nn.Module, detector: Detector, threshold: float) -> None:
        super().__init__()
        if not math.isfinite(float(threshold)):
            raise ValidationError(f"The detector's threshold must be finite, got {threshold!r}.")
        self.model = model
        self.detector = detector
        self.threshold = float(threshold)
        self._head = _shared_head(model, detector)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's logits (N, C) and the detector's margin ``D(x) − threshold`` (N,).

        A feature detector on this very model shares its body: the penultimate
        activations are computed once for both."""
        if self._head is not None:
            enc = self.detector.encode
            feats = enc.body(x)
            score = self.detector.net((feats - enc.mean) / enc.std).squeeze(1)
            return self._head(feats), score - self.threshold
        return self.model(x), self.detector(x) - self.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, margin = self.parts(x)
        abstain = logits.max(dim=1).values + margin
        return torch.cat([logits, abstain.unsqueeze(1)], dim=1)

    def predict(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """The class of each input, or :data:`ABSTAIN` where the detector flags it."""
        device = model_device(self.model)
        self.eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                logits, margin = self.parts(x[i : i + batch_size].to(device, torch.float32))
                pred = logits.argmax(1)
                outs.append(torch.where(margin > 0, torch.full_like(pred, ABSTAIN), pred))
        return torch.cat(outs) if outs else torch.zeros(0, dtype=torch.long, device=device)


# -- the adaptive attack ----------------------------------------------------------------------


@dataclass
class AdaptiveResult:
    """What an attack on the guarded model achieved, per input.

    Attributes:
        x_adv: the adversarial inputs.
        fooled: the classifier's prediction is wrong.
        flagged: the detector flags the input (the guarded model abstains).
        success: fooled and not flagged: the guarded model gives a wrong class.
        seconds, steps: wall time and gradient steps.
    """

    x_adv: torch.Tensor
    fooled: torch.Tensor
    flagged: torch.Tensor
    success: torch.Tensor
    seconds: float = 0.0
    steps: int = 0


def judge(
    guarded: GuardedModel, x_adv: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per input: does the classifier get it wrong, and does the detector flag it?"""
    device = model_device(guarded.model)
    guarded.eval()
    fooled, flagged = [], []
    with torch.inference_mode():
        for i in range(0, x_adv.shape[0], batch_size):
            xb = x_adv[i : i + batch_size].to(device, torch.float32)
            logits, margin = guarded.parts(xb)
            fooled.append(logits.argmax(1) != y[i : i + batch_size].to(device))
            flagged.append(margin > 0)
    if not fooled:
        empty = torch.zeros(0, dtype=torch.bool, device=device)
        return empty, empty
    return torch.cat(fooled), torch.cat(flagged)


@dataclass(frozen=True)
class AdaptiveAttack(Configurable):
    """PGD on the joint system (Carlini & Wagner 2017): fool the classifier *and* stay
    under the detector's threshold, within the same L∞ ball as the naive attack.

    Each step ascends the sign of the gradient of one loss, then projects back into the
    ε-ball and the data bounds. Two losses (``loss``):

    * ``"combined"``: C&W's combined logits (:class:`GuardedModel`): the margin
      ``max(G_y, G_abstain) − max_{j ≠ y, abstain} G_j``, which is negative exactly when
      the guarded model answers a wrong class;
    * ``"weighted"``: the classifier's margin ``Z_y − max_{j≠y} Z_j`` plus ``lam`` times
      the detector's margin ``D(x) − threshold``.

    Each term is clipped below at ``−kappa``, so an objective that is met with room to
    spare stops pulling and the other one gets the whole step. An input leaves the attack
    at the first step where it succeeds (and keeps that iterate).

    Fields:
        steps: gradient steps.
        step_size: each step's length as a fraction of ε (0: 2.5 / steps, as PGD).
        loss: ``combined`` or ``weighted`` (above).
        lam: the weight of the detector's term in the ``weighted`` loss.
        kappa: how far past each boundary (in logits) the attack aims.
        random_start: start at a random point of the ε-ball.
        seed: seeds the random start.
    """

    name = "adaptive_detector"
    title = "Adaptive attack on the detector"
    paper = (
        "Carlini & Wagner 2017, Adversarial Examples Are Not Easily Detected: Bypassing "
        "Ten Detection Methods"
    )

    steps: int = param(50, low=1, high=1000, label="Adaptive steps", help="Gradient steps.")
    step_size: float = param(
        0.0,
        low=0.0,
        high=2.0,
        step=0.01,
        label="Adaptive step size (× ε; 0 = auto)",
        help="Each step's length as a fraction of ε; 0 picks 2.5/steps.",
    )
    loss: str = param(
        "weighted",
        choices=("weighted", "combined"),
        label="Adaptive loss",
        help="weighted: the classifier's margin plus λ times the detector's logit above its "
        "threshold. combined: Carlini & Wagner's combined logits (an extra 'abstain' class) "
        "and one margin on them.",
    )
    lam: float = param(
        1.0,
        low=0.0,
        high=100.0,
        step=0.1,
        label="λ (detector weight)",
        help="Weight of the detector's term in the weighted loss (0: the naive attack).",
    )
    kappa: float = param(
        1.0,
        low=0.0,
        high=50.0,
        step=0.5,
        label="κ (margin)",
        help="How far past the classifier's boundary and under the threshold, in logits, "
        "the attack aims.",
    )
    random_start: bool = param(True, label="Random start", help="Start inside the ε-ball.")
    seed: int = param(0, low=0, high=2**31 - 1, label="Adaptive seed", help="Random start.")

    def alpha(self, eps: float) -> float:
        """The absolute step size for budget ``eps``."""
        return (self.step_size if self.step_size > 0 else 2.5 / self.steps) * eps

    def objective(
        self, guarded: GuardedModel, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-input loss to *minimise*, and whether the classifier is fooled and the
        detector flags (from the same forward pass)."""
        logits, margin = guarded.parts(x)
        onehot = F.one_hot(y, logits.shape[1]).bool()
        true = logits.masked_select(onehot)
        other = logits.masked_fill(onehot, float("-inf")).amax(dim=1)
        fooled = other > true
        flagged = margin > 0
        k = self.kappa
        if self.loss == "weighted":
            loss = (true - other).clamp_min(-k) + self.lam * margin.clamp_min(-k)
        else:
            abstain = logits.max(dim=1).values + margin
            loss = (torch.maximum(true, abstain) - other).clamp_min(-k)
        return loss, fooled.detach(), flagged.detach()

    def run(
        self,
        guarded: GuardedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        bounds: Bounds | None = None,
        progress: ProgressFn | None = None,
    ) -> AdaptiveResult:
        """Attack the guarded model on the batch ``x`` (true labels ``y``) in the L∞ ball
        of radius ``eps``, inside ``bounds`` (default [0, 1]).

        Raises:
            ValidationError: a bad budget or mismatched inputs and labels.
        """
        eps, _ = check_budget(eps, "linf")
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValidationError(
                f"Give a batch of inputs (N, …) and one label per input: got inputs shaped "
                f"{tuple(x.shape)} and labels shaped {tuple(y.shape)}."
            )
        device = model_device(guarded.model)
        x = x.detach().to(device, torch.float32)
        y = y.detach().to(device, torch.long)
        lo, hi = as_bounds(bounds, x)
        was_training = guarded.training
        guarded.eval()
        t0 = time.perf_counter()
        try:
            x_adv = self._attack(guarded, x, y, lo, hi, eps, progress) if x.shape[0] else x
        finally:
            guarded.train(was_training)
        fooled, flagged = judge(guarded, x_adv, y)
        return AdaptiveResult(
            x_adv=x_adv.detach(),
            fooled=fooled,
            flagged=flagged,
            success=fooled & ~flagged,
            seconds=time.perf_counter() - t0,
            steps=self.steps if eps > 0 and x.shape[0] else 0,
        )

    def _attack(
        self,
        guarded: GuardedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
        eps: float,
        progress: ProgressFn | None,
    ) -> torch.Tensor:
        if eps == 0:
            return x.clone()
        alpha = self.alpha(eps)
        if self.random_start:
            gen = torch.Generator(device=x.device).manual_seed(self.seed)
            u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            xa = torch.maximum(torch.minimum(x + (2 * u - 1) * eps, hi), lo)
        else:
            xa = x.clone()
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        shape = (-1,) + (1,) * (x.dim() - 1)
        for k in range(self.steps):
            xg = xa.detach().requires_grad_(True)
            with torch.enable_grad():
                loss, fooled, flagged = self.objective(guarded, xg, y)
                (grad,) = torch.autograd.grad(loss.sum(), xg)
            # An input that already succeeds keeps this iterate and takes no more steps.
            done = done | (fooled & ~flagged)
            if bool(done.all()):
                break
            step = torch.where(done.view(shape), torch.zeros_like(grad), grad.sign())
            xa = xa.detach() - alpha * step
            xa = torch.maximum(torch.minimum(x + (xa - x).clamp(-eps, eps), hi), lo)
            if progress and (k % max(1, self.steps // 50) == 0 or k == self.steps - 1):
                progress((k + 1) / self.steps, f"adaptive PGD step {k + 1}/{self.steps}")
        return xa.detach()
