"""What every black-box (query-only) evasion attack shares.

A black-box attacker never sees the model: it holds a
:class:`~robustcore.threat.QueryModel` that answers class probabilities for the inputs it
sends and counts every one of them as a query of the client (image) that sent it.
:class:`BlackBoxAttack` is the base of SimBA and ZOO::

    api = QueryModel(model)                       # optionally budget=, monitors=, defense=
    res = SimBA(basis="dct").run(api, x, y, eps=0.2, max_queries=2000)   # all images at once
    res = ZOO().run(QueryModel(model, budget=1000), x, y, goal=Goal(target=3))
    res.success, res.queries                      # per image

Like the white-box attacks, the budgets are the run's, not the attack's: ``eps`` is SimBA's
step length (ZOO takes none) and the query budget per image is ``max_queries`` or else the
service's own per-client ``budget`` (a run with neither is refused: one of them must say
when to stop). :class:`~robustcore.attacks.evasion.Goal` carries the target class and the
data bounds.

:meth:`BlackBoxAttack.run` validates the inputs, refuses a label-only service (SimBA and
ZOO read probabilities), opens one client per image (``api.open(len(x))``), asks the
service once for every original image (query 1 of each client: images the model already
gets wrong succeed right there), then lets the attack work on the whole batch. Each image
stops at its first observed success or when its budget ``min(max_queries,
api.remaining())`` is spent, so the service never has to refuse a query. The result's
``pred`` and ``confidence`` are the service's last answer for each returned image: no
extra, uncounted model access.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch

from ...errors import ValidationError
from ...params import Configurable
from ...progress import ProgressFn
from ...threat import QueryModel
from .base import UNTARGETED, AttackResult, Goal, as_bounds, flat_norms, resolve_target


@dataclass
class QueryState:
    """The running state of a black-box attack on a batch (all tensors on ``api.device``).

    Attributes:
        x: the original inputs (N, …); labels: the class to move away from (untargeted:
            the true label) or toward (targeted: the target), (N,).
        targeted: which of the two.
        lo, hi: data bounds broadcastable to ``x``.
        x_adv: the current point of each image.
        probs: the service's answer (N, C) for each current point.
        done: per image, has success been observed (then ``x_adv`` is adversarial).
        used: queries each image has made so far.
        budget: queries each image may make in all, ``min(max_queries, remaining)``.
        max_queries: the run's query budget per image (``max_queries``, else the
            service's own budget); SimBA also tries at most this many directions.
    """

    x: torch.Tensor
    labels: torch.Tensor
    targeted: bool
    lo: torch.Tensor
    hi: torch.Tensor
    x_adv: torch.Tensor
    probs: torch.Tensor
    done: torch.Tensor
    used: torch.Tensor
    budget: torch.Tensor
    max_queries: int

    def adversarial(self, probs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Do the answers ``probs`` for images ``idx`` reach the attack's goal?"""
        pred = probs.argmax(dim=1)
        lab = self.labels[idx]
        return pred == lab if self.targeted else pred != lab

    def active(self, need: int = 1) -> torch.Tensor:
        """Indices of the images still attacked that can afford ``need`` more queries."""
        return ((~self.done) & (self.used + need <= self.budget)).nonzero().flatten()

    def fraction_done(self) -> float:
        """Progress: finished images count 1, the others their share of budget spent."""
        part = (self.used.float() / self.budget.clamp_min(1).float()).clamp(max=1.0)
        part = torch.where(self.done, torch.ones_like(part), part)
        return float(part.mean()) if part.numel() else 1.0


@functools.lru_cache(maxsize=8)
def _one(device: torch.device) -> torch.Tensor:
    """The count each query adds, on ``device`` (made once, not per query batch)."""
    return torch.ones((), dtype=torch.long, device=device)


