"""Oracle: robustcore's TRADES loss equals the objective written from Zhang et al. (2019),
"Theoretically Principled Trade-off between Robustness and Accuracy" (the objective of
their Algorithm 1: cross-entropy plus β · KL(f(x) ‖ f(x′))), computed independently in
float64 NumPy."""

from __future__ import annotations

import numpy as np
import torch

from robustcore.defenses.training.adversarial import trades_loss


def _reference(logits_clean: np.ndarray, logits_adv: np.ndarray, y: np.ndarray, beta: float):
    """(1/n) Σᵢ [ −log pᵢ(yᵢ) + β Σₖ pᵢₖ (log pᵢₖ − log p′ᵢₖ) ], p = softmax(f(x)),
    p′ = softmax(f(x′)): the cross-entropy plus β times KL(f(x) ‖ f(x′))."""

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    lp, lq = log_softmax(logits_clean), log_softmax(logits_adv)
    natural = -lp[np.arange(len(y)), y].mean()
    kl = (np.exp(lp) * (lp - lq)).sum(axis=1).mean()
    return natural + beta * kl


def test_trades_loss_equals_the_papers_objective():
    g = torch.Generator().manual_seed(0)
    for beta in (0.0, 1.0, 6.0):
        clean = torch.randn(32, 10, generator=g) * 3
        adv = clean + torch.randn(32, 10, generator=g)
        y = torch.randint(0, 10, (32,), generator=g)
        ours = trades_loss(clean, adv, y, beta).item()
        ref = _reference(clean.double().numpy(), adv.double().numpy(), y.numpy(), beta)
        assert abs(ours - ref) < 1e-5 * max(1.0, abs(ref)), (beta, ours, ref)


def test_trades_loss_is_the_cross_entropy_when_nothing_moves():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 10, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    ce = torch.nn.functional.cross_entropy(logits, y).item()
    assert abs(trades_loss(logits, logits.clone(), y, 6.0).item() - ce) < 1e-6
