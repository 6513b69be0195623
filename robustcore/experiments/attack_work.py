"""What the white-box attacks of the scorecard and the defense pages compute, in the units
of :mod:`.estimate` (images through forward passes and input gradients).

PGD with ``early_stop`` lets each input leave at its first success, so it does as many
steps as the model makes it: an undefended model is fooled within a few, a robust one
takes them all, and which one a run meets is only known by running it. It is counted at
:data:`EARLY_STOP_SHARE` of its steps (the page defaults took 0.28 to 0.52 of them).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..attacks.evasion import PGD, CarliniWagnerL2
from .estimate import Work

EARLY_STOP_SHARE = 0.5
"""The share of its steps an early-stopped PGD is counted for."""


def pgd_work(model: str, pgd: PGD, n: int, eps_values: Iterable[float]) -> Work:
    """``pgd.run`` on ``n`` inputs at each ε: ``steps × restarts`` input gradients per
    input (nothing at ε = 0; :data:`EARLY_STOP_SHARE` of them with early stop), a scoring
    pass per restart when there are several, and the forward pass that judges the result."""
    share = EARLY_STOP_SHARE if pgd.early_stop else 1.0
    work = Work()
    for eps in eps_values:
        if eps > 0:
            scoring = n * pgd.restarts * share if pgd.restarts > 1 else 0.0
            work = work + Work.of(
                model, gradient=n * pgd.steps * pgd.restarts * share, forward=scoring
            )
        work = work + Work.of(model, forward=n)
    return work


def cw_work(model: str, cw: CarliniWagnerL2, n: int) -> Work:
    """C&W L2 on ``n`` inputs: ``binary_search_steps × max_iter`` input gradients per
    input, then the judging pass. ``abort_early`` ends a round only when the whole batch's
    loss stops falling, which the page defaults hardly ever met (99 % of the steps ran):
    every step is counted."""
    return Work.of(model, gradient=n * cw.binary_search_steps * cw.max_iter, forward=n)
