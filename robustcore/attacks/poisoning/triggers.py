"""Backdoor triggers: a mask and a pattern stamped onto inputs.

A trigger is applied as ``x' = (1 - mask) * x + mask * pattern``, where ``mask`` and
``pattern`` have the shape of one sample. The patterns follow the papers:

* ``pixel``: one pixel set to the data's maximum (Gu et al. 2017, BadNets "single pixel").
* ``patch``: a solid ``size`` × ``size`` square at the maximum value.
* ``checkerboard``: a ``size`` × ``size`` square alternating maximum and minimum values
  (BadNets "pattern" backdoor).
* ``blend``: a fixed random-noise image mixed into the whole input with weight ``alpha``
  (Chen et al. 2017, "blended injection"); ``alpha`` is the trigger's noise level.

Squares sit one pixel away from the chosen corner (or in the centre). On tabular data a
trigger sets ``size`` features (the first ones for ``*_left`` positions, the last ones for
``*_right``, the middle ones for ``center``) to their maximum (``patch``, ``pixel``: one
feature) or alternately to their maximum and minimum (``checkerboard``); ``blend`` mixes
in a noise vector drawn within the per-feature bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import ValidationError
from ...params import Configurable, param

__all__ = ["PATTERNS", "POSITIONS", "Trigger", "TriggerStamp", "default_size"]

PATTERNS = ("pixel", "patch", "checkerboard", "blend")
POSITIONS = ("bottom_right", "bottom_left", "top_right", "top_left", "center")
MARGIN = 1


@dataclass(frozen=True)
class TriggerStamp:
    """A trigger built for one input shape: ``apply(x) = (1 - mask) * x + mask * pattern``."""

    mask: torch.Tensor
    pattern: torch.Tensor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Stamp the trigger on a batch ``x`` (N, ...) on ``x``'s device; returns a new tensor."""
        if tuple(x.shape[1:]) != tuple(self.mask.shape):
            raise ValidationError(
                f"The trigger was built for inputs of shape {tuple(self.mask.shape)}, "
                f"got a batch of shape {tuple(x.shape)}."
            )
        mask = self.mask.to(x.device, x.dtype)
        return x * (1 - mask) + self.pattern.to(x.device, x.dtype) * mask


@dataclass(frozen=True)
class Trigger(Configurable):
    """The backdoor trigger: its pattern, size, position and (for ``blend``) noise level."""

    name = "trigger"
    title = "Backdoor trigger"
    paper = "Gu et al. 2017 (BadNets); Chen et al. 2017 (blended noise trigger)"

    pattern: str = param(
        "checkerboard",
        choices=PATTERNS,
        help="pixel: one white pixel; patch: a white square; checkerboard: a black-and-white "
        "square; blend: a faint random-noise image over the whole input.",
    )
    size: int = param(
        8,
        low=1,
        high=64,
        step=1,
        label="Size (px)",
        help="Side of the square in pixels (number of features for tabular data); "
        "ignored by pixel and blend.",
    )
    position: str = param(
        "bottom_right", choices=POSITIONS, help="Where the square (or pixel) is stamped."
    )
    alpha: float = param(
        0.2,
        low=0.01,
        high=1.0,
        step=0.01,
        label="Blend α (noise level)",
        help="Only for blend: weight of the random-noise image mixed into the input "
        "(0.2 = 20 % noise, 80 % image). Smaller is harder to see and to learn.",
    )
    seed: int = param(
        0, low=0, high=2**31 - 1, step=1, help="Seed of the blend trigger's noise image."
    )

    def build(
        self, input_shape: tuple[int, ...], bounds: tuple[torch.Tensor, torch.Tensor]
    ) -> TriggerStamp:
        """The mask and pattern for inputs of ``input_shape`` within ``bounds``.

        Raises:
            ValidationError: the square does not fit the input.
        """
        lo = bounds[0].detach().cpu().float().expand(input_shape)
        hi = bounds[1].detach().cpu().float().expand(input_shape)
        if self.pattern == "blend":
            gen = torch.Generator().manual_seed(self.seed)
            noise = torch.rand(input_shape, generator=gen)
            pattern = lo + (hi - lo) * noise
            mask = torch.full(input_shape, float(self.alpha))
            return TriggerStamp(mask=mask, pattern=pattern)
        size = 1 if self.pattern == "pixel" else self.size
        mask = torch.zeros(input_shape)
        pattern = hi.clone()
        if len(input_shape) == 3:
            _, h, w = input_shape
            if size > min(h, w):
                raise ValidationError(
                    f"Trigger size {size} px does not fit {h}×{w} images: use at most {min(h, w)}."
                )
            rows = _span(h, size, self.position, ("top",), ("bottom",))
            cols = _span(w, size, self.position, ("left",), ("right",))
            mask[:, rows, cols] = 1.0
            if self.pattern == "checkerboard":
                ii = torch.arange(size).view(-1, 1)
                jj = torch.arange(size).view(1, -1)
                dark = ((ii + jj) % 2 == 1).expand(input_shape[0], size, size)
                block = pattern[:, rows, cols]
                block[dark] = lo[:, rows, cols][dark]
                pattern[:, rows, cols] = block
        else:
            (f,) = input_shape
            if size > f:
                raise ValidationError(
                    f"Trigger size {size} features does not fit data with {f} features: "
                    f"use at most {f}."
                )
            if self.position.endswith("left"):
                start = 0
            elif self.position.endswith("right"):
                start = f - size
            else:
                start = (f - size) // 2
            idx = slice(start, start + size)
            mask[idx] = 1.0
            if self.pattern == "checkerboard":
                odd = torch.arange(size) % 2 == 1
                block = pattern[idx]
                block[odd] = lo[idx][odd]
                pattern[idx] = block
        return TriggerStamp(mask=mask, pattern=pattern)

    def apply(
        self, x: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Stamp the trigger on a batch ``x`` (bounds default to [0, 1], as for images)."""
        if bounds is None:
            bounds = (torch.zeros(()), torch.ones(()))
        return self.build(tuple(x.shape[1:]), bounds).apply(x)


def default_size(input_shape: tuple[int, ...]) -> int:
    """A trigger size that suits inputs of ``input_shape``: an 8 px square on 28–32 px
    images, about a third of the side on smaller ones, a few features on tabular data."""
    if len(input_shape) == 3:
        return max(1, min(8, min(input_shape[1:]) // 3))
    return max(1, min(3, input_shape[0] // 4))


def _span(n: int, size: int, position: str, first: tuple[str, ...], last: tuple[str, ...]):
    """The slice of length ``size`` along an axis of length ``n`` for ``position``."""
    margin = MARGIN if size + MARGIN <= n else 0
    if position.startswith(first) or position.endswith(first):
        start = margin
    elif position.startswith(last) or position.endswith(last):
        start = n - size - margin
    else:
        start = (n - size) // 2
    return slice(start, start + size)
