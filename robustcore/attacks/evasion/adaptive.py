"""Adaptive attackers: black-box attackers who know the defense in front of the model.

An evaluation that flatters a defense is a bug (Carlini et al. 2019): a query limit and a
stateful detector (:mod:`robustcore.defenses.query_limit`) must be measured against an
attacker who knows them. Chen, Carlini & Wagner (2020, "Stateful Detection of Black-Box
Adversarial Attacks") name two such attackers, both here:

* :class:`AccountRotation` – the Sybil attacker: each image's queries are spread over
  fresh accounts, every ``per_account`` queries and whenever an account is banned. It is a
  what-if monitor on the same query stream (the attack itself is unchanged), and counts
  the accounts that takes.
* :class:`BlindedQueryModel` – query blinding: random noise added to every query before it
  is sent, so consecutive queries look less alike (and the attack sees a blurrier model).

:class:`AdaptiveAttacker` declares both (queries per account, blinding σ) for forms, specs
and the CLI. Example::

    from robustcore.attacks.evasion import SimBA
    from robustcore.attacks.evasion.adaptive import AccountRotation
    from robustcore.defenses.query_limit import QueryLimit, StatefulDetector
    from robustcore.threat import QueryModel

    det = StatefulDetector.from_config(QueryLimit(k=50), model)
    det.calibrate(ds.x_train, 0.001)
    rotate = AccountRotation(det, per_account=50)   # a new account every k queries
    api = QueryModel(model, budget=2000, monitors=[det.clone(), rotate])
    SimBA().run(api, x, y, eps=0.2)
    rotate.accounts                                  # accounts each image's attacker needed
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...defenses.query_limit import StatefulDetector
from ...errors import ValidationError
from ...params import Configurable, param
from ...threat import QueryModel


@dataclass(frozen=True)
class AdaptiveAttacker(Configurable):
    """An attacker who knows the detector (the workbench's adaptive attack).

    Account rotation: each image's queries are sent from a fresh account every
    ``per_account`` queries, and from a new one whenever an account is banned. The detector
    needs ``k`` earlier queries of the same account before it can flag one, so at
    ``per_account ≤ k`` it never fires; the price is the number of accounts. Query blinding
    (Chen et al. 2020, Sec. 6): random noise added to every query hides the similarity, but
    also blurs the attack's view of the model.
    """

    name = "adaptive"
    title = "Adaptive attacker"
    paper = "Chen, Carlini & Wagner 2020 (Sybil accounts, query blinding)"

    per_account: int = param(
        0,
        low=0,
        high=1_000_000,
        step=1,
        label="Queries per account",
        help="The attacker switches to a fresh account after this many queries; 0 means the "
        "detector's k, the most an account can send without ever being flagged.",
    )
    blinding: float = param(
        0.0,
        low=0.0,
        high=1.0,
        step=0.01,
        label="Query blinding σ",
        help="Standard deviation of Gaussian noise the attacker adds to every query (0: no "
        "blinding run). Each attack then runs a second time with blinded queries.",
    )

    def chunk(self, k: int) -> int:
        """Queries per account for a detector with ``k`` neighbours."""
        return int(self.per_account) if self.per_account > 0 else int(k)


class AccountRotation:
    """What-if monitor: the detector's verdicts had each image's attacker rotated accounts.

    The attacker behind client ``i`` sends its queries from one account at a time and
    opens a fresh one (with an empty history at the service) after ``per_account`` queries
    (``None``: only when banned) and whenever the detector bans the current account (the
    flagged query is the account's last). The queries themselves are unchanged — the attack
    does not need to know which account sends them — so the same attack run measures both
    the naive and the adaptive attacker. This monitor never flags anything itself.

    Attributes:
        accounts: per client (image), the accounts its attack used.
        bans: per client, how many of those accounts were banned.
    """

    def __init__(self, detector: StatefulDetector, per_account: int | None) -> None:
        if not isinstance(detector, StatefulDetector):
            raise ValidationError("AccountRotation needs a StatefulDetector.")
        if per_account is not None and (isinstance(per_account, bool) or int(per_account) < 1):
            raise ValidationError(f"per_account must be ≥ 1 or None; got {per_account!r}.")
        if detector.threshold is None:
            raise ValidationError("Calibrate the detector before rotating accounts against it.")
        self.detector = detector.clone(ban=False)
        self.per_account = None if per_account is None else int(per_account)
        if self.per_account is not None and self.per_account < detector.history:
            # An account never holds more than per_account queries: a shorter ring gives
            # the same verdicts with less memory.
            self.detector.history = max(self.per_account, detector.k + 1)
        self._start = torch.zeros(0, dtype=torch.long)
        self._closed = torch.zeros(0, dtype=torch.long)
        self._last = torch.zeros(0, dtype=torch.long)
        self.bans = torch.zeros(0, dtype=torch.long)

    def open(self, n: int) -> None:
        self.detector.open(n)
        dev = self.detector.device or torch.device("cpu")
        self._start = torch.ones(int(n), dtype=torch.long, device=dev)
        self._closed = torch.zeros(int(n), dtype=torch.long, device=dev)
        self._last = torch.zeros(int(n), dtype=torch.long, device=dev)
        self.bans = torch.zeros(int(n), dtype=torch.long, device=dev)

    def _account_start(self, c: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        s = self._start[c]
        if self.per_account is None:
            return s
        p = self.per_account
        return s + p * torch.div(num - s, p, rounding_mode="floor").clamp_min(0)

    def _to(self, device: torch.device) -> None:
        for name in ("_start", "_closed", "_last", "bans"):
            setattr(self, name, getattr(self, name).to(device))

    @torch.inference_mode()
    def observe(
        self, x: torch.Tensor, clients: torch.Tensor, numbers: torch.Tensor
    ) -> torch.Tensor:
        det = self.detector
        e, c, num = det.prepare(x, clients, numbers)
        self._to(det.device)
        big = torch.iinfo(torch.long).max
        todo = torch.ones(c.shape[0], dtype=torch.bool, device=det.device)
        # Bans reset an account's history, which changes the scores of the same client's
        # later queries in this call: resolve them one ban per client at a time.
        while bool(todo.any()):
            idx = todo.nonzero().flatten()
            ci, ni = c[idx], num[idx]
            s = det.knn_scores(e[idx], ci, ni, self._account_start(ci, ni))
            hit = s < det.threshold
            if not bool(hit.any()):
                break
            first = torch.full_like(self._start, big)
            first.scatter_reduce_(0, ci[hit], ni[hit], reduce="amin")
            banned = (first < big).nonzero().flatten()
            f = first[banned]
            cur = self._start[banned]
            full = (
                torch.div(f - cur, self.per_account, rounding_mode="floor")
                if self.per_account is not None
                else torch.zeros_like(f)
            )
            self._closed[banned] += full + 1  # full accounts before, and the banned one
            self._start[banned] = f + 1
            self.bans[banned] += 1
            todo &= ~(num <= first[c])
        last = torch.zeros_like(self._last)
        last.scatter_reduce_(0, c, num, reduce="amax")
        seen = last > 0
        if self.per_account is not None:
            full = torch.div(last - self._start, self.per_account, rounding_mode="floor")
            full = torch.where(seen, full.clamp_min(0), torch.zeros_like(full))
            self._closed += full
            self._start += full * self.per_account
        self._last = torch.maximum(self._last, last)
        det.remember(e, c, num)
        return torch.zeros(c.shape[0], dtype=torch.bool, device=det.device)

    @property
    def accounts(self) -> torch.Tensor:
        """Accounts each client's attack used (the current one counts once it has sent)."""
        return self._closed + (self._last >= self._start).long()


class BlindedQueryModel(QueryModel):
    """Query blinding (Chen et al. 2020): the attacker adds noise to every query it sends.

    A :class:`QueryModel` whose inputs are first moved by Gaussian noise of standard
    deviation ``sigma`` (and clipped into ``bounds``), so that consecutive queries of an
    attack look less alike to a stateful detector. The attack sees the answers for the
    noisy points, which is what makes blinding costly for it.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        sigma: float,
        seed: int = 0,
        bounds: tuple[Any, Any] = (0.0, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        s = float(sigma)
        if not math.isfinite(s) or s < 0:
            raise ValidationError(f"The blinding noise σ must be ≥ 0; got {sigma}.")
        self.sigma = s
        self._gen = torch.Generator(device=self.device).manual_seed(int(seed))
        lo, hi = bounds
        self._lo = torch.as_tensor(lo, dtype=torch.float32, device=self.device)
        self._hi = torch.as_tensor(hi, dtype=torch.float32, device=self.device)

    def __call__(self, x: torch.Tensor, clients: torch.Tensor | int | None = None) -> torch.Tensor:
        if self.sigma > 0 and isinstance(x, torch.Tensor):
            x = x.detach().to(self.device, torch.float32)
            noise = torch.randn(x.shape, generator=self._gen, device=self.device) * self.sigma
            x = torch.maximum(torch.minimum(x + noise, self._hi), self._lo)
        return super().__call__(x, clients)


__all__ = ["AccountRotation", "AdaptiveAttacker", "BlindedQueryModel"]
