"""Shadow models and the Shokri et al. (2017) attack classifier.

Shadow models imitate the target: same architecture and training recipe, trained on data
the attacker controls, so the attacker knows exactly which examples each one saw. Here
(as in Carlini et al. 2022) the shadow models are trained on random halves of a *pool*:
the target's training examples together with its test examples. Every pool example is in
the training set of exactly half of the shadow models, so each candidate has K/2 IN and
K/2 OUT observations. Shadow models go through the model zoo, keyed on their data, so the
same pool and seed never trains twice.

Shokri et al. (2017, "Membership Inference Attacks Against Machine Learning Models")
train an *attack classifier* on the shadow models' outputs labelled IN / OUT, one per
class (``per_class``) or one for all classes (``global``), and apply it to the target's
outputs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...data.dataset import Dataset
from ...errors import ValidationError
from ...models import TrainRecipe, predict_logits
from ...models.zoo import train_entry
from ...progress import ProgressFn, split

SHOKRI_MODES: tuple[str, ...] = ("per_class", "global")
SHADOW_EXTRA: dict[str, str] = {"role": "membership shadow"}
"""The zoo ``extra`` of every shadow model (its data differ from the target's anyway)."""
_TINY = 1e-45
_MAX_ATTACK_ROWS = 40_000


def shadow_keep(pool_size: int, shadow_models: int, seed: int) -> torch.Tensor:
    """(K, P) bool: which pool examples each shadow model trains on.

    Every column has exactly ``K // 2`` True entries (each example is IN for half of the
    shadow models), drawn at random with ``seed`` (Carlini et al.'s construction).
    """
    if shadow_models < 2:
        raise ValidationError(f"Need at least 2 shadow models, got {shadow_models}.")
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.rand(shadow_models, pool_size, generator=gen).argsort(dim=0)
    return order < shadow_models // 2


def shadow_dataset(
    dataset: Dataset, pool_x: torch.Tensor, pool_y: torch.Tensor, keep_row: torch.Tensor
) -> Dataset:
    """The training set of one shadow model: the pool examples of its row of
    :func:`shadow_keep` (the test split stays the dataset's, for the zoo's logging)."""
    idx = torch.nonzero(keep_row).flatten()
    return dataclasses.replace(
        dataset,
        name=f"{dataset.name}:shadow",
        x_train=pool_x[idx],
        y_train=pool_y[idx],
        description=f"shadow training set ({idx.numel()} pool examples)",
        _fingerprint=None,
    )


def shadow_recipe(recipe: TrainRecipe) -> TrainRecipe:
    """A shadow model's recipe: the target's, on the whole of its half of the pool."""
    return recipe.replace(train_size=0)


@dataclass
class ShadowSet:
    """What the attacker learned from the shadow models about the candidates.

    Attributes:
        logits: (K, M, N, C) float32: shadow k's member-model m's logits on candidate n (M
            is 1 for a single-model target, the ensemble size for an ensemble target).
        keep: (K, P) bool, which pool examples each shadow model trained on.
        shadow_in: (K, N) bool, whether candidate n was in shadow k's training set.
        keys: zoo keys, one list of M per shadow model.
        train_size: training examples per shadow model (about P / 2).
        heldout_accuracy: (K, M) accuracy of each shadow model on the candidates it did
            not train on (the zoo's test accuracy would count pool examples it saw).
        trained: how many models were trained (the rest came from the zoo).
        seconds: wall time.
    """

    logits: torch.Tensor = field(repr=False)
    keep: torch.Tensor = field(repr=False)
    shadow_in: torch.Tensor = field(repr=False)
    keys: list[list[str]] = field(repr=False)
    train_size: int
    heldout_accuracy: torch.Tensor = field(repr=False)
    trained: int = 0
    seconds: float = 0.0
    plan: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.logits.shape[0])


def train_shadows(
    dataset: Dataset,
    pool_x: torch.Tensor,
    pool_y: torch.Tensor,
    candidates: torch.Tensor,
    plan: Sequence[tuple[str, TrainRecipe]],
    *,
    shadow_models: int,
    seed: int,
    progress: ProgressFn | None = None,
) -> ShadowSet:
    """Train ``shadow_models`` shadow models on random halves of the pool.

    Args:
        dataset: the task (its test split is only logged by the zoo during training).
        pool_x, pool_y: the pool the halves are drawn from.
        candidates: (N,) indices into the pool of the examples under attack; the shadow
            models' logits are recorded on them.
        plan: the target's (architecture, recipe) — one entry for a single model, one per
            member for an ensemble (every shadow then is an ensemble of the same make-up).
            ``train_size`` in a recipe is ignored: a shadow uses its whole half.
        shadow_models: K (even, at least 4 for the per-example LiRA variants).
        seed: draws the halves.
        progress: ``progress(fraction, message)`` per shadow model; it may raise to cancel.
    """
    if not plan:
        raise ValidationError("The shadow plan needs at least one (architecture, recipe).")
    t0 = time.perf_counter()
    keep = shadow_keep(int(pool_x.shape[0]), shadow_models, seed)
    x_cand = pool_x[candidates]
    logits, keys = [], []
    trained = 0
    labels = [
        f"shadow model {k + 1}/{shadow_models}"
        + (f", member {m + 1}/{len(plan)}" if len(plan) > 1 else "")
        for k in range(shadow_models)
        for m in range(len(plan))
    ]
    parts = split(progress, dict.fromkeys(labels, 1.0))
    for k in range(shadow_models):
        shadow_ds = shadow_dataset(dataset, pool_x, pool_y, keep[k])
        per_member, member_keys = [], []
        for m, (arch, recipe) in enumerate(plan):
            part = parts[k * len(plan) + m]
            entry = train_entry(
                arch,
                shadow_ds,
                shadow_recipe(recipe),
                extra=SHADOW_EXTRA,
                progress=part,
            )
            trained += int(not entry.from_cache)
            per_member.append(predict_logits(entry.model, x_cand))
            member_keys.append(entry.key)
            if part is not None:
                part(1.0, "ready")
        logits.append(torch.stack(per_member))
        keys.append(member_keys)
    stacked = torch.stack(logits)  # (K, M, N, C)
    shadow_in = keep[:, candidates]
    correct = (stacked.argmax(-1) == pool_y[candidates]).float()  # (K, M, N)
    out = (~shadow_in).float()[:, None, :]
    heldout = (correct * out).sum(-1) / out.sum(-1).clamp_min(1)
    return ShadowSet(
        logits=stacked,
        keep=keep,
        shadow_in=shadow_in,
        keys=keys,
        train_size=int(keep[0].sum()),
        heldout_accuracy=heldout,
        trained=trained,
        seconds=time.perf_counter() - t0,
        plan=[(a, r.to_dict()) for a, r in plan],
    )


