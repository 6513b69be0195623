"""Feature squeezing as a detector of adversarial examples (Xu, Evans & Qi 2018, "Feature
Squeezing: Detecting Adversarial Examples in Deep Neural Networks", NDSS), and the
adaptive attacker who knows it (He, Wei, Chen, Carlini & Song 2017, "Adversarial Example
Defenses: Ensembles of Weak Defenses are not Strong").

**The detector.** A *squeezer* is an input transform that removes detail an honest input
does not need (:mod:`.preprocessing`: bit-depth reduction, the median filter). An
adversarial example relies on that detail, so the model's prediction moves when it is
squeezed. The score of an input is

    score(x) = max over squeezers s of ‖softmax(f(x)) − softmax(f(s(x)))‖₁   (0 … 2),

and an input is flagged when its score is above a threshold chosen on clean inputs for a
target false-positive rate (Xu et al. choose 5 %). :class:`FeatureSqueezing` declares the
squeezers and the rate; :class:`SqueezingDetector` scores, calibrates and flags;
:func:`detection_metrics` gives ROC, AUC and the detection rate (TPR) at 1 % and 5 % FPR
with :mod:`robustcore.attacks.inference.metrics`.

**The adaptive attacker.** He et al. attack the model and the detector together, in the
framework of Carlini & Wagner: :class:`AdaptiveSqueezing` minimises

    ‖δ‖₂² + c · ( max(z_y − max_{j≠y} z_j, −κ) + λ · score(x + δ) )

over δ (``z`` the logits of ``x + δ``, ``y`` the true class), through the squeezers with
BPDA (Athalye et al. 2018: the rounding of the bit depth is the identity on the backward
pass, the median its window's mean), with C&W's change of variables (inputs stay inside
the bounds), Adam and a binary search over ``c`` per input. An input's attack succeeds
when the model misclassifies it *and* its score is at most the threshold; the smallest
such perturbation is kept. Example::

    from robustcore.defenses.squeezing import FeatureSqueezing, SqueezingDetector
    det = SqueezingDetector(model, FeatureSqueezing(bits=1, median=2), bounds=ds.bounds)
    det.calibrate(x_clean)                       # threshold for 5 % false positives
    det.flags(x_adv).float().mean()              # detection rate
    res = AdaptiveSqueezing().run(det, x, y)     # fools the model and stays under it
    res.success.float().mean(), res.detected.float().mean()
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.inference.metrics import auc, roc_curve, roc_table, tpr_at_fpr
from ..device import model_device
from ..errors import ValidationError
from ..params import Configurable, param
from ..progress import ProgressFn
from .preprocessing import BitDepth, Bounds, MedianFilter, Transform, check_backward, data_bounds

DETECTION_FPRS: tuple[float, ...] = (0.01, 0.05)
"""The false-positive rates every detection result reports the TPR at (1 % and 5 %)."""


@dataclass(frozen=True)
class FeatureSqueezing(Configurable):
    """The squeezers of the detector and its target false-positive rate. The default,
    1-bit depth and the 2×2 median, is Xu et al.'s (2018) MNIST configuration."""

    name = "feature_squeezing"
    title = "Feature squeezing"
    paper = "Xu, Evans & Qi 2018, Feature Squeezing: Detecting Adversarial Examples (NDSS)"

    bits: int = param(
        1,
        low=0,
        high=8,
        step=1,
        label="Squeezer: bit depth (0 = off)",
        help="Bits the bit-depth squeezer keeps (Xu et al. use 1 on MNIST); 0: no "
        "bit-depth squeezer.",
    )
    median: int = param(
        2,
        choices=(0, 2, 3),
        label="Squeezer: median window (0 = off)",
        help="Window of the median squeezer (Xu et al. use 2×2 on MNIST); 0: none. Images only.",
    )
    fpr: float = param(
        0.05,
        low=0.001,
        high=0.5,
        step=0.001,
        label="Target false-positive rate",
        help="Share of clean inputs the threshold may flag; it is set on clean held-out "
        "inputs (Xu et al. use 5 %).",
    )

    def check(self) -> None:
        if not self.bits and not self.median:
            raise ValidationError(
                "Feature squeezing needs at least one squeezer: a bit depth or a median window."
            )

    def squeezers(self) -> tuple[Transform, ...]:
        """Each squeezer on its own (the score is the largest distance over them)."""
        out: list[Transform] = []
        if self.bits:
            out.append(BitDepth(bits=self.bits))
        if self.median:
            out.append(MedianFilter(size=self.median))
        return tuple(out)

    def describe(self) -> str:
        return " and ".join(s.short() for s in self.squeezers())


