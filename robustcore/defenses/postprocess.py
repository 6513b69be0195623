"""Output-postprocessing defenses: change what a prediction service returns, not the model.

A *prediction API* is any ``Callable[[torch.Tensor], torch.Tensor]`` that maps a batch of
inputs to an (N, C) float tensor of what the service returns: class probabilities, possibly
postprocessed (a label-only service returns one-hot rows). The defenses here turn the
model's probabilities into a coarser or distorted answer, to leak less to membership
inference and model stealing while keeping the top-1 label useful:

* :class:`NoDefense` – the probabilities as they are.
* :class:`Rounding` – probabilities to ``decimals`` digits (Fredrikson et al. 2015 and
  Tramèr et al. 2016 discuss rounding as a countermeasure; ART's ``Rounded``). The
  predicted class is rounded up and the others down, so the top-1 label never changes.
* :class:`TopK` – only the ``k`` largest probabilities; the rest become 0 (Shokri et al.
  2017, "restrict the prediction vector to the top k classes").
* :class:`LabelOnly` – only the predicted label, as a one-hot row (Shokri et al. 2017;
  Tramèr et al. 2016).
* :class:`ReverseSigmoid` – Lee et al. 2019, "Defending Against NN Model Stealing Attacks
  Using Deceptive Perturbations": subtract ``β·(σ(γ·logit p) − ½)`` from each probability
  and renormalise, which flattens and scrambles the small probabilities a copycat learns
  from (the top-1 label is usually, not always, kept: the clean-accuracy column shows it).
* :class:`Temperature` – softmax of ``logits / T``: ``T > 1`` softens, ``T < 1`` sharpens;
  the top-1 label never changes.

Every defense is a :class:`~robustcore.params.Configurable` declaration (its fields drive
the form, the cache key and the report), maps probabilities to answers with
``defense(probs)`` and logits to answers with ``defense.apply(logits)``. :func:`wrap` puts a
defense in front of a model and gives the prediction API an attacker gets to query::

    from robustcore.defenses.postprocess import Rounding, wrap
    api = wrap(model, Rounding(decimals=2))
    answers = api(x)          # (N, C); api.queries counts what was asked
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ValidationError
from ..params import Configurable, param

PredictionAPI = Callable[[torch.Tensor], torch.Tensor]
"""A batch of inputs → (N, C) float tensor of what the service returns."""

_TINY = 1e-45  # smallest positive float32 (denormal): log() of a returned 0 stays finite


def _check_probs(probs: torch.Tensor) -> None:
    if not isinstance(probs, torch.Tensor) or probs.ndim < 2 or probs.shape[-1] < 2:
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ValidationError(
            f"Expected an (…, N, C) tensor of class probabilities with C ≥ 2; got {shape}."
        )


@dataclass(frozen=True)
class OutputDefense(Configurable):
    """Base class: a function from the model's probabilities to what the service returns.

    Subclasses implement :meth:`__call__` (probabilities → answers); :meth:`apply` takes
    logits. ``keeps_label`` says whether the top-1 label is guaranteed to be unchanged.
    """

    keeps_label: ClassVar[bool] = True

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """The service's answer for a batch of logits (softmax, then the defense)."""
        return self(torch.softmax(logits.float(), dim=-1))

    def short(self) -> str:
        """A short label for tables and legends, e.g. ``Rounding (2 decimals)``."""
        return self.title


@dataclass(frozen=True)
class NoDefense(OutputDefense):
    """The undefended service: the model's softmax probabilities as they are."""

    name = "none"
    title = "No defense"

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        _check_probs(probs)
        return probs


@dataclass(frozen=True)
class Rounding(OutputDefense):
    """Round every probability to ``decimals`` decimal digits.

    Plain rounding to the nearest value can create a tie at the top (0.496 and 0.504 both
    become 0.5 at one decimal), which would change the label a client reads off with argmax.
    Here the predicted class is rounded *up* and every other class *down*, so the top-1
    label is exactly the model's (and the reported numbers differ from the true ones by
    less than one unit of the last digit).
    """

    name = "rounding"
    title = "Rounding"
    paper = "Fredrikson et al. 2015; Tramèr et al. 2016 (rounding confidences)"

    decimals: int = param(
        2,
        low=0,
        high=8,
        step=1,
        help="Digits kept after the decimal point (0 keeps only the label).",
    )

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        _check_probs(probs)
        scale = 10.0**self.decimals
        p = probs.double() * scale
        top = probs.argmax(dim=-1, keepdim=True)
        out = torch.floor(p)
        out.scatter_(-1, top, torch.ceil(p.gather(-1, top)))
        return (out / scale).to(probs.dtype)

    def short(self) -> str:
        return f"Rounding ({self.decimals} decimals)"


@dataclass(frozen=True)
class TopK(OutputDefense):
    """Return only the ``k`` largest probabilities; the other classes read 0."""

    name = "top_k"
    title = "Top-k"
    paper = "Shokri et al. 2017 (restricting the prediction vector to the top k classes)"

    k: int = param(
        3, low=1, high=1000, step=1, help="How many of the largest probabilities are returned."
    )

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        _check_probs(probs)
        if self.k >= probs.shape[-1]:
            return probs
        idx = probs.topk(self.k, dim=-1).indices
        out = torch.zeros_like(probs)
        return out.scatter_(-1, idx, probs.gather(-1, idx))

    def short(self) -> str:
        return f"Top-{self.k}"


