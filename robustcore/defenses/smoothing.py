"""Randomized smoothing with certificates (Cohen, Rosenfeld & Kolter 2019, "Certified
Adversarial Robustness via Randomized Smoothing").

A *base classifier* ``f`` (any model; here one trained with Gaussian input noise of the same
σ, the zoo's ``method="noise"`` recipe) becomes the *smoothed classifier*

    g(x) = argmax_c P(f(x + δ) = c),   δ ~ N(0, σ² I),

which returns the class the base model picks most often under noise. If the top class has
probability at least p_A > ½, g is provably constant on the L2 ball of radius
R = σ · Φ⁻¹(p_A) around x (Cohen et al., Theorem 1): no perturbation smaller than R can
change it. The probabilities are not known, only estimated from samples, so the paper's two
procedures hold with probability at least 1 − α:

* **PREDICT** (:meth:`Smoothing.predict`): ``n`` noisy copies, the counts of the top two
  classes ``n_A ≥ n_B``, a two-sided binomial test of ``n_A`` against ``n_A + n_B`` at ½;
  the top class when the test is significant at α, else an *abstention*. It returns a wrong
  class with probability at most α.
* **CERTIFY** (:meth:`Smoothing.certify`): ``n0`` copies to guess the top class ĉ_A, ``n``
  fresh copies to count it, the one-sided Clopper–Pearson lower bound p_A of its
  probability at level 1 − α, and the radius R = σ · Φ⁻¹(p_A); it abstains when
  p_A ≤ ½. With probability at least 1 − α a returned class is g(x) and g is constant on
  the ball of radius R.

:func:`certified_accuracy` turns certificates into the paper's curve: the share of test
images certified correct with a radius of at least r, for each r.

**The base classifier here** is ``f(z) = model(clip(z))``: noisy inputs are clipped to the
data bounds before the model, as the zoo's noise training does (``clip=True``; the
certificate holds for any ``f``, so clipping keeps it valid and keeps the model's test
inputs like its training inputs). With ``precision="bfloat16"`` the model runs under
bfloat16 autocast: the certificate is then about that classifier (it holds for whatever ``f``
is evaluated), which agrees with the float32 one on all but rare near-ties.

**Sampling** is batched on the model's device under :func:`torch.inference_mode`: the noisy
copies of one or several images go through the model ``batch_size`` at a time, in the
model's fastest memory layout (:func:`robustcore.device.fast_layout`), and the predicted
classes are counted on the device with :func:`torch.bincount`. The noise comes in fixed
blocks of :data:`NOISE_BLOCK` draws, each from a generator seeded by (seed, procedure,
image, block), so the counts for a seed do not depend on ``batch_size`` (nor on which
other images are certified in the same call).

**Attacking the smoothed classifier.** :meth:`Smoothing.wrap` gives the *soft* smoothed
classifier as a model (Salman et al. 2019, "Provably Robust Deep Learning via
Adversarially Trained Smoothed Classifiers"): its forward is log( mean of softmax(f(x + δ_j))
over ``samples`` fresh noise draws ), an (N, C) tensor a white-box attack differentiates
(PGD with this forward is PGD with expectation over transformation on the noise). Attack
the wrapped model, then judge the adversarial inputs with :meth:`Smoothing.predict`.

Example::

    from robustcore.defenses.smoothing import Smoothing, certified_accuracy
    sm = Smoothing(sigma=0.25, n0=100, n=10_000, alpha=0.001)
    cert = sm.certify(model, x, bounds=ds.bounds)          # class (−1: abstain), radius
    certified_accuracy(cert, y, [0.0, 0.25, 0.5])           # tensor of 3 shares
    soft = sm.wrap(model, bounds=ds.bounds)                 # an nn.Module, (N, C) output
    x_adv = PGD(steps=20).perturb(soft, x, y, eps=0.5, norm="l2")
    sm.predict(model, x_adv, bounds=ds.bounds).pred         # −1 where PREDICT abstains
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import fast_layout, in_layout, model_device
from ..errors import ValidationError
from ..hashing import mix_seed as _mix
from ..params import Configurable, param
from ..progress import ProgressFn

ABSTAIN = -1
"""The class PREDICT and CERTIFY return when they abstain."""

NOISE_BLOCK = 256
"""Noise draws per seeded block (see the module notes): part of what a seed means, so the
same seed gives the same draws whatever the batch size."""

PRECISIONS = ("float32", "bfloat16")
_PHASES = {"select": 1, "estimate": 2, "predict": 3, "soft": 4}

Bounds = tuple[torch.Tensor | float, torch.Tensor | float]


# -- the statistics (Cohen et al., Sec. 3.2 and Appendix) --------------------------------------


def lower_confidence_bound(n_a: Any, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper–Pearson lower bound on a success probability at level 1 − α: the
    α quantile of Beta(n_A, n − n_A + 1), 0 when n_A = 0 (Cohen et al.'s ``LowerConfBound``,
    ``proportion_confint(n_A, n, alpha=2α, method="beta")[0]``)."""
    from scipy.stats import beta

    k = np.asarray(n_a, dtype=np.float64)
    with np.errstate(all="ignore"):
        bound = beta.ppf(alpha, np.maximum(k, 1.0), n - k + 1.0)
    return np.where(k > 0, bound, 0.0)


