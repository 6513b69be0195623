"""Inference-time defenses that turn a model into a *defended model* every page can attack.

An inference-time defense changes what happens when the model is asked, not how it was
trained: input preprocessing (:mod:`.preprocessing`: bit-depth reduction, median filter,
Gaussian smoothing, JPEG; Xu et al. 2018, Guo et al. 2018) or randomized smoothing
(:mod:`.smoothing`: the soft smoothed classifier of Cohen et al. 2019 and Salman et al.
2019, the average of the model's probabilities over Gaussian noise). :class:`InferenceDefense`
names one with its settings; :meth:`InferenceDefense.wrap` puts it in front of a model and
gives back a module that behaves like a model (logits in, eval mode, on the model's
device), so a :class:`~robustcore.experiments.Target` carrying a defense is attacked on every
page exactly like an undefended one.

What every page's attacker then sees is the *naive* view: gradients through the defense as
written (a rounding step has zero gradient, so gradient attacks stall; that is gradient
masking, not robustness). The "Input preprocessing" and "Certified robustness" pages show
the adaptive attacks (BPDA, EOT) next to the naive ones.

    from robustcore.defenses.inference import InferenceDefense
    d = InferenceDefense.of("preprocessing", {"bits": 1, "median": 2})
    defended = d.wrap(model)          # defended(x) -> logits
    Target.zoo("small_cnn").defended_by(d)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import ValidationError
from ..params import Configurable, param

Bounds = tuple[Any, Any]

KINDS: dict[str, tuple[str, str, str]] = {
    "preprocessing": ("robustcore.defenses.preprocessing", "Preprocessing", "Input preprocessing"),
    "smoothing": ("robustcore.defenses.inference", "SoftSmoothing", "Randomized smoothing"),
}
"""Kind → (module, class, title) of the declarations an inference defense can be."""


def defense_class(kind: str) -> type[Configurable]:
    """The settings declaration of an inference-defense kind."""
    if kind not in KINDS:
        raise ValidationError(
            f"Unknown inference-time defense {kind!r}; choose one of {', '.join(KINDS)}."
        )
    module, cls, _ = KINDS[kind]
    return getattr(importlib.import_module(module), cls)


@dataclass(frozen=True)
class InferenceDefense:
    """One inference-time defense with its settings.

    Attributes:
        kind: ``"preprocessing"`` or ``"smoothing"`` (see :data:`KINDS`).
        config: the defense's settings (its declaration's instance), which must offer
            ``wrap(model)`` and ``describe()``.
    """

    kind: str
    config: Configurable

    def __post_init__(self) -> None:
        cls = defense_class(self.kind)
        if not isinstance(self.config, cls):
            raise ValidationError(
                f"A {self.kind} defense needs {cls.__name__} settings, "
                f"got {type(self.config).__name__}."
            )

    @classmethod
    def of(cls, kind: str, values: Mapping[str, Any] | None = None) -> InferenceDefense:
        """The defense ``kind`` with the settings ``values`` (defaults for the rest)."""
        return cls(kind, defense_class(kind).from_dict(dict(values or {})))

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> InferenceDefense:
        """Read back :meth:`spec`."""
        if not isinstance(spec, Mapping) or "kind" not in spec:
            raise ValidationError("An inference-defense spec needs a 'kind'.")
        values = {k: v for k, v in spec.items() if k != "kind"}
        return cls.of(str(spec["kind"]), values)

    def spec(self) -> dict[str, Any]:
        """What identifies the defense in a run spec (kind and settings)."""
        return {"kind": self.kind, **self.config.to_dict()}

    @property
    def title(self) -> str:
        return KINDS[self.kind][2]

    def describe(self) -> str:
        """The defense and its settings in a few words (labels, legends, reports)."""
        return str(self.config.describe())  # type: ignore[attr-defined]

    @property
    def forward_cost(self) -> float:
        """Forward passes of the base model per forward pass of the defended one."""
        return float(getattr(self.config, "forward_cost", 1.0))

    def wrap(self, model: nn.Module, *, bounds: Bounds | None = None) -> nn.Module:
        """``model`` behind this defense: a module that returns logits like a model.
        ``bounds`` are the data bounds (``None``: 0 and 1, as for images)."""
        wrap = self.config.wrap  # type: ignore[attr-defined]
        if "bounds" in inspect.signature(wrap).parameters:
            return wrap(model, bounds=bounds)
        return wrap(model)


@dataclass(frozen=True)
class SoftSmoothing(Configurable):
    """The soft smoothed classifier as the current model (Salman et al. 2019): each
    forward pass averages the model's probabilities over ``samples`` Gaussian noise draws
    of σ, so every page's attack is an attack with expectation over the noise. The
    certificates of Cohen et al. 2019 are on the "Certified robustness" page
    (:class:`robustcore.defenses.smoothing.Smoothing`)."""

    name = "soft_smoothing"
    title = "Randomized smoothing"

    sigma: float = param(
        0.25,
        low=0.01,
        high=2.0,
        step=0.01,
        label="Noise σ",
        help="Standard deviation of the Gaussian noise added to every input (images in "
        "[0, 1]). Train the model with input noise of the same σ, or its accuracy collapses.",
    )
    samples: int = param(
        16,
        low=1,
        high=256,
        step=1,
        label="Noise draws per query",
        help="Noisy copies each forward pass averages over; every query then costs this many "
        "forward passes of the model.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Noise seed", help="Seed of the draws.")

    @property
    def forward_cost(self) -> float:
        return float(self.samples)

    def describe(self) -> str:
        return f"smoothing σ={self.sigma:g} ({self.samples} draws)"

    def wrap(self, model: nn.Module, *, bounds: Bounds | None = None) -> nn.Module:
        from .smoothing import Smoothing

        smoothing = Smoothing(sigma=self.sigma, samples=self.samples, seed=self.seed)
        return smoothing.wrap(model, bounds=bounds)