@dataclass(frozen=True)
class LabelOnly(OutputDefense):
    """Return only the predicted label, as a one-hot row."""

    name = "label_only"
    title = "Label only"
    paper = "Shokri et al. 2017; Tramèr et al. 2016 (class labels only)"

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        _check_probs(probs)
        return F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)


@dataclass(frozen=True)
class ReverseSigmoid(OutputDefense):
    """Lee et al. 2019: perturb the probabilities with a reverse sigmoid, then renormalise.

    ``p' ∝ clip(p − β·(σ(γ·log(p / (1 − p))) − ½), 0, 1)``. Large β and small γ flatten the
    output more (β = 1, γ = 0.1 are the defaults of the paper's evaluation and of ART).
    Small probabilities are lifted and their order reversed, which misleads a copycat
    trained on them; the top-1 label can change when the model is unsure.
    """

    name = "reverse_sigmoid"
    title = "Reverse sigmoid"
    paper = (
        "Lee et al. 2019, Defending Against NN Model Stealing Attacks Using Deceptive Perturbations"
    )
    keeps_label = False

    beta: float = param(
        1.0,
        low=0.0,
        high=10.0,
        step=0.1,
        label="β (strength)",
        help="Size of the perturbation; 0 leaves the probabilities unchanged.",
    )
    gamma: float = param(
        0.1,
        low=0.01,
        high=10.0,
        step=0.01,
        label="γ (slope)",
        help="Slope of the sigmoid on the log-odds; smaller values flatten more.",
    )

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        _check_probs(probs)
        p = probs.double()
        clipped = p.clamp(1e-9, 1.0 - 1e-9)
        r = self.beta * (torch.sigmoid(self.gamma * torch.log(clipped / (1.0 - clipped))) - 0.5)
        q = (p - r).clamp(0.0, 1.0)
        total = q.sum(dim=-1, keepdim=True)
        uniform = torch.full_like(q, 1.0 / q.shape[-1])
        out = torch.where(total > 0, q / total.clamp_min(1e-300), uniform)
        return out.to(probs.dtype)

    def short(self) -> str:
        return f"Reverse sigmoid (β={self.beta:g}, γ={self.gamma:g})"


@dataclass(frozen=True)
class Temperature(OutputDefense):
    """Softmax with temperature: ``softmax(logits / T)``; the label never changes."""

    name = "temperature"
    title = "Temperature"
    paper = "Hinton et al. 2015 (softmax temperature)"

    temperature: float = param(
        5.0,
        low=0.01,
        high=1000.0,
        log=True,
        label="Temperature T",
        help="T > 1 flattens the probabilities, T < 1 sharpens them; T = 1 changes nothing.",
    )

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        _check_probs(probs)
        # log p = z − logsumexp(z): dividing by T and re-normalising equals softmax(z / T).
        logp = torch.log(probs.double().clamp_min(_TINY))
        return torch.softmax(logp / self.temperature, dim=-1).to(probs.dtype)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float() / self.temperature, dim=-1)

    def short(self) -> str:
        return f"Temperature (T={self.temperature:g})"


DEFENSES: dict[str, type[OutputDefense]] = {
    cls.name: cls for cls in (NoDefense, Rounding, TopK, LabelOnly, ReverseSigmoid, Temperature)
}
"""Every output defense by its ``name``."""


def make_defense(name: str, params: Mapping[str, Any] | None = None) -> OutputDefense:
    """Build a defense from its name and parameter values (validated).

    Raises:
        ValidationError: unknown name or a parameter outside its range.
    """
    cls = DEFENSES.get(name)
    if cls is None:
        raise ValidationError(
            f"Unknown output defense {name!r}; choose one of {', '.join(DEFENSES)}."
        )
    return cls.from_dict(params)


class ServiceAPI:
    """A model behind an output defense, as an attacker sees it: inputs in, answers out.

    Calling it with a batch ``x`` returns the (N, C) answers on ``x``'s device and adds N to
    :attr:`queries`. Gradients never flow through it and it exposes neither the model nor
    its logits: a black-box attacker gets the answers and nothing else.
    """

    def __init__(
        self,
        model: nn.Module,
        defense: OutputDefense | None = None,
        *,
        batch_size: int = 1024,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValidationError(f"Expected a torch model, got {type(model).__name__}.")
        if defense is not None and not isinstance(defense, OutputDefense):
            raise ValidationError(
                f"defense must be an OutputDefense (e.g. Rounding(2)), got "
                f"{type(defense).__name__}."
            )
        if int(batch_size) < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}.")
        self._model = model
        self.defense = defense if defense is not None else NoDefense()
        self.batch_size = int(batch_size)
        self.queries = 0

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        device = next((p.device for p in self._model.parameters()), torch.device("cpu"))
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], self.batch_size):
                outs.append(self._model(x[i : i + self.batch_size].to(device)).float())
        if not outs:
            return torch.zeros(0, 0)
        # Clone outside inference mode so callers may use the answers as training targets.
        return torch.cat(outs).clone()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValidationError("The prediction API expects a batch tensor (N, ...).")
        with torch.no_grad():
            out = self.defense.apply(self._logits(x))
        self.queries += int(x.shape[0])
        return out.to(x.device)

    def __repr__(self) -> str:
        return f"ServiceAPI(defense={self.defense!r}, queries={self.queries})"


def wrap(model: nn.Module, defense: OutputDefense | None = None, **kwargs: Any) -> ServiceAPI:
    """The prediction API of ``model`` behind ``defense`` (``None``: undefended probabilities).

    Keyword arguments go to :class:`ServiceAPI` (``batch_size``).
    """
    return ServiceAPI(model, defense, **kwargs)
