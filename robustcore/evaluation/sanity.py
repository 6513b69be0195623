"""Sanity checks of an evaluation, after Carlini et al. 2019, "On Evaluating Adversarial
Robustness" (arXiv:1902.06705).

An evaluation that flatters a model is usually a broken attack, not a robust model. Each
check here looks for one of the paper's warning signs and returns a :class:`SanityCheck`
whose ``message`` the UI shows as a warning when ``status == "warn"``:

* **monotone in ε**: accuracy must not rise as the budget grows;
* **reaches chance**: with an unbounded budget (any input allowed) accuracy must fall to
  chance or below; if not, the gradients are masked or the attack is broken;
* **iterative beats single-step**: PGD must be at least as strong as FGSM at the same ε;
* **black-box not stronger than white-box**: an attack that sees only outputs (a transfer
  attack from a surrogate, say) must not beat one that sees the gradients; if it does, the
  white-box gradients are masked;
* **converged**: doubling PGD's steps, or adding restarts, must move robust accuracy by
  less than about 2 points; otherwise the reported number is not a stable upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion.base import UNTARGETED, Goal, as_bounds
from ..attacks.evasion.pgd import PGD
from ..progress import ProgressFn, scaled
from .sweeps import attack_in_batches

#: How much robust accuracy may move when PGD gets more steps or restarts (Carlini 2019).
CONVERGENCE_TOLERANCE = 0.02


@dataclass
class SanityCheck:
    """The outcome of one check: ``status`` is ``"pass"``, ``"warn"`` or ``"skip"``."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status != "warn"


def noise_tolerance(p: float, n: int, floor: float = CONVERGENCE_TOLERANCE) -> float:
    """Two standard errors of an accuracy ``p`` measured on ``n`` inputs (at least ``floor``)."""
    if n <= 0:
        return 1.0
    return max(floor, 2.0 * math.sqrt(max(p * (1 - p), 0.25 / n) / n))


def check_monotone(sweep: pd.DataFrame) -> list[SanityCheck]:
    """Accuracy non-increasing in ε for every attack in the sweep (within noise)."""
    out = []
    for name, grp in sweep.groupby("attack", sort=False):
        grp = grp.sort_values("eps")
        acc = grp["accuracy"].to_numpy()
        eps = grp["eps"].to_numpy()
        n = int(grp["n"].iloc[0])
        rises = [
            (eps[i], eps[i + 1], acc[i + 1] - acc[i])
            for i in range(len(acc) - 1)
            if acc[i + 1] - acc[i] > noise_tolerance(acc[i], n)
        ]
        if rises:
            e0, e1, d = rises[0]
            out.append(
                SanityCheck(
                    f"{name}: monotone in ε",
                    "warn",
                    f"Accuracy rises by {d:.1%} from ε={e0:g} to ε={e1:g}: a larger budget "
                    "should never help the model. The attack is not finding the worst case "
                    "(try more steps, restarts or a smaller step size).",
                )
            )
        else:
            out.append(
                SanityCheck(
                    f"{name}: monotone in ε",
                    "pass",
                    "Accuracy never rises as ε grows.",
                )
            )
    return out


def check_iterative_beats_single_step(
    sweep: pd.DataFrame, single: str = "FGSM", iterative: str = "PGD"
) -> SanityCheck:
    """PGD must be at least as strong as FGSM at every ε both were run at."""
    a = sweep[sweep["attack"] == single].set_index("eps")["accuracy"]
    b = sweep[sweep["attack"] == iterative].set_index("eps")["accuracy"]
    common = sorted(set(a.index) & set(b.index))
    name = f"{iterative} at least as strong as {single}"
    if not common:
        return SanityCheck(name, "skip", f"Run both {single} and {iterative} to check this.")
    n = int(sweep["n"].iloc[0])
    worse = [e for e in common if b[e] - a[e] > noise_tolerance(a[e], n)]
    if worse:
        e = worse[0]
        return SanityCheck(
            name,
            "warn",
            f"At ε={e:g} {iterative} leaves {b[e]:.1%} accuracy but the single-step "
            f"{single} only {a[e]:.1%}. An iterative attack weaker than one step is a sign of "
            "gradient masking or a too-small step size.",
        )
    return SanityCheck(name, "pass", f"{iterative} is at least as strong as {single} at every ε.")


