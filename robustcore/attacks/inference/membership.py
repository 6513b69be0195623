"""Membership inference: was this example in the model's training set?

The attacks run against the target's *real* split: members are examples the target was
trained on, non-members are test examples it never saw, the same number of each (drawn
with a seed). Each attack scores every candidate (higher = "member"); the scores are judged
by their ROC curve, AUC, balanced accuracy, membership advantage and TPR at 0.1 % and 1 %
FPR (:mod:`robustcore.attacks.inference.metrics`).

Attacks, weakest assumptions first:

* ``loss`` – Yeom et al. 2018 ("Privacy Risk in Machine Learning: Analyzing the Connection
  to Overfitting"): members have low loss. Score ``−CE(p, y)``; needs the true label.
* ``confidence`` – the top-class probability (Salem et al. 2019, "ML-Leaks"; Yeom et al.'s
  threshold on confidence); needs no label.
* ``shokri`` – Shokri et al. 2017: an attack classifier trained on shadow models' outputs.
* ``lira_*`` – Carlini et al. 2022 (LiRA): per-example Gaussian likelihood ratio from IN and
  OUT shadow models, online / offline, per-example / fixed variance (:mod:`.lira`).

The attacker queries a *prediction API* (see :mod:`robustcore.defenses.postprocess`): with
an output defense in place, the target's and the shadow models' answers both go through
it (the attacker knows the service's postprocessing), so the evaluation is adaptive.

Example::

    from robustcore.attacks.inference import MembershipInference, membership_inference
    from robustcore.data import load
    from robustcore.models import TrainRecipe, train_entry

    ds = load("mnist5k")
    recipe = TrainRecipe(epochs=40, train_size=500)          # deliberately overfit
    target = train_entry("mlp", ds, recipe).model
    res = membership_inference(target, ds, MembershipInference(shadow_models=8),
                               arch="mlp", recipe=recipe)
    res.metrics   # one row per attack: auc, advantage, tpr@0.1%fpr, ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...data.dataset import Dataset
from ...defenses.postprocess import NoDefense, OutputDefense
from ...errors import ValidationError
from ...models import TrainRecipe, predict_logits
from ...params import Configurable, param
from ...progress import ProgressFn, split
from .lira import LIRA_VARIANTS, lira_scores, logit_confidence
from .metrics import membership_metrics, roc_table
from .shadow import SHOKRI_MODES, ShadowSet, shokri_scores, train_shadows

ATTACKS: dict[str, str] = {
    "loss": "Loss threshold (Yeom et al. 2018)",
    "confidence": "Confidence threshold (Salem et al. 2019)",
    "shokri": "Shadow attack classifier (Shokri et al. 2017)",
    "lira_online": "LiRA online (Carlini et al. 2022)",
    "lira_online_fixed": "LiRA online, fixed variance",
    "lira_offline": "LiRA offline",
    "lira_offline_fixed": "LiRA offline, fixed variance",
}
"""Every attack by key, with its display name."""

THRESHOLD_ATTACKS: tuple[str, ...] = ("loss", "confidence")
SHADOW_ATTACKS: tuple[str, ...] = ("shokri", *LIRA_VARIANTS)
_TINY = 1e-45


@dataclass(frozen=True)
class MembershipInference(Configurable):
    """Which membership attacks to run and how many shadow models to train."""

    name = "membership_inference"
    title = "Membership inference"
    paper = (
        "Yeom et al. 2018; Shokri et al. 2017; Carlini et al. 2022, Membership Inference "
        "Attacks From First Principles (LiRA)"
    )

    attacks: str = param(
        "all",
        choices=("all", "threshold"),
        help="all: loss and confidence thresholds, the Shokri attack classifier and LiRA "
        "(trains shadow models); threshold: only the two thresholds (no training, instant).",
    )
    shadow_models: int = param(
        8,
        low=4,
        high=256,
        step=2,
        label="Shadow models (K)",
        help="Models trained like the target on random halves of its data; each candidate "
        "is IN for K/2 of them. More give LiRA better per-example statistics (the paper "
        "uses up to 256); cost grows linearly.",
    )
    max_examples: int = param(
        1000,
        low=10,
        high=100_000,
        step=10,
        label="Candidates per side",
        help="At most this many members and as many non-members are attacked (the smaller "
        "of the target's training and test sets caps it). The lowest measurable FPR is "
        "1 / this number.",
    )
    shokri_mode: str = param(
        "per_class",
        choices=SHOKRI_MODES,
        label="Shokri attack model",
        help="per_class: one attack classifier per true class (as in the paper); global: one "
        "for all classes.",
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        step=1,
        help="Draws the candidates and the shadow models' halves and seeds the attack model.",
    )

    def check(self) -> None:
        if self.shadow_models % 2:
            raise ValidationError(
                f"Shadow models must be an even number (each example is IN for exactly "
                f"half of them); got {self.shadow_models}."
            )

    def attack_names(self) -> list[str]:
        return list(THRESHOLD_ATTACKS) + (list(SHADOW_ATTACKS) if self.attacks == "all" else [])


@dataclass
class MembershipSplit:
    """The candidates under attack and the pool shadow models are drawn from.

    The pool holds the candidates first, then (when the target trained on more examples
    than there are candidate members) further training and test examples, so that a
    shadow model, trained on half of the pool, sees about as many examples as the target
    did: ``len(pool) ≈ 2 × n_target_train`` where the data allows it.

    Attributes:
        x, y: the 2n candidates (members first, then non-members).
        is_member: (2n,) bool.
        member_index: indices into ``dataset.x_train`` of the member candidates.
        nonmember_index: indices into ``dataset.x_test`` of the non-member candidates.
        pool_x, pool_y: the examples shadow models are trained on (halves of it).
        candidates: (2n,) indices of the candidates in the pool (``0 .. 2n−1``).
        n_target_train: how many training examples the target used (the first ones).
    """

    x: torch.Tensor
    y: torch.Tensor
    is_member: torch.Tensor
    member_index: torch.Tensor
    nonmember_index: torch.Tensor
    pool_x: torch.Tensor = field(repr=False)
    pool_y: torch.Tensor = field(repr=False)
    candidates: torch.Tensor = field(repr=False)
    n_target_train: int = 0

    @property
    def per_side(self) -> int:
        return int(self.member_index.numel())


def membership_split(
    dataset: Dataset, *, train_size: int = 0, max_per_side: int = 1000, seed: int = 0
) -> MembershipSplit:
    """Balanced members / non-members of a target trained on ``dataset``.

    Args:
        dataset: the target's data.
        train_size: how many of the first training examples the target used (0 = all, as
            in :class:`~robustcore.models.TrainRecipe`).
        max_per_side: at most this many candidates of each kind.
        seed: draws the candidates and the pool's extra examples.
    """
    if int(max_per_side) < 1:
        raise ValidationError(f"max_per_side must be at least 1, got {max_per_side}.")
    n_train = dataset.n_train
    if train_size and 0 < train_size < n_train:
        n_train = int(train_size)
    per_side = min(n_train, dataset.n_test, int(max_per_side))
    if per_side < 2:
        raise ValidationError(
            f"Membership inference needs at least 2 training and 2 test examples; "
            f"{dataset.name} gives {n_train} and {dataset.n_test}."
        )
    gen = torch.Generator().manual_seed(int(seed))
    train_order = torch.randperm(n_train, generator=gen)
    test_order = torch.randperm(dataset.n_test, generator=gen)
    members = train_order[:per_side].sort().values
    nonmembers = test_order[:per_side].sort().values
    # Everything else the attacker may use to fill the pool up to twice the target's size.
    rest_x = torch.cat(
        [dataset.x_train[train_order[per_side:]], dataset.x_test[test_order[per_side:]]]
    )
    rest_y = torch.cat(
        [dataset.y_train[train_order[per_side:]], dataset.y_test[test_order[per_side:]]]
    )
    extra = torch.randperm(rest_x.shape[0], generator=gen)[: max(0, 2 * n_train - 2 * per_side)]
    x = torch.cat([dataset.x_train[members], dataset.x_test[nonmembers]])
    y = torch.cat([dataset.y_train[members], dataset.y_test[nonmembers]])
    return MembershipSplit(
        x=x,
        y=y,
        is_member=torch.cat([torch.ones(per_side), torch.zeros(per_side)]).bool(),
        member_index=members,
        nonmember_index=nonmembers,
        pool_x=torch.cat([x, rest_x[extra]]),
        pool_y=torch.cat([y, rest_y[extra]]),
        candidates=torch.arange(2 * per_side),
        n_target_train=n_train,
    )


def loss_scores(answers: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Yeom et al.: ``−CE(answer, y)`` per row (higher = lower loss = member), float64."""
    p_y = answers.double().gather(1, y.long().view(-1, 1)).squeeze(1)
    return torch.log(p_y.clamp(_TINY, 1.0))


def confidence_scores(answers: torch.Tensor) -> torch.Tensor:
    """The top answer per row (label-free confidence attack), float64."""
    return answers.double().max(dim=1).values


def attack_scores(
    target_answers: torch.Tensor,
    y: torch.Tensor,
    *,
    shadow_answers: torch.Tensor | None = None,
    shadow_in: torch.Tensor | None = None,
    shokri_mode: str = "per_class",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Membership scores of every attack the inputs allow.

    Args:
        target_answers: (N, C) what the target service answered on the candidates.
        y: (N,) their true labels.
        shadow_answers: (K, N, C) what each shadow model's service answered on them
            (``None``: only the threshold attacks).
        shadow_in: (K, N) bool, which candidates each shadow model trained on.
        shokri_mode, seed: see :func:`~.shadow.shokri_scores`.

    Returns:
        attack key → (N,) float64 scores (higher = member).
    """
    y = y.cpu()
    target_answers = target_answers.detach().cpu()
    scores = {
        "loss": loss_scores(target_answers, y),
        "confidence": confidence_scores(target_answers),
    }
    if shadow_answers is not None:
        if shadow_in is None:
            raise ValidationError("shadow_answers need shadow_in (which candidates were IN).")
        shadow_answers = shadow_answers.detach().cpu()
        shadow_in = shadow_in.cpu().bool()
        scores["shokri"] = shokri_scores(
            shadow_answers, shadow_in, target_answers, y, mode=shokri_mode, seed=seed
        )
        scores.update(
            lira_scores(
                logit_confidence(target_answers, y), logit_confidence(shadow_answers, y), shadow_in
            )
        )
    return {k: v.numpy().astype(np.float64) for k, v in scores.items()}


def evaluate_attacks(
    scores: dict[str, np.ndarray], is_member
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """One metrics row per attack, and each attack's (thinned) ROC curve."""
    rows, curves = [], {}
    for key, s in scores.items():
        rows.append(
            {"attack": key, "name": ATTACKS.get(key, key), **membership_metrics(s, is_member)}
        )
        curves[key] = roc_table(s, is_member)
    return pd.DataFrame(rows), curves


@dataclass
class MembershipResult:
    """What :func:`membership_inference` returns.

    Attributes:
        metrics: one row per attack (``attack``, ``name``, ``auc``, ``balanced_accuracy``,
            ``advantage``, ``tpr@0.1%fpr``, ``tpr@1%fpr``, ``n_members``, ``n_nonmembers``,
            ``fp_allowed@0.1%``, ``fp_allowed@1%``).
        roc: attack → DataFrame(fpr, tpr).
        scores: attack → (2n,) scores; ``is_member`` says which candidates are members.
        split: the candidates and the pool.
        shadows: the shadow models' record (``None`` for threshold attacks only).
        target: the target's train and test accuracy through the (defended) service.
        seconds: wall time.
    """

    metrics: pd.DataFrame
    roc: dict[str, pd.DataFrame] = field(repr=False)
    scores: dict[str, np.ndarray] = field(repr=False)
    is_member: np.ndarray = field(repr=False)
    split: MembershipSplit = field(repr=False)
    shadows: ShadowSet | None
    target: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def membership_inference(
    model: nn.Module,
    dataset: Dataset,
    config: MembershipInference | None = None,
    *,
    arch: str | None = None,
    recipe: TrainRecipe | None = None,
    defense: OutputDefense | None = None,
    progress: ProgressFn | None = None,
) -> MembershipResult:
    """Attack a single model's membership through its prediction API.

    Args:
        model: the target (outputs logits).
        dataset: its data; members are its first ``recipe.train_size`` training examples
            (all when 0), non-members its test examples.
        config: which attacks, how many shadow models, candidates per side, seed.
        arch, recipe: how the target was trained; shadow models copy them. Required for
            the shadow attacks (``config.attacks == "all"``); ``recipe`` also says how many
            training examples were members.
        defense: an output-postprocessing defense in front of the target (and, since the
            attacker knows it, in front of every shadow model too).
        progress: ``progress(fraction, message)``; it may raise to cancel.
    """
    t0 = time.perf_counter()
    config = config if config is not None else MembershipInference()
    recipe = recipe if recipe is not None else TrainRecipe()
    defense = defense if defense is not None else NoDefense()
    if config.attacks == "all" and arch is None:
        raise ValidationError(
            "The shadow-model attacks need the target's architecture and recipe (arch=...); "
            "use attacks='threshold' for a model of unknown make."
        )
    query, shadow_part, scoring = split(
        progress, [0.03, 0.9 if config.attacks == "all" else 0.0, 0.07]
    )
    cands = membership_split(
        dataset, train_size=recipe.train_size, max_per_side=config.max_examples, seed=config.seed
    )
    if query is not None:
        query(0.5, f"querying the target on {2 * cands.per_side:,} candidates")
    target_logits = predict_logits(model, cands.x)
    answers = defense.apply(target_logits)
    shadows = None
    shadow_answers = None
    if config.attacks == "all":
        shadows = train_shadows(
            dataset,
            cands.pool_x,
            cands.pool_y,
            cands.candidates,
            [(arch, recipe)],
            shadow_models=config.shadow_models,
            seed=config.seed,
            progress=shadow_part,
        )
        shadow_answers = defense.apply(shadows.logits[:, 0])
    if scoring is not None:
        scoring(0.0, "scoring the attacks")
    scores = attack_scores(
        answers,
        cands.y,
        shadow_answers=shadow_answers,
        shadow_in=shadows.shadow_in if shadows is not None else None,
        shokri_mode=config.shokri_mode,
        seed=config.seed,
    )
    is_member = cands.is_member.numpy()
    metrics, roc = evaluate_attacks(scores, is_member)
    pred = answers.argmax(1)
    target = {
        "member_accuracy": float(
            (pred[cands.is_member] == cands.y[cands.is_member]).float().mean()
        ),
        "nonmember_accuracy": float(
            (pred[~cands.is_member] == cands.y[~cands.is_member]).float().mean()
        ),
    }
    if scoring is not None:
        scoring(1.0, "done")
    return MembershipResult(
        metrics=metrics,
        roc=roc,
        scores=scores,
        is_member=is_member,
        split=cands,
        shadows=shadows,
        target=target,
        seconds=time.perf_counter() - t0,
    )