def _features(answers: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    """Attack-classifier inputs from (…, N, C) answers: log-probabilities (per class: the
    whole vector; global: the sorted vector plus the true class's)."""
    logp = torch.log(answers.float().clamp(_TINY, 1.0))
    if mode == "per_class":
        return logp
    idx = y.long().expand(logp.shape[:-1]).unsqueeze(-1)
    sorted_logp = logp.sort(dim=-1, descending=True).values
    return torch.cat([sorted_logp, logp.gather(-1, idx)], dim=-1)


def shokri_scores(
    shadow_answers: torch.Tensor,
    shadow_in: torch.Tensor,
    target_answers: torch.Tensor,
    y: torch.Tensor,
    *,
    mode: str = "per_class",
    hidden: int = 32,
    steps: int = 300,
    lr: float = 1e-2,
    seed: int = 0,
) -> torch.Tensor:
    """Shokri et al. (2017): train an attack classifier on the shadow models' answers.

    Args:
        shadow_answers: (K, N, C) what each shadow model's service answered on the
            candidates (after the same postprocessing as the target).
        shadow_in: (K, N) bool IN/OUT labels of those answers.
        target_answers: (N, C) the target service's answers on the candidates.
        y: (N,) true labels of the candidates.
        mode: ``per_class`` (one classifier per true class, as in the paper) or ``global``.
        hidden, steps, lr: the attack MLP (one hidden layer) and its full-batch Adam
            training.
        seed: initialisation and the subsample of rows (at most 40,000) used to train.

    Returns:
        (N,) float64 membership scores (the attack classifier's logit).
    """
    if mode not in SHOKRI_MODES:
        raise ValidationError(f"Unknown Shokri mode {mode!r}; choose {' or '.join(SHOKRI_MODES)}.")
    k, n, c = shadow_answers.shape
    feats = _features(shadow_answers, y, mode).reshape(k * n, -1)
    labels = shadow_in.reshape(-1).float()
    groups = (y.long().expand(k, n) if mode == "per_class" else torch.zeros(k, n).long()).reshape(
        -1
    )
    gen = torch.Generator().manual_seed(int(seed))
    if feats.shape[0] > _MAX_ATTACK_ROWS:
        rows = torch.randperm(feats.shape[0], generator=gen)[:_MAX_ATTACK_ROWS]
        feats, labels, groups = feats[rows], labels[rows], groups[rows]
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
    feats = (feats - mean) / std
    n_groups = c if mode == "per_class" else 1
    d = feats.shape[1]
    # Rows grouped by class and padded into one (groups, rows, features) batch, so every
    # group's classifier trains in the same batched matmul.
    counts = torch.bincount(groups, minlength=n_groups)
    width = max(1, int(counts.max()))
    order = torch.argsort(groups, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(order.numel()) - starts[groups[order]]
    x_pad = torch.zeros(n_groups, width, d)
    y_pad = torch.zeros(n_groups, width)
    mask = torch.zeros(n_groups, width)
    x_pad[groups[order], slot] = feats[order]
    y_pad[groups[order], slot] = labels[order]
    mask[groups[order], slot] = 1.0
    w1 = (torch.randn(n_groups, d, hidden, generator=gen) / d**0.5).requires_grad_()
    b1 = torch.zeros(n_groups, 1, hidden, requires_grad=True)
    w2 = (torch.randn(n_groups, hidden, 1, generator=gen) / hidden**0.5).requires_grad_()
    b2 = torch.zeros(n_groups, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=lr, weight_decay=1e-4)
    with torch.enable_grad():
        for _ in range(steps):
            out = (torch.relu(torch.bmm(x_pad, w1) + b1).bmm(w2) + b2).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(out, y_pad, weight=mask, reduction="sum")
            opt.zero_grad(set_to_none=True)
            (loss / mask.sum()).backward()
            opt.step()
    target_feats = (_features(target_answers, y, mode) - mean) / std
    g = y.long() if mode == "per_class" else torch.zeros(n).long()
    with torch.no_grad():
        h = torch.relu(torch.einsum("nd,ndh->nh", target_feats, w1[g]) + b1[g, 0])
        return (torch.einsum("nh,nh->n", h, w2[g, :, 0]) + b2[g, 0, 0]).double()
