"""Sweeps over the attack budget ε and robust accuracy over several attacks.

``epsilon_sweep`` is DESIGN.md's contract: one row per ε with accuracy, success rate, mean
L2 and L∞ and seconds. ``robust_accuracy`` is the per-sample worst case over several
attacks: an input counts as robust only if *every* attack fails on it, which is the only
honest way to combine attacks (Carlini et al. 2019, "On Evaluating Adversarial Robustness").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion.base import UNTARGETED, AttackResult, EvasionAttack, Goal
from ..device import model_device
from ..errors import ValidationError
from ..progress import ProgressFn, scaled

SWEEP_COLUMNS = [
    "attack",
    "eps",
    "accuracy",
    "success_rate",
    "mean_l2",
    "mean_linf",
    "seconds",
    "n",
    "steps",
]


def check_eps_values(eps_values: Sequence[float]) -> list[float]:
    """Validate an ε grid: finite, non-negative numbers, sorted and de-duplicated.

    There is no upper limit: an ε beyond the data's diameter is simply unbounded (the
    sanity check's "unbounded" attack uses one).
    """
    try:
        values = [float(e) for e in eps_values]
    except (TypeError, ValueError):
        raise ValidationError("ε values must be numbers, e.g. 0, 0.05, 0.1, 0.2.") from None
    if not values:
        raise ValidationError("Give at least one ε value, e.g. 0, 0.05, 0.1, 0.2.")
    bad = [e for e in values if not (math.isfinite(e) and e >= 0.0)]
    if bad:
        raise ValidationError(f"ε values must be finite numbers ≥ 0; got {bad}.")
    return sorted(set(values))


def _clean_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    device = model_device(model)
    with torch.inference_mode():
        return model(x.to(device)).argmax(dim=1) == y.to(device)


def attack_in_batches(
    attack: EvasionAttack,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | None = None,
    norm: str | None = None,
    goal: Goal | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
) -> AttackResult:
    """Run ``attack`` over ``x`` in chunks of ``batch_size`` (all at once when ``None``)."""
    goal = goal or UNTARGETED
    n = x.shape[0]
    size = n if not batch_size or batch_size >= n else int(batch_size)
    kw = {"eps": eps, "norm": norm}
    if size <= 0 or n == 0:
        return attack.run(model, x, y, goal=goal, progress=progress, **kw)
    parts: list[AttackResult] = []
    tgt = torch.as_tensor(goal.target) if goal.target is not None else None
    for start in range(0, n, size):
        sl = slice(start, min(n, start + size))
        t = tgt[sl] if tgt is not None and tgt.dim() > 0 else goal.target
        part_goal = Goal(target=t, bounds=goal.bounds)

        sub = scaled(progress, start / n, sl.stop / n)
        parts.append(attack.run(model, x[sl], y[sl], goal=part_goal, progress=sub, **kw))
    if len(parts) == 1:
        return parts[0]
    return AttackResult(
        x_adv=torch.cat([p.x_adv for p in parts]),
        success=torch.cat([p.success for p in parts]),
        pred=torch.cat([p.pred for p in parts]),
        confidence=torch.cat([p.confidence for p in parts]),
        l2=torch.cat([p.l2 for p in parts]),
        linf=torch.cat([p.linf for p in parts]),
        seconds=sum(p.seconds for p in parts),
        steps=sum(p.steps for p in parts),
    )


def summarize(
    attack_name: str,
    eps: float,
    result: AttackResult,
    y: torch.Tensor,
    clean_correct: torch.Tensor,
    target: torch.Tensor | None,
) -> dict:
    """One sweep row from an attack result."""
    y = y.to(result.pred.device)
    clean_correct = clean_correct.to(result.pred.device)
    correct = result.pred == y
    if target is not None:
        success_rate = float((result.pred == target.to(result.pred.device)).float().mean())
    else:
        base = int(clean_correct.sum())
        fooled = int((clean_correct & ~correct).sum())
        success_rate = fooled / base if base else 0.0
    return {
        "attack": attack_name,
        "eps": float(eps),
        "accuracy": float(correct.float().mean()),
        "success_rate": success_rate,
        "mean_l2": float(result.l2.mean()),
        "mean_linf": float(result.linf.mean()),
        "seconds": float(result.seconds),
        "n": int(y.shape[0]),
        "steps": int(result.steps),
    }


def epsilon_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: EvasionAttack,
    eps_values: Sequence[float],
    *,
    norm: str = "linf",
    goal: Goal | None = None,
    batch_size: int | None = 512,
    progress: ProgressFn | None = None,
    keep_results: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[float, AttackResult]]:
    """Attack the same inputs at every ε in ``eps_values`` (in ``norm``); one row per ε.

    Columns: ``attack``, ``eps``, ``accuracy`` (fraction still classified correctly),
    ``success_rate`` (untargeted: the fraction of the inputs the model got right that the
    attack now fools; targeted: the fraction classified as the target), ``mean_l2``,
    ``mean_linf`` (of the perturbations), ``seconds``, ``n`` and ``steps``.

    With ``keep_results=True`` it also returns ``{ε: AttackResult}`` for galleries and
    per-sample analysis.
    """
    if not isinstance(attack, EvasionAttack) or not attack.budgeted:
        raise ValidationError("epsilon_sweep needs a budgeted attack such as FGSM or PGD.")
    goal = goal or UNTARGETED
    eps_list = check_eps_values(eps_values)
    clean = _clean_correct(model, x, y)
    device = model_device(model)
    tgt = None
    if goal.targeted:
        tgt = torch.as_tensor(goal.target, device=device).long().expand(y.shape[0])
    rows, results = [], {}
    for i, eps in enumerate(eps_list):
        k = len(eps_list)
        sub = scaled(progress, i / k, (i + 1) / k, f"ε={eps:g}")

        res = attack_in_batches(
            attack,
            model,
            x,
            y,
            eps=eps,
            norm=norm,
            goal=goal,
            batch_size=batch_size,
            progress=sub,
        )
        rows.append(summarize(attack.title, eps, res, y, clean, tgt))
        if keep_results:
            results[eps] = res
    df = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    return (df, results) if keep_results else df


@dataclass
class RobustAccuracy:
    """Per-sample worst case over several attacks.

    Attributes:
        accuracy: fraction of inputs that every attack failed on (and that were clean-correct).
        robust: per input, ``True`` when it survived every attack.
        per_attack: one row per attack: its own accuracy and how many inputs only it broke.
    """

    accuracy: float
    robust: torch.Tensor
    per_attack: pd.DataFrame


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Sequence[EvasionAttack] | None = None,
    *,
    eps: float | None = None,
    norm: str | None = None,
    goal: Goal | None = None,
    results: Sequence[tuple[str, AttackResult]] | None = None,
    batch_size: int | None = 512,
) -> RobustAccuracy:
    """Accuracy under the strongest of several attacks, chosen per input.

    Pass ``attacks`` to run them here at the same budget (``eps`` in ``norm``; minimum-norm
    attacks such as C&W take none), or ``results`` (name, AttackResult) already computed on
    the same inputs.
    """
    device = model_device(model)
    y = y.to(device)
    named: list[tuple[str, AttackResult]] = list(results or [])
    for atk in attacks or []:
        kw = {"eps": eps, "norm": norm} if atk.budgeted else {}
        res = attack_in_batches(atk, model, x, y, goal=goal, batch_size=batch_size, **kw)
        named.append((atk.title, res))
    if not named:
        raise ValidationError("robust_accuracy needs at least one attack or result.")
    robust = _clean_correct(model, x, y)
    broken_by = []
    for _, res in named:
        ok = res.pred.to(device) == y
        broken_by.append(~ok)
        robust = robust & ok
    rows = []
    for i, (name, res) in enumerate(named):
        others = torch.zeros_like(robust)
        for j, b in enumerate(broken_by):
            if j != i:
                others |= b
        rows.append(
            {
                "attack": name,
                "accuracy": float((res.pred.to(device) == y).float().mean()),
                "only_this_attack_broke": int((broken_by[i] & ~others).sum()),
            }
        )
    return RobustAccuracy(
        accuracy=float(robust.float().mean()), robust=robust, per_attack=pd.DataFrame(rows)
    )
