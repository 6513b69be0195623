"""Input preprocessing: transforms applied to every input before the model sees it, and the
adaptive attacks that see through them.

Each transform works on a whole batch on its device, keeps the batch's shape and keeps
every value inside the data bounds ``[lo, hi]`` (per feature, or numbers):

* :class:`BitDepth` – reduce each value to ``2**bits`` levels between ``lo`` and ``hi``
  (Xu et al. 2018, "Feature Squeezing: Detecting Adversarial Examples in Deep Neural
  Networks", NDSS; Guo et al. 2018, "Countering Adversarial Images using Input
  Transformations"). Works on images and on tabular vectors.
* :class:`MedianFilter` – each pixel becomes the median of its ``size × size`` window
  (Xu et al. 2018). The 2×2 window is Xu et al.'s: the pixel, its upper and left
  neighbours and the upper-left one, the upper of the two middle values, edges repeated
  (what ``scipy.ndimage.median_filter(size=2)`` computes); 3×3 is centred. Images only.
* :class:`GaussianBlur` – a Gaussian low-pass filter of σ pixels, as two 1-D convolutions
  (rows, then columns), edges repeated. Images only.
* :class:`JPEG` – JPEG compression and decompression at ``quality`` (Dziugaite et al.
  2016; Das et al. 2017; Guo et al. 2018), written in torch: values to 0…255 levels, 8×8
  blocks, the block DCT as a matrix product, the standard luminance quantisation table of
  the JPEG standard (Annex K) scaled by the quality as libjpeg does, rounding, the inverse
  DCT and 0…255 levels again. Each channel is compressed on its own with the luminance
  table (grayscale, or per-channel RGB: no chroma subsampling). Images only.
* :class:`GaussianNoise` – additive Gaussian noise of σ (in data units), clipped to the
  bounds: a *random* transform. Images and tabular vectors.
* :class:`RandomResizePad` – shrink the image to a random size of up to ``shrink`` pixels
  less and pad it back at a random position (Xie et al. 2018, "Mitigating Adversarial
  Effects Through Randomization", which enlarges instead; here the shape is kept): a
  *random* transform, one draw per image. Images only.

Every transform is a :class:`~robustcore.params.Configurable` declaration, so it can drive
a form and a cache key. :class:`Preprocessing` declares a whole chain (bit depth → median
→ blur → JPEG → the random transform, each off at 0 / ``"none"``); it is also the
``"preprocessing"`` kind of :mod:`robustcore.defenses.inference`, so the sidebar can put a
model behind it.

**Gradients.** :meth:`Preprocessing.wrap` gives a module that behaves like a model
(logits (N, C), eval mode, on the model's device) with ``model(chain(x))`` as forward. Its
``backward`` says what an attacker differentiates:

* ``"exact"``: autograd through the transforms as written. Rounding (bit depth, JPEG) has a
  zero gradient, so a gradient attack on it stalls: this is the *naive* attacker, and its
  failure is gradient masking, not robustness.
* ``"bpda"``: Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner 2018,
  "Obfuscated Gradients Give a False Sense of Security"): the forward pass is unchanged,
  the backward pass replaces each transform by a differentiable approximation. Bit depth,
  JPEG and the noise's clipping are the identity on the backward pass
  (``x + (t(x) − x).detach()``, the straight-through estimator); the median filter is its
  smooth approximation, the mean of the same window (:attr:`MedianFilter.bpda`); the blur
  and the resize are differentiable and keep their own gradient.

For a random transform, :class:`EOT` (Expectation over Transformation, Athalye et al.
2018) makes the forward used by an attack the average of the model's probabilities over
``samples`` draws, so that the attack's gradient is the gradient of the expectation::

    from robustcore.defenses.preprocessing import Preprocessing
    pre = Preprocessing(bits=1, median=2)
    naive = pre.wrap(model, bounds=ds.bounds)                   # exact gradients
    bpda = pre.wrap(model, backward="bpda", bounds=ds.bounds)   # Athalye et al.'s BPDA
    PGD(steps=40).run(bpda, x, y, eps=0.3)                      # breaks it
    rnd = Preprocessing(bits=0, median=0, random="resize_pad")
    eot = rnd.wrap(model, backward="bpda", bounds=ds.bounds, eot=8)   # EOT over 8 draws
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..device import model_device
from ..errors import ValidationError
from ..hashing import mix_seed as _mix
from ..params import Configurable, param

Bounds = tuple[Any, Any]
BACKWARDS = ("exact", "bpda")
"""What an attacker differentiates (see the module notes)."""
RANDOM = ("none", "noise", "resize_pad")
"""The random transforms a :class:`Preprocessing` chain can end with."""


def check_backward(backward: str) -> str:
    if backward not in BACKWARDS:
        raise ValidationError(
            f"backward must be 'exact' (gradients as written) or 'bpda' (Athalye et al.'s "
            f"approximation), got {backward!r}."
        )
    return backward


def data_bounds(bounds: Bounds | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds as tensors broadcastable to the batch ``x`` (``None``: 0 and
    1, as for images), on ``x``'s device."""
    lo, hi = (0.0, 1.0) if bounds is None else bounds
    lo_t = torch.as_tensor(lo, dtype=x.dtype).to(x.device)
    hi_t = torch.as_tensor(hi, dtype=x.dtype).to(x.device)
    if bool((lo_t > hi_t).any()):
        raise ValidationError("Data bounds are inverted: every lower bound must be ≤ the upper.")
    shape = x.shape[1:]
    try:
        return lo_t.expand(shape).unsqueeze(0), hi_t.expand(shape).unsqueeze(0)
    except RuntimeError:
        raise ValidationError(
            f"The data bounds (shaped {tuple(lo_t.shape)}) do not fit inputs shaped {tuple(shape)}."
        ) from None


def _straight_through(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` on the forward pass, the identity on the backward pass (BPDA)."""
    return x + (out - x).detach()


def _clip(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(x, hi), lo)


# -- the transforms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Transform(Configurable):
    """Base class of an input transform on a batch (see the module notes).

    Subclasses implement :meth:`forward` (the transform as written, which autograd
    differentiates as it is) and may override :meth:`bpda` (the same values, with the
    backward pass of a differentiable approximation; default: the identity).

    Class attributes: ``random`` (a fresh draw at every call), ``images_only`` (needs
    batches of images (N, C, H, W)), ``bpda_note`` (what BPDA differentiates instead).
    """

    random: ClassVar[bool] = False
    images_only: ClassVar[bool] = True
    bpda_note: ClassVar[str] = "the identity"

    def forward(
        self,
        x: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def bpda(
        self,
        x: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The transform's values with a differentiable approximation's gradient."""
        return _straight_through(x, self.forward(x, lo, hi, generator))

    def short(self) -> str:
        """A few words for legends and labels."""
        return self.title

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse inputs the transform cannot work on (with a message that says why)."""
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValidationError(
                "Give a batch of inputs shaped (N, …) like the data, with the batch axis first."
            )
        if self.images_only and x.dim() != 4:
            raise ValidationError(
                f"{self.title} works on batches of images (N, C, H, W), got inputs shaped "
                f"{tuple(x.shape)}. On tabular data use bit-depth reduction or Gaussian noise."
            )

    def __call__(
        self,
        x: torch.Tensor,
        *,
        bounds: Bounds | None = None,
        backward: str = "exact",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Transform the batch ``x`` (values inside ``bounds``; ``None``: 0 and 1).

        Args:
            x: the batch, (N, C, H, W) for images or (N, F) for tabular data.
            bounds: the data bounds (tensors shaped like one input, or numbers).
            backward: ``"exact"`` or ``"bpda"`` (see the module notes).
            generator: the random draws of a random transform (default: torch's).
        """
        check_backward(backward)
        self.check_input(x)
        lo, hi = data_bounds(bounds, x)
        x = _clip(x, lo, hi)
        if backward == "bpda":
            return self.bpda(x, lo, hi, generator)
        return self.forward(x, lo, hi, generator)


@dataclass(frozen=True)
class BitDepth(Transform):
    """Reduce every value to ``2**bits`` evenly spaced levels between its bounds (Xu et al.
    2018). One bit maps each value to its lower or upper bound, whichever is nearer (on
    MNIST: a black-and-white image, thresholded at ½). Rounding has a zero gradient, so
    BPDA takes the identity."""

    name = "bit_depth"
    title = "Bit-depth reduction"
    paper = "Xu et al. 2018, Feature Squeezing (NDSS)"
    images_only = False

    bits: int = param(
        1,
        low=1,
        high=8,
        step=1,
        label="Bits",
        help="Bits kept per value: 1 keeps two levels (the bounds), 8 keeps 256.",
    )

    def forward(self, x, lo, hi, generator=None):
        levels = float(2**self.bits - 1)
        span = (hi - lo).clamp_min(1e-12)
        unit = ((x - lo) / span).clamp(0.0, 1.0)
        return lo + torch.round(unit * levels) / levels * span

    def short(self) -> str:
        return f"{self.bits}-bit depth"


@dataclass(frozen=True)
class MedianFilter(Transform):
    """Median smoothing over a ``size × size`` window (Xu et al. 2018), edges repeated.

    The 2×2 window of Xu et al. covers the pixel, the one above, the one to the left and
    the one above-left, and takes the upper of the two middle values (``scipy``'s
    ``median_filter(size=2)``); 3×3 is centred on the pixel. Built from ``unfold``, on the
    batch's device. The median is differentiable almost everywhere (the gradient goes to
    the one input that is the median), but that gradient is sparse; BPDA takes the mean
    of the same window, its smooth approximation."""

    name = "median"
    title = "Median filter"
    paper = "Xu et al. 2018, Feature Squeezing (NDSS)"
    bpda_note = "the mean of the same window"

    size: int = param(
        2,
        choices=(2, 3),
        label="Window",
        help="Side of the square window in pixels: 2 (Xu et al.'s 2×2) or 3 (centred 3×3).",
    )

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W, k²): every pixel's window, edges repeated."""
        n, c, h, w = x.shape
        k = self.size
        # 2×2: the window reaches one pixel up and left (pad top/left); 3×3: one each way.
        pad = (1, 0, 1, 0) if k == 2 else (1, 1, 1, 1)
        padded = F.pad(x.reshape(n * c, 1, h, w), pad, mode="replicate")
        cols = F.unfold(padded, kernel_size=k)  # (N·C, k², H·W)
        return cols.view(n, c, k * k, h, w).permute(0, 1, 3, 4, 2)

    def forward(self, x, lo, hi, generator=None):
        win = self._windows(x)
        k2 = win.shape[-1]
        # The (k²//2)-th smallest, counting from 0: the median of 9, the upper middle of 4.
        return torch.kthvalue(win, k2 // 2 + 1, dim=-1).values

    def bpda(self, x, lo, hi, generator=None):
        with torch.no_grad():
            out = self.forward(x, lo, hi)
        mean = self._windows(x).mean(dim=-1)
        return mean + (out - mean).detach()

    def short(self) -> str:
        return f"{self.size}×{self.size} median"


@dataclass(frozen=True)
class GaussianBlur(Transform):
    """A Gaussian low-pass filter of standard deviation σ pixels: the kernel is sampled
    out to 3σ and normalised, and applied as a row and then a column convolution (it is
    separable), edges repeated. Differentiable: BPDA keeps its own gradient."""

    name = "gaussian_blur"
    title = "Gaussian smoothing"
    paper = "a Gaussian low-pass filter, as in Xu et al. 2018's smoothing squeezers"
    bpda_note = "its own gradient (it is differentiable)"

    sigma: float = param(
        1.0,
        low=0.1,
        high=5.0,
        step=0.1,
        label="σ (pixels)",
        help="Standard deviation of the Gaussian kernel, in pixels.",
    )

    def kernel(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        radius = max(1, math.ceil(3.0 * self.sigma))
        t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
        k = torch.exp(-0.5 * (t / self.sigma) ** 2)
        return k / k.sum()

    def forward(self, x, lo, hi, generator=None):
        n, c, h, w = x.shape
        k = self.kernel(x.device, x.dtype)
        r = (k.numel() - 1) // 2
        z = x.reshape(n * c, 1, h, w)
        z = F.conv2d(F.pad(z, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
        z = F.conv2d(F.pad(z, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
        return _clip(z.view(n, c, h, w), lo, hi)

    def bpda(self, x, lo, hi, generator=None):
        return self.forward(x, lo, hi, generator)

    def short(self) -> str:
        return f"Gaussian blur σ={self.sigma:g}"


LUMINANCE_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
"""The JPEG standard's luminance quantisation table (ITU-T T.81, Annex K, Table K.1)."""


def quantisation_table(quality: int) -> torch.Tensor:
    """The luminance table scaled by ``quality`` as libjpeg does: a scale of 5000/q below
    50 and 200 − 2q from 50, each entry ``floor((Q·scale + 50) / 100)`` kept in 1…255."""
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValidationError(f"JPEG quality must be between 1 and 100, got {quality!r}.")
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    table = torch.tensor(LUMINANCE_TABLE, dtype=torch.float64)
    return torch.floor((table * scale + 50.0) / 100.0).clamp(1.0, 255.0).float()


def dct_matrix(size: int = 8) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``D`` (a block's DCT is ``D B Dᵀ``, its inverse
    ``Dᵀ C D``); for 8×8 it is JPEG's forward DCT."""
    k = torch.arange(size, dtype=torch.float64).view(-1, 1)
    i = torch.arange(size, dtype=torch.float64).view(1, -1)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d.float()


@dataclass(frozen=True)
class JPEG(Transform):
    """JPEG compression and decompression at ``quality`` (1–100), in torch.

    Values are mapped from the bounds to 0…255 and rounded (JPEG stores bytes), each
    channel is padded to a multiple of 8 by repeating its edges, cut into 8×8 blocks and
    level-shifted by 128; each block's DCT ``D B Dᵀ`` is divided by the quantisation
    table (:func:`quantisation_table`), rounded, multiplied back, inverted ``Dᵀ C D``,
    shifted, rounded to 0…255 and mapped back to the bounds. Quality 100 divides by 1
    (nearly the identity); low quality keeps only the coarse frequencies. Rounding has a
    zero gradient, so BPDA takes the identity (Athalye et al. 2018 do the same)."""

    name = "jpeg"
    title = "JPEG compression"
    paper = "Guo et al. 2018, Countering Adversarial Images using Input Transformations"

    quality: int = param(
        75,
        low=1,
        high=100,
        step=1,
        label="Quality",
        help="JPEG quality from 1 (coarse blocks) to 100 (almost lossless).",
    )

    def forward(self, x, lo, hi, generator=None):
        n, c, h, w = x.shape
        span = (hi - lo).clamp_min(1e-12)
        v = torch.round(((x - lo) / span).clamp(0.0, 1.0) * 255.0)
        ph, pw = (-h) % 8, (-w) % 8
        z = v.reshape(n * c, 1, h, w)
        if ph or pw:
            z = F.pad(z, (0, pw, 0, ph), mode="replicate")
        hh, ww = h + ph, w + pw
        # (N·C, H/8, W/8, 8, 8) blocks
        blocks = z.view(n * c, hh // 8, 8, ww // 8, 8).permute(0, 1, 3, 2, 4) - 128.0
        d = dct_matrix(8).to(x.device, x.dtype)
        table = quantisation_table(self.quality).to(x.device, x.dtype)
        coef = d @ blocks @ d.T
        coef = torch.round(coef / table) * table
        out = d.T @ coef @ d + 128.0
        out = out.permute(0, 1, 3, 2, 4).reshape(n * c, 1, hh, ww)[..., :h, :w]
        out = torch.round(out).clamp(0.0, 255.0).view(n, c, h, w)
        return _clip(lo + out / 255.0 * span, lo, hi)

    def short(self) -> str:
        return f"JPEG q={self.quality}"


@dataclass(frozen=True)
class GaussianNoise(Transform):
    """Additive Gaussian noise of σ (in data units: on images in [0, 1], σ = 0.1 is a
    tenth of the range), clipped to the bounds; a fresh draw at every call. The clipping
    has a zero gradient where it bites: BPDA takes the identity."""

    name = "gaussian_noise"
    title = "Gaussian noise"
    paper = "random noise as an input transform; attacked with EOT (Athalye et al. 2018)"
    random = True
    images_only = False

    sigma: float = param(
        0.1,
        low=0.01,
        high=1.0,
        step=0.01,
        label="Noise σ",
        help="Standard deviation of the noise added to every value (data units).",
    )

    def forward(self, x, lo, hi, generator=None):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return _clip(x + self.sigma * noise, lo, hi)

    def short(self) -> str:
        return f"Gaussian noise σ={self.sigma:g}"


@dataclass(frozen=True)
class RandomResizePad(Transform):
    """Shrink each image to a random size s×s with H − ``shrink`` ≤ s ≤ H (bilinear, one
    draw per image) and pad it back to H×W at a random position with the lower bound
    (Xie et al. 2018 enlarge and pad to a bigger canvas; shrinking keeps the shape the
    model takes). Done for the whole batch at once with one affine sampling grid per image.
    Differentiable for a given draw: BPDA keeps its gradient, and EOT averages over
    draws."""

    name = "resize_pad"
    title = "Random resize and pad"
    paper = "Xie et al. 2018, Mitigating Adversarial Effects Through Randomization (ICLR)"
    random = True
    bpda_note = "its own gradient for the draw (it is differentiable)"

    shrink: int = param(
        3,
        low=1,
        high=16,
        step=1,
        label="Shrink by up to (pixels)",
        help="The largest number of pixels each side may lose before the image is padded "
        "back to its size at a random position.",
    )

    def forward(self, x, lo, hi, generator=None):
        n, c, h, w = x.shape
        shrink = min(self.shrink, min(h, w) - 1)
        dev, dt = x.device, x.dtype
        cut = torch.randint(0, shrink + 1, (n,), generator=generator, device=dev)
        size_h, size_w = (h - cut).to(dt), (w - cut).to(dt)
        # the top-left corner of the shrunk image: 0 … cut
        u = torch.rand((n, 2), generator=generator, device=dev, dtype=dt)
        top = torch.floor(u[:, 0] * (cut.to(dt) + 1)).clamp(max=cut.to(dt))
        left = torch.floor(u[:, 1] * (cut.to(dt) + 1)).clamp(max=cut.to(dt))
        theta = torch.zeros((n, 2, 3), device=dev, dtype=dt)
        # output pixel i (normalised u) samples input coordinate (W/s)·u + (W − 2a)/s − 1
        theta[:, 0, 0] = w / size_w
        theta[:, 0, 2] = (w - 2.0 * left) / size_w - 1.0
        theta[:, 1, 1] = h / size_h
        theta[:, 1, 2] = (h - 2.0 * top) / size_h - 1.0
        grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
        out = F.grid_sample(
            x - lo, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return _clip(out + lo, lo, hi)

    def bpda(self, x, lo, hi, generator=None):
        return self.forward(x, lo, hi, generator)

    def short(self) -> str:
        return f"random resize-and-pad (≤{self.shrink} px)"


TRANSFORMS: dict[str, type[Transform]] = {
    t.name: t for t in (BitDepth, MedianFilter, GaussianBlur, JPEG, GaussianNoise, RandomResizePad)
}
"""Every transform declaration by name."""


def apply_chain(
    transforms: Sequence[Transform],
    x: torch.Tensor,
    *,
    bounds: Bounds | None = None,
    backward: str = "exact",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply ``transforms`` in order to the batch ``x`` (arguments as for
    :meth:`Transform.__call__`)."""
    check_backward(backward)
    for t in transforms:
        t.check_input(x)
    lo, hi = data_bounds(bounds, x)
    z = _clip(x, lo, hi)
    for t in transforms:
        z = t.bpda(z, lo, hi, generator) if backward == "bpda" else t.forward(z, lo, hi, generator)
    return z


# -- the chain as a declaration, and as a model ---------------------------------------------


@dataclass(frozen=True)
class Preprocessing(Configurable):
    """A chain of input transforms in a fixed order: bit depth → median filter → Gaussian
    blur → JPEG → a random transform (Gaussian noise, or random resize and pad). Each is
    off at 0 (``random``: ``"none"``); at least one must be on. The default, 1-bit depth
    and the 2×2 median, is Xu et al.'s (2018) MNIST squeezer.

    :meth:`wrap` puts it in front of a model (see the module notes for ``backward`` and
    ``eot``); :meth:`transforms` lists the transform declarations in order.
    """

    name = "preprocessing"
    title = "Input preprocessing"
    paper = (
        "Xu et al. 2018 (feature squeezing); Guo et al. 2018 (input transformations); "
        "Xie et al. 2018 (randomization); Athalye et al. 2018 (BPDA, EOT)"
    )

    bits: int = param(
        1,
        low=0,
        high=8,
        step=1,
        label="Bit depth (0 = off)",
        help="Bits kept per value (1: two levels, the bounds); 0 leaves the values as they are.",
    )
    median: int = param(
        2,
        choices=(0, 2, 3),
        label="Median filter (0 = off)",
        help="Window of the median filter: 2 (Xu et al.'s 2×2) or 3 (3×3); 0: no median "
        "filter. Images only.",
    )
    blur: float = param(
        0.0,
        low=0.0,
        high=5.0,
        step=0.1,
        label="Gaussian blur σ (pixels; 0 = off)",
        help="Standard deviation of a Gaussian smoothing filter in pixels; 0: no blur. "
        "Images only.",
    )
    jpeg: int = param(
        0,
        low=0,
        high=100,
        step=1,
        label="JPEG quality (0 = off)",
        help="JPEG compression at this quality (1 coarse … 100 almost lossless); 0: no "
        "JPEG. Images only.",
    )
    random: str = param(
        "none",
        choices=RANDOM,
        label="Random transform",
        help="A transform drawn afresh at every query, applied last: Gaussian noise "
        "(images and tables) or random resize-and-pad (images). Attacked with EOT.",
    )
    noise_sigma: float = param(
        0.1,
        low=0.01,
        high=1.0,
        step=0.01,
        label="Noise σ",
        help="Standard deviation of the random Gaussian noise (data units); used when the "
        "random transform is noise.",
    )
    shrink: int = param(
        3,
        low=1,
        high=16,
        step=1,
        label="Resize: shrink by up to (pixels)",
        help="How many pixels random resize-and-pad may take off each image's side; used "
        "when the random transform is resize-and-pad.",
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        label="Random seed",
        help="Seed of the random transform's draws (a sequence of queries repeats with it).",
    )

    def check(self) -> None:
        if not self.bits and not self.median and not self.blur and not self.jpeg:
            if self.random == "none":
                raise ValidationError(
                    "Choose at least one transform: a bit depth, a median window, a blur σ, "
                    "a JPEG quality or a random transform."
                )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.random != "noise":
            out.pop("noise_sigma")
        if self.random != "resize_pad":
            out.pop("shrink")
        if self.random == "none":
            out.pop("seed")
        return out

    def transforms(self) -> tuple[Transform, ...]:
        """The chain's transform declarations, in the order they are applied."""
        out: list[Transform] = []
        if self.bits:
            out.append(BitDepth(bits=self.bits))
        if self.median:
            out.append(MedianFilter(size=self.median))
        if self.blur:
            out.append(GaussianBlur(sigma=self.blur))
        if self.jpeg:
            out.append(JPEG(quality=self.jpeg))
        if self.random == "noise":
            out.append(GaussianNoise(sigma=self.noise_sigma))
        elif self.random == "resize_pad":
            out.append(RandomResizePad(shrink=self.shrink))
        return tuple(out)

    @property
    def is_random(self) -> bool:
        """Does the chain draw afresh at every query (so EOT applies)?"""
        return self.random != "none"

    @property
    def images_only(self) -> bool:
        return any(t.images_only for t in self.transforms())

    @property
    def forward_cost(self) -> float:
        return 1.0

    def describe(self) -> str:
        return " + ".join(t.short() for t in self.transforms())

    def check_modality(self, modality: str) -> None:
        """Refuse image-only transforms on tabular data, with a message that names them."""
        if modality == "image":
            return
        bad = [t.title.lower() for t in self.transforms() if t.images_only]
        if bad:
            raise ValidationError(
                f"{', '.join(bad).capitalize()} work{'s' * (len(bad) == 1)} on images only; on "
                "tabular data use bit-depth reduction or Gaussian noise (set the others off)."
            )

    def apply(
        self,
        x: torch.Tensor,
        *,
        bounds: Bounds | None = None,
        backward: str = "exact",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The chain on the batch ``x`` (see :func:`apply_chain`)."""
        return apply_chain(
            self.transforms(), x, bounds=bounds, backward=backward, generator=generator
        )

    def wrap(
        self,
        model: nn.Module,
        *,
        backward: str = "exact",
        bounds: Bounds | None = None,
        eot: int = 1,
    ) -> nn.Module:
        """``model`` behind the chain: a module whose forward is ``model(chain(x))``.

        Args:
            model: a classifier returning logits (N, C); shared, not copied.
            backward: ``"exact"`` (the naive attacker's gradients) or ``"bpda"``.
            bounds: the data bounds (``None``: 0 and 1, as for images).
            eot: for a random chain, how many draws :class:`EOT` averages the
                probabilities over (1: one draw per query, the deployed model).
        """
        if bounds is not None and torch.as_tensor(bounds[0]).dim() == 1 and self.images_only:
            self.check_modality("tabular")  # per-feature bounds of a table (images: C, H, W)
        wrapped = PreprocessedModel(
            model, self.transforms(), backward=backward, bounds=bounds, seed=self.seed
        )
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise ValidationError(f"EOT needs a whole number of draws ≥ 1, got {eot!r}.")
        if eot > 1:
            if not self.is_random:
                raise ValidationError(
                    "EOT averages over the draws of a random transform; this chain has none."
                )
            return EOT(wrapped, samples=eot)
        return wrapped


class PreprocessedModel(nn.Module):
    """A model behind input transforms: ``forward(x) = base(chain(x))``, logits (N, C).

    It lives on the base model's device (the bounds are buffers there), is always in eval
    mode (``train()`` leaves it so: the defense is never trained, and a batch-norm base
    must use its running statistics), and shares the base model. A random transform draws
    from a generator seeded by ``seed`` and a call counter, so a sequence of calls repeats
    from a fresh wrapper (:meth:`reset` starts it again).

    Args:
        base: the classifier (logits (N, C)).
        transforms: the transform declarations, applied in order.
        backward: ``"exact"`` or ``"bpda"`` (see the module notes).
        bounds: the data bounds (``None``: 0 and 1).
        seed: seed of the random draws.
    """

    def __init__(
        self,
        base: nn.Module,
        transforms: Sequence[Transform],
        *,
        backward: str = "exact",
        bounds: Bounds | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise ValidationError(
                f"Input preprocessing needs a model (an nn.Module), got {type(base).__name__}."
            )
        transforms = tuple(transforms)
        if not all(isinstance(t, Transform) for t in transforms):
            raise ValidationError("Give the transforms as Transform declarations.")
        self.base = base
        self.transforms = transforms
        self.backward = check_backward(backward)
        self.seed = int(seed)
        device = model_device(base)
        lo, hi = (0.0, 1.0) if bounds is None else bounds
        self.register_buffer("lo", torch.as_tensor(lo, dtype=torch.float32).to(device))
        self.register_buffer("hi", torch.as_tensor(hi, dtype=torch.float32).to(device))
        self.random = any(t.random for t in transforms)
        self.calls = 0
        self.train(False)

    def train(self, mode: bool = True) -> PreprocessedModel:
        """Always eval mode (see the class notes)."""
        return super().train(False)

    def reset(self) -> None:
        """Start the random draws again, as a fresh wrapper would."""
        self.calls = 0

    def extra_repr(self) -> str:
        chain = " → ".join(t.short() for t in self.transforms) or "identity"
        return f"{chain}, backward={self.backward}"

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The chain alone on ``x`` (one draw of a random transform)."""
        x = x.to(self.lo.device)
        gen = None
        if self.random:
            gen = torch.Generator(device=x.device)
            gen.manual_seed(_mix(self.seed, self.calls))
            self.calls += 1
        return apply_chain(
            self.transforms, x, bounds=(self.lo, self.hi), backward=self.backward, generator=gen
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.preprocess(x))


class EOT(nn.Module):
    """Expectation over Transformation (Athalye et al. 2018, "Synthesizing Robust
    Adversarial Examples" and "Obfuscated Gradients Give a False Sense of Security"):
    the forward pass of a random model averaged over ``samples`` draws,

        forward(x) = log( (1/k) Σ_j softmax(model_j(x)) ),   k = ``samples``,

    where each ``model_j`` is one call of the random ``model`` (a fresh draw per copy of
    each input). Its argmax is the class the draws vote for by probability, and its input
    gradient is the gradient of the expected probabilities: what an attack on a random
    defense should follow. The copies go through the model ``batch_size`` at a time; it is
    always in eval mode and on the model's device.

    Args:
        model: a random model (e.g. a :class:`PreprocessedModel` with a random transform).
        samples: draws per input.
        batch_size: inputs × draws per forward pass of the model.
    """

    def __init__(self, model: nn.Module, *, samples: int = 8, batch_size: int = 1024) -> None:
        super().__init__()
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValidationError(f"EOT needs a whole number of draws ≥ 1, got {samples!r}.")
        self.model = model
        self.samples = samples
        self.batch_size = max(1, int(batch_size))
        self.train(False)

    def train(self, mode: bool = True) -> EOT:
        return super().train(False)

    def extra_repr(self) -> str:
        return f"samples={self.samples}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.samples
        chunk = max(1, self.batch_size // k)
        outs = []
        for i in range(0, x.shape[0], chunk):
            xc = x[i : i + chunk]
            z = xc.repeat_interleave(k, dim=0)
            logp = F.log_softmax(self.model(z).float(), dim=1).view(xc.shape[0], k, -1)
            outs.append(torch.logsumexp(logp, dim=1) - math.log(k))
        if not outs:
            return self.model(x)
        return torch.cat(outs)
