"""Success against query budget: the yardstick of black-box attacks and query limits.

A black-box attack on N images reports, per image, whether it succeeded and how many
queries it had used when it did (:attr:`AttackResult.queries`; attacks stop an image at
its first success). The success rate *within a budget B* is then the fraction of images
that succeeded with at most B queries — one attack run gives the whole curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from ..errors import ValidationError


def _check(success: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.as_tensor(success).detach().cpu().bool().reshape(-1)
    q = torch.as_tensor(queries).detach().cpu().long().reshape(-1)
    if s.shape != q.shape:
        raise ValidationError(
            f"success and queries must have one entry per image: {s.numel()} vs {q.numel()}."
        )
    return s, q


def success_within(
    success: torch.Tensor,
    queries: torch.Tensor,
    budget: int,
    *,
    caught_at: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per image: did the attack succeed within ``budget`` queries (and before it was caught)?

    Args:
        success: per image, did the attack succeed at all.
        queries: per image, queries used (at the first success for successful images).
        budget: the most queries allowed per image.
        caught_at: optional per-image query number at which a detector flagged the
            attacker (0: never). A success counts only if it came *before* that query.
    """
    s, q = _check(success, queries)
    ok = s & (q <= int(budget))
    if caught_at is not None:
        c = torch.as_tensor(caught_at).detach().cpu().long().reshape(-1)
        if c.shape != q.shape:
            raise ValidationError("caught_at must have one entry per image.")
        ok &= (c == 0) | (q < c)
    return ok


def success_vs_queries(
    success: torch.Tensor,
    queries: torch.Tensor,
    budgets: Sequence[int] | None = None,
    *,
    caught_at: torch.Tensor | None = None,
    label: str = "",
) -> pd.DataFrame:
    """The success rate at each query budget, as a table (one row per budget).

    Args:
        budgets: budgets to evaluate; default: 40 points spaced logarithmically from 1 to
            the largest query count used.
        caught_at: see :func:`success_within`.
        label: written into a ``label`` column (the attack's name), for plotting several.

    Returns:
        Columns ``budget``, ``success_rate``, ``n`` and ``label``.
    """
    s, q = _check(success, queries)
    if budgets is None:
        top = max(int(q.max()) if q.numel() else 1, 1)
        budgets = sorted(
            {
                int(round(v))
                for v in torch.logspace(
                    0, torch.log10(torch.tensor(float(top))).item(), 40
                ).tolist()
            }
            | {top}
        )
    rows = []
    for b in budgets:
        if int(b) < 0:
            raise ValidationError(f"Query budgets must be ≥ 0; got {b}.")
        ok = success_within(s, q, int(b), caught_at=caught_at)
        rate = float(ok.float().mean()) if ok.numel() else 0.0
        rows.append({"budget": int(b), "success_rate": rate, "n": int(ok.numel()), "label": label})
    return pd.DataFrame(rows)
