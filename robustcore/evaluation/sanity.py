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
* **converged**: doubling PGD's steps, or adding restarts, must not lower robust
  accuracy by more than about 2 points; otherwise the reported number is not a stable
  upper bound.

Each check's ``name`` says what should hold; its ``message`` gives the verdict with the
numbers behind it, and a difference is worded by its sign ("rises by", "lowers … by").
Differences of two rates are in percentage points ("3.0 points"). A check that passes
only because a gap is within the noise of the sample says so, with the gap: the numbers
it quotes never contradict its verdict.
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
#: The name of :func:`check_reaches_chance`'s check.
REACHES_CHANCE = "Unbounded attack reaches chance"


@dataclass
class SanityCheck:
    """The outcome of one check: ``status`` is ``"pass"``, ``"warn"`` or ``"skip"``."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status != "warn"


def headline_flag(failed: list[SanityCheck]) -> str:
    """The few words a headline number carries when failed sanity checks contradict it
    (empty when none did). A failed PGD convergence check is named first."""
    if not failed:
        return ""
    others = [c for c in failed if "convergence" not in c.name]
    if len(others) < len(failed):
        more = len(others)
        return "⚠ not converged" + (f" (+{more} failed check{'s' * (more > 1)})" if more else "")
    if len(failed) == 1:
        return "⚠ sanity check failed"
    return f"⚠ {len(failed)} sanity checks failed"


def _points(d: float) -> str:
    """The size of a difference of two rates, in percentage points."""
    return f"{abs(d) * 100:.1f} points"


def _capitalized(text: str) -> str:
    """``text`` with its first letter upper-case (``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


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
        steps = [(eps[i], eps[i + 1], acc[i + 1] - acc[i]) for i in range(len(acc) - 1)]
        rises = [s for i, s in enumerate(steps) if s[2] > noise_tolerance(acc[i], n)]
        if rises:
            e0, e1, d = rises[0]
            out.append(
                SanityCheck(
                    f"{name}: monotone in ε",
                    "warn",
                    f"Accuracy rises by {_points(d)} from ε={e0:g} to ε={e1:g}: a larger "
                    "budget should never help the model. The attack is not finding the worst "
                    "case (try more steps, restarts or a smaller step size).",
                )
            )
            continue
        small = [(i, s) for i, s in enumerate(steps) if s[2] > 0]
        if small:
            i, (e0, e1, d) = max(small, key=lambda t: t[1][2])
            message = (
                f"Accuracy does not rise beyond noise as ε grows: its largest rise, "
                f"{_points(d)} from ε={e0:g} to ε={e1:g}, is within the "
                f"±{_points(noise_tolerance(acc[i], n))} noise of {n} inputs."
            )
        else:
            message = "Accuracy never rises as ε grows."
        out.append(SanityCheck(f"{name}: monotone in ε", "pass", message))
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
    weaker = [e for e in common if b[e] > a[e]]
    if weaker:
        e = max(weaker, key=lambda v: b[v] - a[v])
        return SanityCheck(
            name,
            "pass",
            f"{iterative} is at least as strong as {single} at every ε within noise: where it "
            f"is weakest, at ε={e:g}, it leaves {b[e]:.1%} accuracy against {single}'s "
            f"{a[e]:.1%}, {_points(b[e] - a[e])} more, within the "
            f"±{_points(noise_tolerance(a[e], n))} noise of {n} inputs.",
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
    name = REACHES_CHANCE
    if acc > chance + noise_tolerance(chance, x.shape[0], floor=0.05):
        return SanityCheck(
            name,
            "warn",
            f"With ε={eps:g} ({norm}), which allows any input, accuracy is still {acc:.1%} "
            f"(chance is {chance:.1%}). The attack is failing, not the model succeeding: "
            "suspect gradient masking.",
        )
    if acc > chance:
        return SanityCheck(
            name,
            "pass",
            f"With ε={eps:g} ({norm}) accuracy falls to {acc:.1%}, within noise of chance "
            f"({chance:.1%}; ±{_points(noise_tolerance(chance, x.shape[0], floor=0.05))} on "
            f"{x.shape[0]} inputs).",
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
    """Doubling PGD's steps and adding two restarts must not lower accuracy by > ~2 points."""
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
        f"{pgd.steps} step{'s' * (pgd.steps > 1)}: {base:.1%}; {pgd.steps * 2} steps: "
        f"{more_steps:.1%}; "
        f"{pgd.restarts + 2} restarts: {more_restarts:.1%}."
    )
    if drop > CONVERGENCE_TOLERANCE:
        return SanityCheck(
            name,
            "warn",
            f"Not converged: more effort lowers accuracy by {_points(drop)} ({detail}) The "
            "reported robust accuracy flatters the model: use more steps or restarts.",
        )
    moved = "lowers" if drop > 0 else "raises" if drop < 0 else "leaves"
    amount = f" by {_points(drop)}" if drop else " unchanged"
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
    tolerance = noise_tolerance(whitebox_success, n, floor=0.05)
    if blackbox_success - whitebox_success > tolerance:
        return SanityCheck(
            name,
            "warn",
            f"{_capitalized(blackbox)} fools {blackbox_success:.1%} of the inputs{at}, "
            f"{whitebox} only {whitebox_success:.1%}. An attacker who knows less should never "
            "do better: the model's gradients are masked, and its apparent robustness is "
            "not real.",
        )
    if blackbox_success > whitebox_success:
        return SanityCheck(
            name,
            "pass",
            f"{_capitalized(whitebox)} ({whitebox_success:.1%}){at} is within noise of "
            f"{blackbox} ({blackbox_success:.1%}): {_points(blackbox_success - whitebox_success)}"
            f" below it, inside the ±{_points(tolerance)} noise of {n} inputs.",
        )
    return SanityCheck(
        name,
        "pass",
        f"{_capitalized(whitebox)} ({whitebox_success:.1%}){at} is at least as strong as "
        f"{blackbox} ({blackbox_success:.1%}).",
    )


def checks_table(checks: list[SanityCheck]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"check": c.name, "status": c.status, "message": c.message} for c in checks],
        columns=["check", "status", "message"],
    )