class BlackBoxAttack(Configurable):
    """Base of the query-only evasion attacks (SimBA, ZOO).

    Subclasses declare their own settings (a ``seed`` among them) and implement
    :meth:`_attack`, which improves ``state`` in place and returns the number of iterations
    it ran. They must query only through :meth:`ask` (so counts are exact) and never more
    than ``state.budget - state.used`` per image.
    """

    #: the attack reads class probabilities (a label-only service cannot serve it)
    needs_probabilities: ClassVar[bool] = True
    #: does the attack take a step length ``eps`` (SimBA) or none (ZOO)?
    budgeted: ClassVar[bool] = False
    seed: int

    @property
    def label(self) -> str:
        """The attack's name in legends and tables."""
        return self.title

    def check_eps(self, eps: float | None) -> float | None:
        """Validate a run's ``eps``: required (finite, > 0) when budgeted, else refused."""
        if not self.budgeted:
            if eps is not None:
                raise ValidationError(
                    f"{self.title} has no ε: it sizes its own steps (give eps only to SimBA)."
                )
            return None
        if eps is None:
            raise ValidationError(f"{self.title} needs a step length: pass eps=… to run().")
        try:
            value = float(eps)
        except (TypeError, ValueError):
            raise ValidationError(f"ε must be a number, got {eps!r}.") from None
        if isinstance(eps, bool) or not math.isfinite(value) or value <= 0:
            raise ValidationError(
                f"{self.title}'s step ε must be a finite number > 0; got {eps!r}."
            )
        return value

    def query_limit(self, api: QueryModel, max_queries: int | None) -> int:
        """The run's query budget per image: ``max_queries``, else the service's budget."""
        if max_queries is None:
            if api.budget is None:
                raise ValidationError(
                    f"{self.title} needs a query budget per image: pass max_queries=… to "
                    "run(), or give the QueryModel a per-client budget=… (it is used when "
                    "max_queries is not given)."
                )
            return int(api.budget)
        bad = isinstance(max_queries, bool) or not isinstance(max_queries, int | float)
        if bad or not math.isfinite(max_queries) or int(max_queries) != max_queries:
            raise ValidationError(f"max_queries must be a whole number ≥ 1, got {max_queries!r}.")
        if max_queries < 1:
            raise ValidationError(f"max_queries must be at least 1, got {max_queries!r}.")
        return int(max_queries)

    def run(
        self,
        api: QueryModel,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float | None = None,
        max_queries: int | None = None,
        goal: Goal | None = None,
        progress: ProgressFn | None = None,
    ) -> AttackResult:
        """Attack the batch ``x`` (true labels ``y``) through the query interface ``api``.

        Args:
            api: the prediction service (:class:`QueryModel`) returning probabilities. Its
                clients are reset: client ``i`` attacks image ``i``.
            x: inputs ``(N, …)`` shaped like the data; y: their true labels ``(N,)``.
            eps: SimBA's step length (its L∞ budget per direction); ZOO takes none.
            max_queries: queries each image may send; default: the service's own
                per-client budget (one of the two is required). With both, the smaller
                one ends each image.
            goal: targeted or not (``Goal(target=…)``, one class or one per input) and the
                data bounds (default: untargeted in ``[0, 1]``).
            progress: optional ``progress(fraction, message)``; it may raise to cancel.

        Returns:
            An :class:`AttackResult` whose ``queries`` holds each image's query count (for
            a successful image, the count at which success was first observed).
        """
        if isinstance(api, torch.nn.Module):
            raise ValidationError(
                f"{self.title} is a black-box attack: give it a query interface, "
                "QueryModel(model), not the model itself."
            )
        if not isinstance(api, QueryModel):
            raise ValidationError(
                f"{self.title} needs a QueryModel (the prediction service); got "
                f"{type(api).__name__}."
            )
        if self.needs_probabilities and api.output != "probs":
            raise ValidationError(
                f"{self.title} reads the class probabilities the service returns, but this "
                f"service answers labels only (output={api.output!r}). Use a QueryModel "
                "with output='probs', or an attack made for label-only access."
            )
        goal = goal or UNTARGETED
        if not isinstance(goal, Goal):
            raise ValidationError(f"goal must be a Goal(target=…, bounds=…), got {goal!r}.")
        eps = self.check_eps(eps)
        limit = self.query_limit(api, max_queries)
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ValidationError("Inputs and labels must be torch tensors.")
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValidationError(
                f"Inputs and labels must have the same length: got {tuple(x.shape)} inputs "
                f"and {tuple(y.shape)} labels."
            )
        device = api.device
        x = x.detach().to(device, torch.float32)
        y = y.detach().to(device, torch.long)
        one = x[:1] if x.shape[0] else torch.zeros((1, *x.shape[1:]), device=device)
        lo, hi = as_bounds(goal.bounds, one)
        tgt = resolve_target(goal.targeted, goal.target, y, api.num_classes)
        labels = tgt if tgt is not None else y
        n = int(x.shape[0])
        api.open(n)
        budget = api.remaining().clamp(max=limit)
        t0 = time.perf_counter()
        steps = 0
        with torch.no_grad():
            if n == 0:
                probs = torch.zeros(0, api.num_classes or 1, device=device)
                state = None
            else:
                if progress:
                    progress(0.0, f"{self.title}: querying the original images")
                probs = self.ask(api, x, torch.arange(n, device=device), None)
                if tgt is not None and bool((tgt >= probs.shape[1]).any()):
                    raise ValidationError(f"Target classes must lie in 0..{probs.shape[1] - 1}.")
                state = QueryState(
                    x=x,
                    labels=labels,
                    targeted=tgt is not None,
                    lo=lo,
                    hi=hi,
                    x_adv=x.clone(),
                    probs=probs,
                    done=torch.zeros(n, dtype=torch.bool, device=device),
                    used=torch.ones(n, dtype=torch.long, device=device),
                    budget=budget,
                    max_queries=limit,
                )
                state.done = state.adversarial(probs, torch.arange(n, device=device))
                steps = self._attack(api, state, eps, progress)
                probs = state.probs
        seconds = time.perf_counter() - t0
        if state is None:
            x_adv = x.clone()
            success = torch.zeros(0, dtype=torch.bool, device=device)
            used = torch.zeros(0, dtype=torch.long, device=device)
        else:
            x_adv, success, used = state.x_adv, state.done, state.used
        conf, pred = probs.max(dim=1) if n else (probs.sum(1), probs.sum(1).long())
        l2, linf = flat_norms(x_adv - x)
        if progress:
            progress(1.0, f"{self.title} done")
        return AttackResult(
            x_adv=x_adv.detach(),
            success=success.clone(),
            pred=pred,
            confidence=conf,
            l2=l2,
            linf=linf,
            queries=used.clone(),
            seconds=seconds,
            steps=steps,
        )

    @staticmethod
    def ask(
        api: QueryModel,
        xq: torch.Tensor,
        clients: torch.Tensor,
        used: torch.Tensor | None,
    ) -> torch.Tensor:
        """Send the queries ``xq`` (one per entry of ``clients``) and count them in ``used``."""
        probs = api(xq, clients)
        if used is not None:
            used.index_put_((clients,), _one(used.device), accumulate=True)
        return probs

    def _attack(
        self, api: QueryModel, state: QueryState, eps: float | None, progress: ProgressFn | None
    ) -> int:
        raise NotImplementedError


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (attacks draw all randomness from it)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen
