"""Ensemble consensus: several independently trained models answer together.

K members (the same architecture with different seeds, or a mix of architectures) are
trained through the model zoo on the same data; the service answers with one of three
consensus rules:

* ``average`` – the mean of the members' probabilities (Dietterich 2000).
* ``vote`` – each member votes for its top class; the answer is the vote share, with the
  members' mean probability as a tie-breaker: ``(votes + mean probability) / (K + 1)``, so
  its argmax is the majority class (ties go to the class with the higher mean probability).
* ``reject`` – the ``vote`` answer when at least ``min_agreement`` of the members agree
  with the majority label, otherwise the service *abstains* and returns a row of zeros.

Abstentions are counted explicitly (:func:`answer_stats`): *coverage* (share answered),
*selective accuracy* (accuracy on the answered inputs) and *accuracy with abstentions
counted as errors* (the number to compare with a single model's accuracy).

Ensembles are often proposed against adversarial examples and as a privacy measure
(Strauss et al. 2017, "Ensemble Methods as a Defense to Adversarial Perturbations";
consensus of teachers in PATE, Papernot et al. 2017, with noise); this module measures
what the plain consensus buys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..models.zoo import train_entry
from ..params import Configurable, param
from ..progress import ProgressFn, split

RULES: tuple[str, ...] = ("average", "vote", "reject")

# "mixed" ensembles skip the slow ResNet unless the target itself is one.
_SLOW = ("resnet",)


@dataclass(frozen=True)
class Ensemble(Configurable):
    """K models trained on the same data with different seeds (or architectures).

    The consensus rule is not a setting of the ensemble but of each answer
    (:meth:`EnsembleModel.answer`, :meth:`EnsembleModel.api`), so one trained ensemble is
    compared under every rule.
    """

    name = "ensemble"
    title = "Ensemble consensus"
    paper = "Dietterich 2000; Strauss et al. 2017, Ensemble Methods as a Defense"

    members: int = param(3, low=2, high=15, step=1, help="How many models answer together (K).")
    architectures: str = param(
        "same",
        choices=("same", "mixed"),
        help="same: every member uses the target's architecture (seeds differ); mixed: "
        "members cycle through the architectures that fit the data.",
    )
    min_agreement: float = param(
        1.0,
        low=0.5,
        high=1.0,
        step=0.05,
        label="Minimum agreement",
        help="Reject rule: the share of members that must give the majority label, else "
        "the service abstains (1.0 = unanimous).",
    )

    def short(self, rule: str = "average") -> str:
        """A short label for tables and legends, e.g. ``Ensemble ×3 (vote)``."""
        text = f"Ensemble ×{self.members} ({rule}"
        if rule == "reject":
            text += f" < {self.min_agreement:.0%} agree"
        return text + ")"


def member_plan(
    dataset: Dataset, config: Ensemble, arch: str, recipe: TrainRecipe
) -> list[tuple[str, TrainRecipe]]:
    """The (architecture, recipe) of each member: seeds ``recipe.seed + i``.

    Member 0 is exactly ``(arch, recipe)``, so an ensemble around a zoo model reuses it.
    """
    if arch not in ARCHITECTURES:
        raise ValidationError(
            f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}."
        )
    if config.architectures == "same":
        archs = [arch]
    else:
        fits = compatible_architectures(dataset.modality, dataset.input_shape)
        archs = [arch] + [a for a in fits if a != arch and a not in _SLOW]
    return [
        (archs[i % len(archs)], recipe.replace(seed=recipe.seed + i)) for i in range(config.members)
    ]


def combine(member_probs: torch.Tensor, rule: str, min_agreement: float = 1.0) -> torch.Tensor:
    """The ensemble's answer from its members' probabilities.

    Args:
        member_probs: (K, N, C) probabilities of the K members.
        rule: ``average``, ``vote`` or ``reject`` (see the module docstring).
        min_agreement: for ``reject``, the share of members that must agree with the
            majority label; rows below it are all zeros (abstention).

    Returns:
        (N, C) answers.
    """
    if member_probs.ndim != 3 or member_probs.shape[0] < 1:
        raise ValidationError(
            f"Expected (members, N, C) probabilities, got shape {tuple(member_probs.shape)}."
        )
    if rule not in RULES:
        raise ValidationError(f"Unknown rule {rule!r}; choose one of {', '.join(RULES)}.")
    if not 0.0 < float(min_agreement) <= 1.0:
        raise ValidationError(f"min_agreement must be in (0, 1], got {min_agreement}.")
    k, _, c = member_probs.shape
    mean = member_probs.mean(dim=0)
    if rule == "average":
        return mean
    votes = F.one_hot(member_probs.argmax(dim=2), c).sum(dim=0).to(mean.dtype)  # (N, C)
    vote = (votes + mean) / (k + 1)
    if rule == "vote":
        return vote
    top_votes = votes.max(dim=1).values
    agree = top_votes / k >= float(min_agreement) - 1e-9
    return torch.where(agree[:, None], vote, torch.zeros_like(vote))


def abstained(answers: torch.Tensor) -> torch.Tensor:
    """True for rows where the service abstained (all zeros)."""
    return (answers <= 0).all(dim=1)


def answered_labels(answers: torch.Tensor) -> torch.Tensor:
    """The top-1 label of each answer, or −1 where the service abstained."""
    labels = answers.argmax(dim=1)
    return torch.where(abstained(answers), torch.full_like(labels, -1), labels)


def answer_stats(answers: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy of a service that may abstain.

    Returns:
        ``accuracy`` (abstentions counted as errors), ``selective_accuracy`` (on answered
        inputs only; NaN if none was answered), ``coverage`` and ``abstention_rate``.
    """
    labels = answered_labels(answers).cpu()
    y = y.cpu()
    answered = labels >= 0
    n = max(1, int(y.shape[0]))
    correct = (labels == y) & answered
    n_answered = int(answered.sum())
    return {
        "accuracy": float(correct.sum()) / n,
        "selective_accuracy": float(correct.sum()) / n_answered if n_answered else float("nan"),
        "coverage": n_answered / n,
        "abstention_rate": 1.0 - n_answered / n,
    }


