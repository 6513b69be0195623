"""Adversarial training: the attacks run inside the training loop, and the losses.

* **FGSM-RS** (Wong, Rice & Kolter 2020, "Fast is better than free"): one FGSM step of
  1.25 ε from a uniformly random start in the ε-ball. Cheap (two passes per batch) but
  prone to *catastrophic overfitting*: robustness to PGD can vanish within an epoch, which
  the watchdog (:mod:`.monitor`) catches.
* **PGD-AT** (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial
  Attacks"): train on PGD examples (``adv_steps`` steps of ``adv_step_size`` × ε, random
  start); ``adv_share`` of each batch is adversarial, the rest clean.
* **TRADES** (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness
  and Accuracy"): minimise CE(f(x), y) + β · KL(f(x) ‖ f(x′)), where x′ maximises the KL
  term inside the ε-ball (PGD on the KL, started at x + 0.001·N(0, 1)).

The inner attacks run with the model in eval mode (no batch-norm statistics are updated by
attack passes) and take gradients with respect to the input only; everything stays on the
device. The ε warm-up grows the training ε linearly over the first ``eps_warmup`` epochs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...data.dataset import Dataset
from ...models.training import TrainRecipe

TRADES_INIT_STD = 0.001
"""Zhang et al.'s start of the inner maximisation: x + 0.001 · N(0, 1)."""


def epsilon_schedule(recipe: TrainRecipe, epoch: int) -> float:
    """The training ε in ``epoch`` (1-based): linear warm-up to ``adv_eps`` over the first
    ``eps_warmup`` epochs (epoch k of W trains at k/W · ε), then ``adv_eps``."""
    if recipe.eps_warmup <= 0 or epoch >= recipe.eps_warmup:
        return recipe.adv_eps
    return recipe.adv_eps * epoch / recipe.eps_warmup


def step_multiple(recipe: TrainRecipe) -> float:
    """The inner step as a multiple of ε: the recipe's, or 1.25 (FGSM-RS), 2.5 / steps."""
    if recipe.adv_step_size > 0:
        return recipe.adv_step_size
    return 1.25 if recipe.method == "fgsm_rs" else 2.5 / recipe.adv_steps


def _clip(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(x, hi), lo)


def _input_grad(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, x)
    return g


def _signed_step(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    g: torch.Tensor,
    *,
    alpha: float,
    eps: float,
    lo: torch.Tensor,
    hi: torch.Tensor,
) -> torch.Tensor:
    """``x_adv`` moved by ``alpha`` along the gradient's sign, projected into the L∞ ε-ball
    around ``x`` and the data bounds."""
    return _clip(x + (x_adv.detach() + alpha * g.sign() - x).clamp(-eps, eps), lo, hi)


def fgsm_rs_examples(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    lo: torch.Tensor,
    hi: torch.Tensor,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One FGSM step of size ``alpha`` from a uniform random start in the L∞ ε-ball,
    projected back into the ball and the data bounds (Wong et al. 2020, Algorithm 3): PGD
    with one step."""
    return pgd_examples(
        model, x, y, eps=eps, alpha=alpha, steps=1, lo=lo, hi=hi,
        random_start=random_start, generator=generator,
    )  # fmt: skip


def pgd_examples(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L∞ PGD on the cross-entropy (Madry et al. 2018): ``steps`` signed-gradient steps of
    ``alpha``, each projected into the ε-ball and the data bounds."""
    if random_start:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = _clip(x + (2 * u - 1) * eps, lo, hi)
    else:
        x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model(x_adv), y)
            g = _input_grad(loss, x_adv)
        x_adv = _signed_step(x, x_adv, g, alpha=alpha, eps=eps, lo=lo, hi=hi)
    return x_adv.detach()


def trades_examples(
    model: nn.Module,
    x: torch.Tensor,
    p_clean: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TRADES' inner maximisation: PGD on KL(f(x) ‖ f(x′)) from x + 0.001·N(0, 1)
    (``p_clean`` are the clean softmax probabilities, computed once)."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_adv = _clip(x + TRADES_INIT_STD * noise, lo, hi)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            log_p_adv = F.log_softmax(model(x_adv), dim=1)
            loss = F.kl_div(log_p_adv, p_clean, reduction="sum")
            g = _input_grad(loss, x_adv)
        x_adv = _signed_step(x, x_adv, g, alpha=alpha, eps=eps, lo=lo, hi=hi)
    return x_adv.detach()


def trades_loss(
    logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float
) -> torch.Tensor:
    """Zhang et al.'s objective on one batch: CE(f(x), y) + β · KL(f(x) ‖ f(x′)), the KL
    summed over classes and averaged over the batch (their ``batchmean``)."""
    natural = F.cross_entropy(logits_clean, y)
    robust = F.kl_div(
        F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean"
    )
    return natural + beta * robust


class AdversarialLoss:
    """The training loss of FGSM-RS, PGD-AT or TRADES for :func:`run_epochs`.

    Called as ``loss(model, x, y, epoch)`` with the model in train mode; it switches the
    model to eval mode for the inner attack and back to train mode for the loss.
    """

    def __init__(self, recipe: TrainRecipe, dataset: Dataset, device: torch.device) -> None:
        self.recipe = recipe
        self.lo, self.hi = (b.to(device) for b in dataset.bounds)
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(recipe.seed + 7919)
        self.multiple = step_multiple(recipe)

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.recipe
        eps = epsilon_schedule(r, epoch)
        alpha = self.multiple * eps
        if r.method == "trades":
            # The clean forward pass of the loss is made first and its probabilities
            # (detached) start the inner maximisation: one pass fewer than computing them
            # again in eval mode (the same numbers for models without batch norm).
            model.train()
            clean = model(x)
            model.eval()
            x_adv = trades_examples(
                model, x, F.softmax(clean.detach(), dim=1), eps=eps, alpha=alpha,
                steps=r.adv_steps, lo=self.lo, hi=self.hi, generator=self.gen,
            )  # fmt: skip
            model.train()
            adv = model(x_adv)
            return trades_loss(clean, adv, y, r.trades_beta), adv, y
        model.eval()
        k = max(1, round(r.adv_share * x.shape[0]))
        xa, ya = x[:k], y[:k]
        if eps > 0:
            if r.method == "fgsm_rs":
                xa = fgsm_rs_examples(
                    model, xa, ya, eps=eps, alpha=alpha, lo=self.lo, hi=self.hi,
                    random_start=r.adv_random_start, generator=self.gen,
                )  # fmt: skip
            else:
                xa = pgd_examples(
                    model, xa, ya, eps=eps, alpha=alpha, steps=r.adv_steps, lo=self.lo,
                    hi=self.hi, random_start=r.adv_random_start, generator=self.gen,
                )  # fmt: skip
        model.train()
        xb = xa if k == x.shape[0] else torch.cat([xa, x[k:]])
        logits = model(xb)
        return F.cross_entropy(logits, y), logits, y
