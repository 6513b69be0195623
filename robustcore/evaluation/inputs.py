"""Which test inputs an evaluation uses, and which of them a gallery shows."""

from __future__ import annotations

import torch

from ..data import Dataset


def select_inputs(
    dataset: Dataset, n: int, seed: int, *, exclude_class: int | None = None
) -> torch.Tensor:
    """Indices of ``n`` test inputs: a seeded random subset (optionally without one class).

    The same ``(n, seed)`` always gives the same inputs, and a smaller ``n`` gives a prefix
    of a larger one's, so runs that differ only in their size share their first inputs.
    """
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(dataset.n_test, generator=gen)
    if exclude_class is not None:
        order = order[dataset.y_test[order] != exclude_class]
    return order[:n]


def successes_first(success: torch.Tensor, k: int) -> torch.Tensor:
    """Up to ``k`` positions, those where the attack succeeded first (in input order)."""
    won = torch.nonzero(success.cpu()).flatten()
    lost = torch.nonzero(~success.cpu()).flatten()
    return torch.cat([won, lost])[:k]


def correct_inputs(
    model: torch.nn.Module,
    dataset: Dataset,
    n: int,
    seed: int,
    *,
    exclude_class: int | None = None,
) -> tuple[torch.Tensor, float]:
    """Indices of ``n`` random test inputs the model classifies correctly, and the model's
    accuracy on the candidates it looked at (for context).

    Attacks are measured on these, so that a success means a right answer turned wrong.
    """
    from ..errors import ValidationError
    from ..models.training import predict_logits

    order = select_inputs(dataset, dataset.n_test, seed, exclude_class=exclude_class)
    pool = order[: min(order.numel(), max(4 * n, 200))]
    pred = predict_logits(model, dataset.x_test[pool]).argmax(1)
    correct = pred == dataset.y_test[pool]
    chosen = pool[correct][:n]
    if chosen.numel() < n and pool.numel() < order.numel():  # a weak model: look further
        rest = order[pool.numel() :]
        pred = predict_logits(model, dataset.x_test[rest]).argmax(1)
        chosen = torch.cat([chosen, rest[pred == dataset.y_test[rest]]])[:n]
    if chosen.numel() == 0:
        raise ValidationError("The model classifies none of the test inputs correctly.")
    return chosen, float(correct.float().mean())