def binomial_p_value(n_a: Any, n_b: Any) -> np.ndarray:
    """Two-sided binomial test p-value of ``n_a`` successes in ``n_a + n_b`` trials at
    probability ½ (``scipy.stats.binomtest(n_a, n_a + n_b, 0.5).pvalue``), for arrays with
    ``n_a ≥ n_b``: 2 · P(X ≥ n_a) capped at 1, exact because the null is symmetric."""
    from scipy.stats import binom

    a = np.asarray(n_a, dtype=np.float64)
    total = a + np.asarray(n_b, dtype=np.float64)
    p = 2.0 * binom.sf(a - 1.0, total, 0.5)
    return np.where(total > 0, np.minimum(1.0, p), 1.0)


def certified_radius(p_lower: Any, sigma: float) -> np.ndarray:
    """σ · Φ⁻¹(p_A) where p_A > ½, else 0 (no certificate)."""
    from scipy.stats import norm

    p = np.asarray(p_lower, dtype=np.float64)
    with np.errstate(all="ignore"):
        r = sigma * norm.ppf(p)
    return np.where(p > 0.5, r, 0.0)


# -- results ----------------------------------------------------------------------------------


@dataclass
class Prediction:
    """What PREDICT returns for a batch (tensors on the CPU).

    Attributes:
        pred: the smoothed classifier's class per input, :data:`ABSTAIN` (−1) where the
            binomial test was not significant at α.
        counts: (N, C) how often the base classifier chose each class under noise.
        p_value: the binomial test's p-value per input.
    """

    pred: torch.Tensor
    counts: torch.Tensor
    p_value: torch.Tensor

    @property
    def abstained(self) -> torch.Tensor:
        return self.pred == ABSTAIN

    def accuracy(self, y: torch.Tensor) -> float:
        """The share of inputs classified right (an abstention counts as wrong)."""
        return float((self.pred == y.cpu()).double().mean()) if y.numel() else 0.0

    @property
    def abstain_rate(self) -> float:
        return float(self.abstained.double().mean()) if self.pred.numel() else 0.0


@dataclass
class Certificate:
    """What CERTIFY returns for a batch (tensors on the CPU).

    Attributes:
        pred: the certified class per input, :data:`ABSTAIN` (−1) where p_A ≤ ½.
        radius: the certified L2 radius σ · Φ⁻¹(p_A) (0 where it abstains).
        p_lower: the Clopper–Pearson lower bound p_A on the top class's probability.
        top: the class the ``n0`` selection samples chose (certified or not).
        counts: (N, C) the estimation samples' counts (``n`` per input).
        sigma, n, alpha: the settings the certificate holds for.
    """

    pred: torch.Tensor
    radius: torch.Tensor
    p_lower: torch.Tensor
    top: torch.Tensor
    counts: torch.Tensor
    sigma: float
    n: int
    alpha: float

    @property
    def abstained(self) -> torch.Tensor:
        return self.pred == ABSTAIN

    @property
    def abstain_rate(self) -> float:
        return float(self.abstained.double().mean()) if self.pred.numel() else 0.0

    @property
    def max_radius(self) -> float:
        """The largest radius ``n`` samples can certify: every sample on the top class."""
        return float(
            certified_radius(lower_confidence_bound(self.n, self.n, self.alpha), self.sigma)
        )

    def correct(self, y: torch.Tensor) -> torch.Tensor:
        """Per input: certified, and on the true class."""
        return self.pred == y.cpu()


def certified_accuracy(cert: Certificate, y: torch.Tensor, radii: Sequence[float]) -> torch.Tensor:
    """Cohen et al.'s approximate certified test accuracy: for each radius r, the share of
    inputs whose certificate is on the true class with a radius of at least r (abstentions
    and wrong classes count as not certified)."""
    r = torch.as_tensor(list(radii), dtype=torch.float64).view(-1, 1)
    ok = cert.correct(y).view(1, -1) & (cert.radius.double().view(1, -1) >= r)
    if cert.pred.numel() == 0:
        return torch.zeros(r.shape[0], dtype=torch.float64)
    return ok.double().mean(dim=1)


# -- the declaration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Smoothing(Configurable):
    """Randomized smoothing of a base model: PREDICT, CERTIFY and the soft smoothed model.

    See the module notes for what each procedure guarantees. Cohen et al. use n0 = 100,
    n = 100,000 and α = 0.001 on CIFAR-10 and ImageNet; n = 10,000 certifies radii up to
    σ · Φ⁻¹(α^(1/n)) ≈ 3.2 σ at α = 0.001 (1,000 samples: 2.46 σ; 100,000: 3.8 σ).
    """

    name = "smoothing"
    title = "Randomized smoothing"
    paper = (
        "Cohen, Rosenfeld & Kolter 2019, Certified Adversarial Robustness via Randomized "
        "Smoothing; Salman et al. 2019 (the soft smoothed classifier)"
    )

    sigma: float = param(
        0.25,
        low=0.01,
        high=10.0,
        step=0.01,
        label="Noise σ",
        help="Standard deviation of the Gaussian noise added to every input. A larger σ "
        "certifies larger radii but costs clean accuracy; the base model should have been "
        "trained with noise of the same σ.",
    )
    n0: int = param(
        100,
        low=1,
        high=1_000_000,
        step=10,
        label="Selection samples n0",
        help="Noisy copies CERTIFY uses to guess the top class (they do not count in the bound).",
    )
    n: int = param(
        10_000,
        low=1,
        high=10_000_000,
        step=100,
        label="Estimation samples n",
        help="Noisy copies PREDICT and CERTIFY count. More samples tighten the bound on the "
        "top class's probability and so certify larger radii; the cost grows linearly.",
    )
    alpha: float = param(
        0.001,
        low=1e-9,
        high=0.5,
        log=True,
        label="Failure probability α",
        help="The probability that a returned class or certificate is wrong. Smaller α "
        "abstains more often and certifies smaller radii.",
    )
    batch_size: int = param(
        256,
        low=1,
        high=1_000_000,
        step=64,
        label="Batch size",
        help="Noisy copies per forward pass (speed and memory only: the draws, and so the "
        "counts, are the same for any batch size).",
    )
    samples: int = param(
        8,
        low=1,
        high=4096,
        step=1,
        label="Noise draws per soft forward",
        help="How many noisy copies one forward of the soft smoothed model (what an attack "
        "differentiates) averages over: the attack's expectation over the noise.",
    )
    clip: bool = param(
        True,
        label="Clip noisy inputs to the data bounds",
        help="As the zoo's noise training does, so that the model sees inputs like its "
        "training inputs. The certificate holds either way.",
    )
    precision: str = param(
        "float32",
        choices=PRECISIONS,
        label="Precision of the sampling passes",
        help="bfloat16 runs the model under autocast (faster on processors with bfloat16 "
        "units, see bench/certified_robustness.py; slower on others; the certificate is then "
        "about the bfloat16 model). The soft smoothed model always runs in float32.",
    )
    seed: int = param(
        0, low=0, high=2**31 - 1, label="Noise seed", help="Seed of every noise draw."
    )

    # -- sampling -------------------------------------------------------------------------

    def counts(
        self,
        model: nn.Module,
        x: torch.Tensor,
        num: int,
        *,
        bounds: Bounds | None = None,
        phase: str = "estimate",
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        """How often ``model`` picks each class on ``num`` noisy copies of each input.

        Args:
            model: the base classifier (logits (N, C)); left in the mode it was in.
            x: inputs (N, …) shaped like the data.
            num: noisy copies per input.
            bounds: the data bounds noisy inputs are clipped to (``None``: 0 and 1) when
                ``clip`` is on.
            phase: which independent stream of draws (``"select"``, ``"estimate"``,
                ``"predict"``): CERTIFY's selection and estimation samples must differ.
            progress: ``progress(fraction, message)``; may raise to cancel.

        Returns:
            (N, C) int64 counts on the model's device; each row sums to ``num``.
        """
        if num < 1:
            raise ValidationError(f"Give at least one noisy copy per input, got {num}.")
        if phase not in _PHASES:
            raise ValidationError(
                f"Unknown sampling phase {phase!r}; choose one of {list(_PHASES)}."
            )
        device = model_device(model)
        x = _check_inputs(x).to(device, torch.float32)
        n_in = x.shape[0]
        blocks = [
            (i, b, min(NOISE_BLOCK, num - b * NOISE_BLOCK))
            for i in range(n_in)
            for b in range(math.ceil(num / NOISE_BLOCK))
        ]
        gen = torch.Generator(device=device)
        phase_id = _PHASES[phase]
        autocast = torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"
        )
        was_training = model.training
        model.eval()
        # The layout change happens outside inference mode: weights converted inside it
        # would become inference tensors, and no attack could differentiate the model after.
        try:
            with fast_layout(model, device) as fmt, torch.inference_mode(), autocast:
                classes = int(_probe(model, x))
                counts = torch.zeros(n_in * classes, dtype=torch.long, device=device)
                lo, hi = _bounds(bounds, x) if self.clip and n_in else (None, None)
                done = 0
                for group in _batches(blocks, self.batch_size):
                    rows = sum(size for _, _, size in group)
                    buf = torch.empty((rows, *x.shape[1:]), device=device, dtype=torch.float32)
                    at = 0
                    for i, b, size in group:  # one seeded block of draws at a time
                        part = buf[at : at + size]
                        gen.manual_seed(_mix(self.seed, phase_id, i, b))
                        part.normal_(generator=gen)
                        part.mul_(self.sigma).add_(x[i])
                        at += size
                    if lo is not None:
                        buf.clamp_(min=lo, max=hi)
                    pred = model(in_layout(buf, fmt)).argmax(dim=1)
                    owner = torch.repeat_interleave(
                        torch.tensor([g[0] for g in group], device=device),
                        torch.tensor([g[2] for g in group], device=device),
                    )
                    counts += torch.bincount(owner * classes + pred, minlength=n_in * classes)
                    done += len(group)
                    if progress is not None:
                        per_input = done * num // len(blocks)
                        progress(
                            done / len(blocks), f"noise samples {per_input:,}/{num:,} per input"
                        )
        finally:
            model.train(was_training)
        return counts.view(n_in, classes)

    # -- PREDICT and CERTIFY --------------------------------------------------------------

    def predict(
        self,
        model: nn.Module,
        x: torch.Tensor,
        *,
        bounds: Bounds | None = None,
        progress: ProgressFn | None = None,
    ) -> Prediction:
        """Cohen et al.'s PREDICT on each input: ``n`` noisy copies, the top two counts, the
        top class when the two-sided binomial test rejects a tie at α, else
        :data:`ABSTAIN`. Arguments as for :meth:`counts`."""
        counts = self.counts(model, x, self.n, bounds=bounds, phase="predict", progress=progress)
        return self.test_counts(counts)

    def test_counts(self, counts: torch.Tensor) -> Prediction:
        """PREDICT's decision on counts already drawn (N, C): the top class where the
        two-sided binomial test of the top two counts rejects a tie at α, else
        :data:`ABSTAIN`. The counts of CERTIFY's estimation samples are ``n`` independent
        draws as PREDICT's would be, so PREDICT on them is PREDICT on those inputs (with
        its own guarantee, at no extra sampling)."""
        counts = counts.cpu()
        if counts.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.long)
            return Prediction(empty, counts, torch.zeros(0, dtype=torch.float64))
        k = min(2, counts.shape[1])
        top = counts.topk(k, dim=1)
        n_a = top.values[:, 0].numpy()
        n_b = top.values[:, 1].numpy() if k == 2 else np.zeros_like(n_a)
        p = binomial_p_value(n_a, n_b)
        pred = torch.where(torch.from_numpy(p <= self.alpha), top.indices[:, 0], ABSTAIN)
        return Prediction(pred=pred, counts=counts, p_value=torch.from_numpy(p))

    def certify(
        self,
        model: nn.Module,
        x: torch.Tensor,
        *,
        bounds: Bounds | None = None,
        progress: ProgressFn | None = None,
    ) -> Certificate:
        """Cohen et al.'s CERTIFY on each input: the top class of ``n0`` noisy copies, its
        count among ``n`` fresh ones, the Clopper–Pearson lower bound p_A at 1 − α and the
        radius σ · Φ⁻¹(p_A); :data:`ABSTAIN` (radius 0) where p_A ≤ ½. Arguments as for
        :meth:`counts`."""
        share = self.n0 / (self.n0 + self.n)
        sel_p = _scaled(progress, 0.0, share, "selection")
        est_p = _scaled(progress, share, 1.0, "estimation")
        sel = self.counts(model, x, self.n0, bounds=bounds, phase="select", progress=sel_p)
        top = sel.argmax(dim=1)
        est = self.counts(model, x, self.n, bounds=bounds, phase="estimate", progress=est_p)
        n_a = est.gather(1, top.view(-1, 1)).view(-1).cpu().numpy()
        p_lower = lower_confidence_bound(n_a, self.n, self.alpha)
        radius = certified_radius(p_lower, self.sigma)
        top = top.cpu()
        pred = torch.where(torch.from_numpy(p_lower > 0.5), top, ABSTAIN)
        return Certificate(
            pred=pred,
            radius=torch.from_numpy(radius),
            p_lower=torch.from_numpy(p_lower),
            top=top,
            counts=est.cpu(),
            sigma=self.sigma,
            n=self.n,
            alpha=self.alpha,
        )

    # -- the soft smoothed classifier as a model --------------------------------------------

    def wrap(self, model: nn.Module, *, bounds: Bounds | None = None) -> SmoothedClassifier:
        """The soft smoothed classifier of ``model`` as a model
        (:class:`SmoothedClassifier`)."""
        return SmoothedClassifier(model, self, bounds=bounds)