def threshold_for_fpr(scores: torch.Tensor, fpr: float) -> float:
    """The smallest threshold that flags (score > threshold) at most ``fpr`` of
    ``scores``: the ``(⌊fpr·n⌋ + 1)``-th largest score."""
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    if s.numel() == 0:
        raise ValidationError("Need clean inputs' scores to set the detection threshold.")
    if not 0.0 < fpr < 1.0:
        raise ValidationError(f"The false-positive rate must lie in (0, 1), got {fpr!r}.")
    allowed = int(math.floor(fpr * s.numel() + 1e-9))
    top = torch.sort(s, descending=True).values
    return float(top[min(allowed, s.numel() - 1)])


class SqueezingDetector:
    """Feature squeezing on ``model``: scores, the threshold and the flags.

    Args:
        model: the classifier (logits (N, C)); its parameters are not changed.
        config: the squeezers and target false-positive rate.
        bounds: the data bounds (``None``: 0 and 1).
        threshold: a threshold set before (``None``: call :meth:`calibrate`).
    """

    def __init__(
        self,
        model: nn.Module,
        config: FeatureSqueezing | None = None,
        *,
        bounds: Bounds | None = None,
        threshold: float | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValidationError(f"Feature squeezing needs a model, got {type(model).__name__}.")
        self.model = model
        self.config = config or FeatureSqueezing()
        self.squeezers = self.config.squeezers()
        self.bounds = bounds
        self.threshold = threshold
        self.device = model_device(model)

    def score(
        self, x: torch.Tensor, *, backward: str = "exact", logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each input's score (N,), with gradients when autograd is on (``backward``:
        ``"exact"``, or ``"bpda"`` through the squeezers: the same values). ``logits``: the
        model's logits on ``x`` when the caller has them already."""
        check_backward(backward)
        for s in self.squeezers:
            s.check_input(x)
        x = x.to(self.device)
        lo, hi = data_bounds(self.bounds, x)
        p = F.softmax((self.model(x) if logits is None else logits).float(), dim=1)
        best = None
        for s in self.squeezers:
            z = s.bpda(x, lo, hi) if backward == "bpda" else s.forward(x, lo, hi)
            d = (p - F.softmax(self.model(z).float(), dim=1)).abs().sum(dim=1)
            best = d if best is None else torch.maximum(best, d)
        assert best is not None
        return best

    def scores(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Scores of a whole set in batches, without gradients (on the model's device)."""
        was = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                parts = [
                    self.score(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)
                ]
        finally:
            self.model.train(was)
        if not parts:
            return torch.zeros(0, device=self.device)
        return torch.cat(parts)

    def calibrate(self, x_clean: torch.Tensor, fpr: float | None = None) -> float:
        """Set the threshold on clean inputs for the false-positive rate ``fpr`` (default:
        the configuration's) and return it."""
        if x_clean.shape[0] < 2:
            raise ValidationError("Calibrating the detector needs at least two clean inputs.")
        self.threshold = threshold_for_fpr(self.scores(x_clean).cpu(), fpr or self.config.fpr)
        return self.threshold

    def _need_threshold(self) -> float:
        if self.threshold is None:
            raise ValidationError("Calibrate the detector on clean inputs first (calibrate()).")
        return float(self.threshold)

    def flags(self, x: torch.Tensor) -> torch.Tensor:
        """Which inputs the detector flags as adversarial (score above the threshold)."""
        return self.scores(x) > self._need_threshold()


def detection_metrics(
    clean_scores: torch.Tensor | np.ndarray,
    adv_scores: torch.Tensor | np.ndarray,
    threshold: float | None = None,
) -> dict[str, float]:
    """How well the scores separate adversarial from clean inputs.

    Keys: ``auc``, ``tpr@1%fpr`` and ``tpr@5%fpr`` (the detection rate at those rates,
    read off the ROC of these clean inputs), and with ``threshold``: ``detection_rate``
    (adversarial inputs flagged) and ``fpr`` (clean inputs flagged) at it; ``n_clean``,
    ``n_adv``. With no adversarial input the rates are NaN.
    """
    c = torch.as_tensor(clean_scores).double().cpu().numpy().reshape(-1)
    a = torch.as_tensor(adv_scores).double().cpu().numpy().reshape(-1)
    out: dict[str, float] = {"n_clean": int(c.size), "n_adv": int(a.size)}
    if a.size and c.size:
        fpr, tpr, _ = roc_curve(np.r_[c, a], np.r_[np.zeros(c.size), np.ones(a.size)])
        out["auc"] = auc(fpr, tpr)
        for level in DETECTION_FPRS:
            out[f"tpr@{level * 100:g}%fpr"] = tpr_at_fpr(fpr, tpr, level)
    else:
        out["auc"] = float("nan")
        for level in DETECTION_FPRS:
            out[f"tpr@{level * 100:g}%fpr"] = float("nan")
    if threshold is not None:
        out["detection_rate"] = float((a > threshold).mean()) if a.size else float("nan")
        out["fpr"] = float((c > threshold).mean()) if c.size else float("nan")
    return out


def detection_roc(clean_scores: Any, adv_scores: Any) -> pd.DataFrame:
    """The ROC curve (``fpr``, ``tpr``) of adversarial against clean scores."""
    c = torch.as_tensor(clean_scores).double().cpu().numpy().reshape(-1)
    a = torch.as_tensor(adv_scores).double().cpu().numpy().reshape(-1)
    return roc_table(np.r_[c, a], np.r_[np.zeros(c.size), np.ones(a.size)])


# -- the adaptive attacker (He et al. 2017) ---------------------------------------------------


@dataclass
class AdaptiveResult:
    """What :meth:`AdaptiveSqueezing.run` returns (tensors on the model's device).

    Attributes:
        x_adv: per input, the smallest perturbation that fooled the model and stayed under
            the threshold; where none did, the one that fooled the model with the lowest
            score; where none fooled it, the original.
        fooled: the model misclassifies ``x_adv``.
        detected: the detector flags ``x_adv``.
        success: fooled and not flagged.
        score: the squeezing score of ``x_adv``.
        l2: the L2 size of each perturbation.
        seconds, steps: wall time and gradient steps (forward+backward of the batch).
    """

    x_adv: torch.Tensor
    fooled: torch.Tensor
    detected: torch.Tensor
    success: torch.Tensor
    score: torch.Tensor
    l2: torch.Tensor
    seconds: float = 0.0
    steps: int = 0


@dataclass(frozen=True)
class AdaptiveSqueezing(Configurable):
    """He et al.'s (2017) adaptive attack on feature squeezing (see the module notes):
    C&W L2 on the misclassification margin plus λ times the squeezing score, through the
    squeezers by BPDA. Every step is judged with the exact squeezers: a success fools
    the model and scores at most the threshold."""

    name = "squeezing_adaptive"
    title = "Adaptive attack on feature squeezing"
    paper = (
        "He et al. 2017, Adversarial Example Defenses: Ensembles of Weak Defenses are not "
        "Strong (WOOT)"
    )

    lam: float = param(
        1.0,
        low=0.0,
        high=1000.0,
        step=0.5,
        label="λ (weight of the score)",
        help="How much the loss weighs the squeezing score against the misclassification "
        "margin; 0 is C&W without knowledge of the detector. Much larger values hold the "
        "attack near the clean input, where the score is lowest, so it fools fewer images.",
    )
    confidence: float = param(
        5.0,
        low=0.0,
        high=50.0,
        step=0.5,
        label="Confidence κ",
        help="Logit margin past the decision boundary the attack aims for; a confident "
        "misclassification survives squeezing better.",
    )
    initial_const: float = param(
        1.0,
        low=1e-3,
        high=1e3,
        log=True,
        label="Initial c",
        help="Starting weight of the attack loss against the perturbation size; the binary "
        "search adjusts it per input.",
    )
    binary_search_steps: int = param(
        3, low=1, high=20, label="Binary-search steps", help="Rounds of the search over c."
    )
    max_iter: int = param(
        100, low=1, high=10000, label="Iterations", help="Adam steps per binary-search round."
    )
    lr: float = param(
        0.1,
        low=1e-4,
        high=1.0,
        log=True,
        label="Learning rate",
        help="Adam's step size in tanh space (as for C&W on this workbench).",
    )

    def run(
        self,
        detector: SqueezingDetector,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        progress: ProgressFn | None = None,
    ) -> AdaptiveResult:
        """Attack the inputs ``x`` (true labels ``y``) against the calibrated ``detector``
        and its model, inside the detector's data bounds."""
        tau = detector._need_threshold()
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValidationError(
                f"Give a batch of inputs and one label per input: got {tuple(x.shape)} and "
                f"{tuple(y.shape)}."
            )
        model = detector.model
        was = model.training
        model.eval()
        t0 = time.perf_counter()
        try:
            out = self._attack(detector, x.detach().to(detector.device).float(),
                               y.to(detector.device).long(), tau, progress)  # fmt: skip
        finally:
            model.train(was)
        out.seconds = time.perf_counter() - t0
        return out

    def _judge(
        self, detector: SqueezingDetector, xa: torch.Tensor, y: torch.Tensor, tau: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            s = detector.score(xa)
            pred = detector.model(xa).argmax(1)
        return pred != y, s

    def _attack(
        self,
        detector: SqueezingDetector,
        x: torch.Tensor,
        y: torch.Tensor,
        tau: float,
        progress: ProgressFn | None,
    ) -> AdaptiveResult:
        n = x.shape[0]
        dev = x.device
        model = detector.model
        if n == 0:
            none = torch.zeros(0, dtype=torch.bool, device=dev)
            empty = torch.zeros(0, device=dev)
            return AdaptiveResult(x.clone(), none, none, none, empty, empty)
        lo, hi = data_bounds(detector.bounds, x)
        span = (hi - lo).clamp_min(1e-12)
        unit = ((x - lo) / span).clamp(0, 1)
        w0 = torch.atanh((unit * 2 - 1) * 0.999999)
        lower = torch.zeros(n, device=dev)
        upper = torch.full((n,), float("inf"), device=dev)
        const = torch.full((n,), float(self.initial_const), device=dev)
        inf = torch.full((n,), float("inf"), device=dev)
        best_l2 = inf.clone()  # of successes (fooled and under the threshold)
        best_adv = x.clone()
        fooled_score = inf.clone()  # lowest score among fooling iterates (no success yet)
        fooled_adv = x.clone()
        with torch.no_grad():
            classes = int(model(x[:1]).shape[1])
        onehot = F.one_hot(y, num_classes=classes).bool()
        total = self.binary_search_steps * self.max_iter
        steps = 0
        for _ in range(self.binary_search_steps):
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=self.lr)
            won = torch.zeros(n, dtype=torch.bool, device=dev)
            for _ in range(self.max_iter):
                with torch.enable_grad():
                    xa = lo + (torch.tanh(w) + 1) / 2 * span
                    logits = model(xa)
                    real = logits[onehot]
                    other = logits.masked_fill(onehot, float("-inf")).amax(dim=1)
                    margin = torch.clamp(real - other, min=-self.confidence)
                    score = detector.score(xa, backward="bpda", logits=logits)
                    l2sq = (xa - x).flatten(1).pow(2).sum(1)
                    loss = l2sq + const * (margin + self.lam * score)
                    opt.zero_grad()
                    loss.sum().backward()
                opt.step()
                steps += 1
                # BPDA keeps the forward values: this step's score and logits judge it.
                xd = xa.detach()
                fooled, s = logits.detach().argmax(1) != y, score.detach()
                ok = fooled & (s <= tau)
                l2 = l2sq.detach().sqrt()
                better = ok & (l2 < best_l2)
                best_l2 = torch.where(better, l2, best_l2)
                best_adv[better] = xd[better]
                won |= ok
                lower_score = fooled & (s < fooled_score)
                fooled_score = torch.where(lower_score, s, fooled_score)
                fooled_adv[lower_score] = xd[lower_score]
                if progress and steps % max(1, total // 50) == 0:
                    progress(steps / total, f"adaptive attack step {steps}/{total}")
            # binary search over c: a success lowers c, a failure raises it
            upper = torch.where(won, torch.minimum(upper, const), upper)
            lower = torch.where(~won, torch.maximum(lower, const), lower)
            const = torch.where(torch.isfinite(upper), (lower + upper) / 2, const * 10.0)
        done = torch.isfinite(best_l2)
        x_adv = torch.where(
            done.view(-1, *[1] * (x.dim() - 1)),
            best_adv,
            torch.where(torch.isfinite(fooled_score).view(-1, *[1] * (x.dim() - 1)), fooled_adv, x),
        )
        fooled, s = self._judge(detector, x_adv, y, tau)
        detected = s > tau
        return AdaptiveResult(
            x_adv=x_adv,
            fooled=fooled,
            detected=detected,
            success=fooled & ~detected,
            score=s,
            l2=(x_adv - x).flatten(1).norm(dim=1),
            steps=steps,
        )
