"""How well a membership score separates members from non-members.

Every attack gives each candidate a *score* (higher = "more likely a member"). These
functions sweep a threshold over the scores:

* the ROC curve (false-positive rate, true-positive rate) with ties handled exactly,
* its area (AUC; 0.5 = guessing),
* balanced accuracy at the best threshold, ``max (TPR + 1 − FPR) / 2``,
* membership advantage, ``max (TPR − FPR)`` (Yeom et al. 2018),
* TPR at a low FPR (Carlini et al. 2022): the largest TPR among thresholds whose FPR is at
  most the level. With ``n`` non-members the smallest non-zero FPR is ``1 / n``, so a level
  below it can only be met with *no* false positive at all: :func:`fpr_resolution` says how
  many false positives a level allows, and the report shows it next to the number.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ...errors import ValidationError

FPR_LEVELS: tuple[float, ...] = (0.001, 0.01)
"""The low false-positive rates reported for every attack (0.1 % and 1 %)."""


def _as_numpy(values, dtype) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype).reshape(-1)


def roc_curve(scores, is_member) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of ``scores`` (higher = member) against the truth ``is_member``.

    Returns:
        ``(fpr, tpr, thresholds)``: one point per distinct score (a member and a
        non-member with equal scores move the curve diagonally), starting at (0, 0) with
        threshold +inf. A candidate is called a member when its score is ≥ the threshold.

    Raises:
        ValidationError: lengths differ, a score is NaN, or one class is missing.
    """
    s = _as_numpy(scores, np.float64)
    m = _as_numpy(is_member, bool)
    if s.shape != m.shape:
        raise ValidationError(f"{s.size} scores but {m.size} membership labels.")
    if np.isnan(s).any():
        raise ValidationError("Membership scores contain NaN.")
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValidationError(
            f"Need both members and non-members to draw a ROC curve; got {n_pos} members "
            f"and {n_neg} non-members."
        )
    order = np.argsort(-s, kind="mergesort")
    s, m = s[order], m[order]
    distinct = np.flatnonzero(np.diff(s)) if s.size > 1 else np.array([], dtype=int)
    ends = np.r_[distinct, s.size - 1]
    tp = np.cumsum(m)[ends]
    fp = np.cumsum(~m)[ends]
    fpr = np.r_[0.0, fp / n_neg]
    tpr = np.r_[0.0, tp / n_pos]
    thresholds = np.r_[np.inf, s[ends]]
    return fpr, tpr, thresholds


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under a ROC curve (trapezoid rule; ties count one half, as they should)."""
    return float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    """The largest TPR among the curve's points whose FPR is at most ``level``."""
    ok = fpr <= level + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def fpr_resolution(n_nonmembers: int, level: float) -> int:
    """How many false positives an FPR of ``level`` allows among ``n_nonmembers``."""
    return int(math.floor(level * n_nonmembers + 1e-9))


def membership_metrics(scores, is_member) -> dict[str, float]:
    """AUC, balanced accuracy, advantage and TPR at 0.1 % / 1 % FPR of one attack.

    Keys: ``auc``, ``balanced_accuracy``, ``advantage``, ``tpr@0.1%fpr``, ``tpr@1%fpr``,
    ``n_members``, ``n_nonmembers``, ``fp_allowed@0.1%``, ``fp_allowed@1%``.
    """
    fpr, tpr, _ = roc_curve(scores, is_member)
    m = _as_numpy(is_member, bool)
    n_neg = int((~m).sum())
    out: dict[str, float] = {
        "auc": auc(fpr, tpr),
        "balanced_accuracy": float(np.max((tpr + 1.0 - fpr) / 2.0)),
        "advantage": float(np.max(tpr - fpr)),
    }
    for level in FPR_LEVELS:
        pct = f"{level * 100:g}%"
        out[f"tpr@{pct}fpr"] = tpr_at_fpr(fpr, tpr, level)
    out["n_members"] = int(m.sum())
    out["n_nonmembers"] = n_neg
    for level in FPR_LEVELS:
        out[f"fp_allowed@{level * 100:g}%"] = fpr_resolution(n_neg, level)
    return out


def roc_table(scores, is_member, *, max_points: int = 2000) -> pd.DataFrame:
    """The ROC curve as a DataFrame (``fpr``, ``tpr``), thinned to about ``max_points``
    points for plotting. The points at low FPR (where the log-log chart looks) are all kept;
    thinning only drops points in the dense upper part of the curve."""
    fpr, tpr, _ = roc_curve(scores, is_member)
    if fpr.size > max_points:
        low = np.flatnonzero(fpr <= 0.02)
        rest = np.flatnonzero(fpr > 0.02)
        keep_rest = rest[np.linspace(0, rest.size - 1, max(2, max_points - low.size)).astype(int)]
        idx = np.unique(np.r_[low, keep_rest, fpr.size - 1])
        fpr, tpr = fpr[idx], tpr[idx]
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})
