"""The Likelihood Ratio Attack, LiRA (Carlini et al. 2022, "Membership Inference Attacks
From First Principles").

For each candidate example, shadow models trained *with* it (IN) and *without* it (OUT)
show how the model's confidence on that very example is distributed in both worlds. The
statistic is the logit-scaled confidence of the true class,
``φ = log(p_y / (1 − p_y))``, which is close to Gaussian; LiRA fits a Gaussian per example
to the IN and to the OUT values and asks how much likelier the target's observed ``φ`` is
under IN than under OUT:

* **online**: ``log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²)`` (needs IN shadows, i.e.
  shadow models trained after the candidate is known);
* **offline**: a one-sided test against OUT only, ``(φ − μ_out) / σ_out`` (monotone in
  ``Pr[Z < φ]`` for ``Z ~ N(μ_out, σ_out²)``), so shadow models can be trained in advance;
* **fixed variance**: one variance shared by all examples (pooled over the per-example
  residuals) instead of one per example — better with few shadow models, as the paper
  recommends below 64 of them.
"""

from __future__ import annotations

import math

import torch

from ...errors import ValidationError

_TINY = 1e-45
_MIN_STD = 1e-4  # floor of a fitted standard deviation (φ is in nats; ±100 is saturation)

LIRA_VARIANTS: tuple[str, ...] = (
    "lira_online",
    "lira_online_fixed",
    "lira_offline",
    "lira_offline_fixed",
)


def logit_confidence(answers: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``φ = log p_y − log Σ_{j≠y} p_j`` for each row of (…, N, C) answers, in float64.

    The sum of the other classes is computed directly (not as ``1 − p_y``, which rounds to
    0 for a confident model). Answers of 0 (label-only, top-k, abstention) are clamped to
    the smallest float32, so ``φ`` saturates near ±103.6 instead of becoming infinite.
    """
    p = answers.double().clamp(0.0, 1.0)
    idx = y.to(p.device).long().expand(p.shape[:-1]).unsqueeze(-1)
    p_y = p.gather(-1, idx).squeeze(-1)
    rest = p.sum(-1) - p_y
    return torch.log(p_y.clamp_min(_TINY)) - torch.log(rest.clamp_min(_TINY))


def _masked_mean_std(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean and (population) std of ``values`` (K, N) over rows where ``mask``."""
    w = mask.double()
    n = w.sum(0)
    mean = (values * w).sum(0) / n.clamp_min(1)
    var = (((values - mean) ** 2) * w).sum(0) / n.clamp_min(1)
    return mean, var.sqrt()


def _pooled_std(values: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    w = mask.double()
    return ((((values - mean) ** 2) * w).sum() / w.sum().clamp_min(1)).sqrt()


def _log_normal(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)


def lira_scores(
    target_phi: torch.Tensor, shadow_phi: torch.Tensor, shadow_in: torch.Tensor
) -> dict[str, torch.Tensor]:
    """LiRA membership scores (higher = member) in its four variants.

    Args:
        target_phi: (N,) the target's logit-scaled confidence on each candidate.
        shadow_phi: (K, N) the same statistic from each shadow model.
        shadow_in: (K, N) bool, whether candidate n was in shadow k's training set. Every
            candidate needs at least two IN and two OUT shadow models.

    Returns:
        ``{"lira_online", "lira_online_fixed", "lira_offline", "lira_offline_fixed"}`` →
        (N,) float64 scores.
    """
    if shadow_phi.shape != shadow_in.shape or shadow_phi.ndim != 2:
        raise ValidationError(
            f"shadow_phi {tuple(shadow_phi.shape)} and shadow_in {tuple(shadow_in.shape)} "
            "must both be (shadow models, candidates)."
        )
    if target_phi.shape != shadow_phi.shape[1:]:
        raise ValidationError(
            f"{target_phi.shape[0]} target statistics for {shadow_phi.shape[1]} candidates."
        )
    shadow_in = shadow_in.bool()
    n_in, n_out = shadow_in.sum(0), (~shadow_in).sum(0)
    if int(n_in.min()) < 2 or int(n_out.min()) < 2:
        raise ValidationError(
            "LiRA needs at least 2 IN and 2 OUT shadow models per candidate; got as few as "
            f"{int(n_in.min())} IN and {int(n_out.min())} OUT. Train at least 4 shadow models."
        )
    phi = shadow_phi.double()
    x = target_phi.double()
    mu_in, sd_in = _masked_mean_std(phi, shadow_in)
    mu_out, sd_out = _masked_mean_std(phi, ~shadow_in)
    sd_in, sd_out = sd_in.clamp_min(_MIN_STD), sd_out.clamp_min(_MIN_STD)
    g_in = _pooled_std(phi, shadow_in, mu_in).clamp_min(_MIN_STD)
    g_out = _pooled_std(phi, ~shadow_in, mu_out).clamp_min(_MIN_STD)
    return {
        "lira_online": _log_normal(x, mu_in, sd_in) - _log_normal(x, mu_out, sd_out),
        "lira_online_fixed": _log_normal(x, mu_in, g_in) - _log_normal(x, mu_out, g_out),
        "lira_offline": (x - mu_out) / sd_out,
        "lira_offline_fixed": (x - mu_out) / g_out,
    }