@dataclass
class EnsembleModel:
    """Trained members and the rule that combines them.

    Attributes:
        members: the member models (frozen, eval mode; shared with the zoo, read-only).
        archs: their architectures.
        keys: their zoo keys.
        config: the ensemble declaration (members, architectures, agreement threshold).
        from_cache: how many members came from the zoo without training.
    """

    members: list[nn.Module]
    archs: list[str]
    keys: list[str]
    config: Ensemble
    from_cache: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def member_probs(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """(K, N, C) probabilities of every member on ``x`` (on the CPU)."""
        outs = []
        for m in self.members:
            device = next((p.device for p in m.parameters()), torch.device("cpu"))
            rows = []
            with torch.inference_mode():
                for i in range(0, x.shape[0], batch_size):
                    rows.append(torch.softmax(m(x[i : i + batch_size].to(device)).float(), 1))
            outs.append(torch.cat(rows).cpu())
        return torch.stack(outs).clone()

    def answer(self, x: torch.Tensor, rule: str = "average") -> torch.Tensor:
        """The ensemble's (N, C) answers under the consensus ``rule``."""
        return combine(self.member_probs(x), rule, self.config.min_agreement)

    def api(self, rule: str = "average") -> EnsembleAPI:
        """The prediction API of the ensemble under ``rule`` (counts queries)."""
        return EnsembleAPI(self, rule)


class EnsembleAPI:
    """An ensemble as a prediction API: a batch of inputs → (N, C) answers on its device."""

    def __init__(self, ensemble: EnsembleModel, rule: str) -> None:
        if rule not in RULES:
            raise ValidationError(f"Unknown rule {rule!r}; choose one of {', '.join(RULES)}.")
        self.ensemble = ensemble
        self.rule = rule
        self.queries = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValidationError("The prediction API expects a batch tensor (N, ...).")
        out = self.ensemble.answer(x, self.rule)
        self.queries += int(x.shape[0])
        return out.to(x.device)


def build_ensemble(
    dataset: Dataset,
    config: Ensemble | None = None,
    *,
    arch: str,
    recipe: TrainRecipe | None = None,
    progress: ProgressFn | None = None,
) -> EnsembleModel:
    """Train (or load from the zoo) the members of an ensemble on ``dataset``.

    Args:
        dataset: the training data every member sees (its test split is only logged).
        config: members, architectures, agreement threshold (default ``Ensemble()``).
        arch: the target's architecture; member 0 is ``(arch, recipe)`` itself.
        recipe: the training recipe (default ``TrainRecipe()``); member ``i`` uses seed
            ``recipe.seed + i``.
        progress: ``progress(fraction, message)``; it may raise to cancel.
    """
    config = config if config is not None else Ensemble()
    recipe = recipe if recipe is not None else TrainRecipe()
    plan = member_plan(dataset, config, arch, recipe)
    labels = [f"member {i + 1}/{len(plan)} ({a}, seed {r.seed})" for i, (a, r) in enumerate(plan)]
    parts = split(progress, dict.fromkeys(labels, 1.0))
    members, archs, keys, metrics = [], [], [], []
    cached = 0
    for (a, r), part in zip(plan, parts, strict=True):
        entry = train_entry(a, dataset, r, progress=part)
        cached += int(entry.from_cache)
        members.append(entry.model)
        archs.append(a)
        keys.append(entry.key)
        metrics.append(dict(entry.metrics))
        if part is not None:
            part(1.0, "ready")
    return EnsembleModel(members, archs, keys, config, from_cache=cached, metrics=metrics)