def check_reaches_chance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    norm: str = "linf",
    goal: Goal | None = None,
    steps: int = 20,
    progress: ProgressFn | None = None,
) -> SanityCheck:
    """With an unbounded budget (ε covering the whole input range) accuracy must reach
    chance. Anything above means the attack cannot follow the gradient. (Only the goal's
    bounds are used: the check is untargeted.)"""
    bounds = (goal or UNTARGETED).bounds
    lo, hi = as_bounds(bounds, x[:1])
    span = float((hi - lo).max())
    eps = span if norm == "linf" else span * math.sqrt(x[0].numel())
    attack = PGD(steps=steps, random_start=False, seed=0)
    res = attack_in_batches(
        attack,
        model,
        x,
        y,
        eps=eps,
        norm=norm,
        goal=Goal(bounds=bounds),
        batch_size=512,
        progress=progress,
    )
    acc = float((res.pred.cpu() == y.cpu()).float().mean())
    chance = 1.0 / num_classes
    name = "Unbounded attack reaches chance"
    if acc > chance + noise_tolerance(chance, x.shape[0], floor=0.05):
        return SanityCheck(
            name,
            "warn",
            f"With ε={eps:g} ({norm}), which allows any input, accuracy is still {acc:.1%} "
            f"(chance is {chance:.1%}). The attack is failing, not the model succeeding: "
            "suspect gradient masking.",
        )
    return SanityCheck(
        name,
        "pass",
        f"With ε={eps:g} ({norm}) accuracy falls to {acc:.1%} (chance {chance:.1%}).",
    )


def check_converged(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    pgd: PGD,
    *,
    eps: float,
    norm: str = "linf",
    goal: Goal | None = None,
    base_accuracy: float | None = None,
    progress: ProgressFn | None = None,
) -> SanityCheck:
    """Doubling PGD's steps and adding two restarts must not move accuracy by > ~2 points."""
    yd = y.cpu()
    goal = Goal(bounds=(goal or UNTARGETED).bounds)

    def acc_of(attack: PGD, lo: float, hi: float) -> float:
        sub = scaled(progress, lo, hi)
        res = attack_in_batches(attack, model, x, y, eps=eps, norm=norm, goal=goal, progress=sub)
        return float((res.pred.cpu() == yd).float().mean())

    base = base_accuracy if base_accuracy is not None else acc_of(pgd, 0.0, 0.2)
    more_steps = acc_of(pgd.replace(steps=pgd.steps * 2), 0.2, 0.6)
    more_restarts = acc_of(pgd.replace(restarts=pgd.restarts + 2, random_start=True), 0.6, 1.0)
    strongest = min(more_steps, more_restarts)
    name = f"PGD convergence at ε={eps:g}"
    drop = base - strongest
    detail = (
        f"{pgd.steps} steps: {base:.1%}; {pgd.steps * 2} steps: {more_steps:.1%}; "
        f"{pgd.restarts + 2} restarts: {more_restarts:.1%}."
    )
    if drop > CONVERGENCE_TOLERANCE:
        return SanityCheck(
            name,
            "warn",
            f"Not converged: more effort lowers accuracy by {drop:.1%} ({detail}) The "
            "reported robust accuracy flatters the model: use more steps or restarts.",
        )
    moved = "lowers" if drop > 0 else "raises" if drop < 0 else "leaves"
    amount = f" by {abs(drop):.1%}" if drop else " unchanged"
    return SanityCheck(name, "pass", f"Converged: more effort {moved} accuracy{amount} ({detail})")


def check_whitebox_beats_blackbox(
    whitebox_success: float,
    blackbox_success: float,
    n: int,
    *,
    whitebox: str = "white-box PGD",
    blackbox: str = "black-box transfer",
    eps: float | None = None,
) -> SanityCheck:
    """A white-box attack must be at least as successful as a black-box one at the same
    budget (success rates on the same ``n`` inputs)."""
    at = f" at ε={eps:g}" if eps is not None else ""
    name = "White-box at least as strong as black-box"
    if blackbox_success - whitebox_success > noise_tolerance(whitebox_success, n, floor=0.05):
        return SanityCheck(
            name,
            "warn",
            f"{blackbox.capitalize()} fools {blackbox_success:.1%} of the inputs{at}, "
            f"{whitebox} only {whitebox_success:.1%}. An attacker who knows less should never "
            "do better: the model's gradients are masked, and its apparent robustness is "
            "not real.",
        )
    return SanityCheck(
        name,
        "pass",
        f"{whitebox.capitalize()} ({whitebox_success:.1%}){at} is at least as strong as "
        f"{blackbox} ({blackbox_success:.1%}).",
    )


def checks_table(checks: list[SanityCheck]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"check": c.name, "status": c.status, "message": c.message} for c in checks],
        columns=["check", "status", "message"],
    )