class SmoothedClassifier(nn.Module):
    """The soft smoothed classifier (Salman et al. 2019) as a model: ``forward(x)`` is

        log( (1/m) Σ_j softmax(f(x + δ_j)) ),   δ_j ~ N(0, σ² I),  m = ``samples``,

    an (N, C) tensor of log-probabilities (logits for every purpose: its argmax is the
    soft smoothed prediction, its softmax the estimated class probabilities) with input
    gradients, so a white-box attack on it is an attack with expectation over the noise.
    Every call draws fresh noise from its own stream (seeded by the smoothing seed and a
    call counter, so a sequence of calls repeats from a fresh wrapper). The base model is
    shared, not copied; the wrapper lives on its device, always in eval mode (it is never
    trained: ``train()`` leaves it in eval mode), and keeps σ, the draw count and the
    bounds as buffers, so its ``state_dict`` says what it is.

    Args:
        base: the base classifier (logits (N, C)).
        smoothing: the settings (``sigma``, ``samples``, ``clip``, ``batch_size``, ``seed``).
        bounds: the data bounds noisy inputs are clipped to when ``clip`` is on (``None``:
            0 and 1).
    """

    def __init__(
        self, base: nn.Module, smoothing: Smoothing, *, bounds: Bounds | None = None
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise ValidationError(
                f"Randomized smoothing needs a model (an nn.Module), got {type(base).__name__}."
            )
        if not isinstance(smoothing, Smoothing):
            raise ValidationError("Give the smoothing settings as a Smoothing declaration.")
        device = model_device(base)
        self.base = base
        self.smoothing = smoothing
        self.register_buffer("sigma", torch.tensor(float(smoothing.sigma), device=device))
        self.register_buffer("draws", torch.tensor(int(smoothing.samples), device=device))
        if smoothing.clip:
            lo, hi = (0.0, 1.0) if bounds is None else bounds
            self.register_buffer("lo", torch.as_tensor(lo, dtype=torch.float32).to(device))
            self.register_buffer("hi", torch.as_tensor(hi, dtype=torch.float32).to(device))
        else:
            self.lo = None
            self.hi = None
        self.calls = 0
        self.train(False)

    def train(self, mode: bool = True) -> SmoothedClassifier:
        """Always eval mode: the smoothed classifier is never trained (its base's batch
        norm must use its running statistics)."""
        return super().train(False)

    def reset(self) -> None:
        """Start the noise stream again, as a fresh wrapper would."""
        self.calls = 0

    def extra_repr(self) -> str:
        s = self.smoothing
        return f"sigma={s.sigma:g}, samples={s.samples}, clip={s.clip}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = int(self.smoothing.samples)
        device = self.sigma.device
        x = x.to(device)
        gen = torch.Generator(device=device)
        gen.manual_seed(_mix(self.smoothing.seed, _PHASES["soft"], self.calls))
        self.calls += 1
        chunk = max(1, self.smoothing.batch_size // m)
        outs = []
        for i in range(0, x.shape[0], chunk):
            xc = x[i : i + chunk]
            z = xc.repeat_interleave(m, dim=0)
            noise = torch.randn(z.shape, generator=gen, device=device, dtype=z.dtype)
            z = z + self.sigma.to(z.dtype) * noise
            if self.lo is not None:
                z = torch.maximum(torch.minimum(z, self.hi), self.lo)
            logp = F.log_softmax(self.base(z).float(), dim=1).view(xc.shape[0], m, -1)
            outs.append(torch.logsumexp(logp, dim=1) - math.log(m))
        if not outs:
            with torch.no_grad():
                classes = self.base(x[:1].new_zeros((1, *x.shape[1:]))).shape[1]
            return x.new_zeros((0, classes))
        return torch.cat(outs)


# -- helpers ----------------------------------------------------------------------------------


def _check_inputs(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValidationError(
            "Give a batch of inputs shaped (N, …) like the data, with the batch axis first; "
            f"got {shape}."
        )
    return x.detach()


def _probe(model: nn.Module, x: torch.Tensor) -> int:
    """The model's class count, from one input (or a zero input when the batch is empty)."""
    one = x[:1] if x.shape[0] else x.new_zeros((1, *x.shape[1:]))
    try:
        out = model(one)
    except RuntimeError:
        raise ValidationError(
            f"The model cannot take inputs shaped {tuple(x.shape[1:])}: give inputs shaped like "
            "the dataset's, with a batch axis first."
        ) from None
    if out.dim() != 2 or out.shape[0] != 1 or out.shape[1] < 2:
        raise ValidationError(
            "The base model must return one row of at least 2 class scores per input, got "
            f"{tuple(out.shape)}."
        )
    return int(out.shape[1])


def _bounds(bounds: Bounds | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = (0.0, 1.0) if bounds is None else bounds
    lo_t = torch.as_tensor(lo, dtype=torch.float32, device=x.device)
    hi_t = torch.as_tensor(hi, dtype=torch.float32, device=x.device)
    if bool((lo_t > hi_t).any()):
        raise ValidationError("Data bounds are inverted: every lower bound must be ≤ the upper.")
    return lo_t.expand_as(x[0]).unsqueeze(0), hi_t.expand_as(x[0]).unsqueeze(0)


def _batches(
    blocks: list[tuple[int, int, int]], batch_size: int
) -> Iterator[list[tuple[int, int, int]]]:
    """Consecutive blocks of draws, grouped into batches of at most ``batch_size`` rows (a
    block is never split, so a batch holds at least one)."""
    group: list[tuple[int, int, int]] = []
    rows = 0
    for block in blocks:
        if group and rows + block[2] > batch_size:
            yield group
            group, rows = [], 0
        group.append(block)
        rows += block[2]
    if group:
        yield group


def _scaled(progress: ProgressFn | None, start: float, end: float, label: str) -> ProgressFn | None:
    from ..progress import scaled

    return scaled(progress, start, end, label)
