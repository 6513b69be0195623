"""Query limitation: a per-client query budget and a stateful detector of attack query streams.

A black-box attack needs many queries, and the queries of one attack look alike: SimBA
sends the same image again and again with one small step added, ZOO sends pairs of images
that differ in one coordinate. Chen, Carlini & Wagner (2020, "Stateful Detection of
Black-Box Adversarial Attacks") turn that into a defense: the service remembers each
client's recent queries and, for every new query, measures the mean distance to its ``k``
nearest neighbours among them. Natural images are far apart; an attack's queries are
close, so a small mean distance flags the client. The threshold is set on a benign stream
of natural images so that only a chosen share of benign queries (0.1 % in the paper) is
flagged.

What is here:

* :class:`QueryLimit` – the declaration (budget, ``k``, target false-positive rate,
  history length, encoder): one parameter set drives the form, the cache key and the
  report. The per-client budget itself is enforced by
  :class:`~robustcore.attacks.evasion.query.QueryModel` (``budget=``).
* :class:`StatefulDetector` – the detector, a
  :class:`~robustcore.attacks.evasion.query.QueryMonitor`: per client a ring buffer of
  its last ``history`` query encodings; every query is compared with the earlier queries of
  the same client (including earlier queries of the same call, in order), all clients and
  queries of a call at once on the device (batched ``cdist`` with a causal mask).
* :meth:`StatefulDetector.calibrate` – the paper's threshold: a benign stream of training
  images, the ``fpr`` quantile of its k-NN distances.
* :class:`AccountRotation` – the adaptive attacker who knows the detector (a what-if
  monitor): each image's queries are spread over fresh accounts, every ``per_account``
  queries and whenever an account is banned; it counts the accounts that takes.
* :class:`BlindedQueryModel` – query blinding (the paper's adaptive attack): the attacker
  adds random noise to every query before sending it.
* :func:`evaluate_query_limit` – the measurement the "Query limitation" page shows:
  detection delay, success before detection, success against budget with and without the
  detector, false alarms on benign streams, accounts the adaptive attacker needs.

Encoders. The paper compares queries in the space of a similarity encoder trained with a
contrastive loss (and, as a baseline, in pixel space). Here ``"pixels"`` average-pools each
image to ``pool × pool`` per channel (tabular rows are used as they are): no training, hard
to fool with small pixel noise (pooling averages it away), and what the paper's released
``L2Detector`` does without the pooling. ``"features"`` uses the target's own penultimate
activations (:mod:`robustcore.models.features`): a learned space at no extra training
cost, but one the attack itself moves through, so it is offered for comparison rather than
as the default.

Example::

    from robustcore.attacks.evasion import QueryModel, SimBA
    from robustcore.defenses.query_limit import QueryLimit, StatefulDetector

    cfg = QueryLimit(budget=2000, k=50, fpr=0.001)
    det = StatefulDetector.from_config(cfg, model)
    det.calibrate(ds.x_train, cfg.fpr)
    api = QueryModel(model, budget=cfg.budget, monitors=[det])
    res = SimBA(basis="dct").run(api, x, y)
    api.detected_at      # per image: the query at which its client was caught (0: never)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..attacks.evasion.query import QueryModel
from ..device import get_device
from ..errors import ModelError, ValidationError
from ..evaluation.queries import success_vs_queries, success_within
from ..params import Configurable, param

ENCODERS = ("pixels", "features")
"""How queries are compared: pooled pixels, or the target's penultimate activations."""

ProgressFn = Callable[[float, str], None]

_INF = float("inf")
_MAX_ELEMENTS = 1 << 23  # distance-matrix entries per block (32 MiB of float32)
_MAX_STATE_BYTES = 1 << 30  # ring buffers of all clients together


@dataclass(frozen=True)
class QueryLimit(Configurable):
    """A prediction service's query limits: a per-client budget and a stateful detector.

    Chen, Carlini & Wagner (2020) flag a client when a query's mean distance to its ``k``
    nearest earlier queries (of the same client) falls below a threshold that lets only
    ``fpr`` of benign queries through as false alarms.
    """

    name = "query_limit"
    title = "Query limitation"
    paper = "Chen, Carlini & Wagner 2020, Stateful Detection of Black-Box Adversarial Attacks"

    budget: int = param(
        2000,
        low=1,
        high=1_000_000,
        step=100,
        label="Query budget per client",
        help="The most queries one client (account) may send; the service refuses more.",
    )
    k: int = param(
        50,
        low=1,
        high=1000,
        step=1,
        label="k (neighbours)",
        help="Each query is compared with its k most similar earlier queries of the same "
        "client (the paper uses 50). A client's first k queries can never be flagged.",
    )
    fpr: float = param(
        0.001,
        low=0.0001,
        high=0.2,
        log=True,
        label="Target false-positive rate",
        help="Share of benign queries allowed to be flagged: the threshold is set on a benign "
        "stream of training images (the paper uses 0.1 %).",
    )
    history: int = param(
        1000,
        low=2,
        high=100_000,
        step=100,
        label="History per client",
        help="Recent queries remembered per client (a ring buffer); older ones are forgotten.",
    )
    encoder: str = param(
        "pixels",
        choices=ENCODERS,
        label="Encoder",
        help="pixels: compare images average-pooled to pool × pool. features: compare the "
        "target's penultimate activations.",
    )
    pool: int = param(
        7,
        low=1,
        high=256,
        step=1,
        label="Pooled size (pixels)",
        help="Images are average-pooled to pool × pool per channel before comparing: smaller "
        "is cheaper and averages pixel noise away.",
    )
    calibration: int = param(
        4000,
        low=100,
        high=100_000,
        step=100,
        label="Calibration stream",
        help="Training images in the benign stream that sets the threshold (at most the "
        "training set).",
    )

    def check(self) -> None:
        if self.k >= self.history:
            raise ValidationError(
                f"k ({self.k}) must be smaller than the history per client ({self.history}): "
                "the detector needs k earlier queries to compare with."
            )
        if self.calibration <= self.k:
            raise ValidationError(
                f"The calibration stream ({self.calibration}) must be longer than k ({self.k})."
            )


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


@dataclass(frozen=True)
class BenignStreams(Configurable):
    """Benign clients for the false-alarm measurement: held-out test images, one stream each."""

    name = "benign"
    title = "Benign clients"

    clients: int = param(
        20, low=1, high=1000, step=1, label="Benign clients", help="Honest clients simulated."
    )
    queries: int = param(
        200,
        low=1,
        high=100_000,
        step=50,
        label="Queries per benign client",
        help="Each sends this many distinct test images (at most the test set), in random order.",
    )


# -- encoders --------------------------------------------------------------------------------


class _PixelEncoder(nn.Module):
    def __init__(self, pool: int) -> None:
        super().__init__()
        self.pool = int(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if x.dim() == 4:
            h, w = x.shape[-2:]
            x = F.adaptive_avg_pool2d(x, (min(self.pool, h), min(self.pool, w)))
        return x.flatten(1)


def make_encoder(encoder: str, *, pool: int = 7, model: nn.Module | None = None) -> nn.Module:
    """The map from queries to the vectors the detector compares.

    Args:
        encoder: ``"pixels"`` (average-pool images to ``pool × pool`` per channel, flatten)
            or ``"features"`` (penultimate activations of ``model``).
        pool: pooled side length for ``"pixels"``.
        model: the target, needed for ``"features"``.
    """
    if encoder not in ENCODERS:
        raise ValidationError(f"encoder must be one of {', '.join(ENCODERS)}; got {encoder!r}.")
    if isinstance(pool, bool) or int(pool) < 1:
        raise ValidationError(f"pool must be a whole number ≥ 1; got {pool!r}.")
    if encoder == "pixels":
        return _PixelEncoder(int(pool))
    if not isinstance(model, nn.Module):
        raise ValidationError("The features encoder needs the target model (model=...).")
    from ..models.features import split_model

    try:
        body, _ = split_model(model)
    except ModelError as exc:
        raise ValidationError(f"The features encoder cannot be used here: {exc}") from None
    return body


def _version(x: torch.Tensor) -> int | None:
    """The in-place modification counter of ``x`` (``None`` for inference tensors)."""
    try:
        return int(x._version)
    except RuntimeError:
        return None


# -- the detector ----------------------------------------------------------------------------


class StatefulDetector:
    """Stateful detection of black-box attacks (Chen, Carlini & Wagner 2020).

    For each query of a client, the detector takes the client's earlier queries (at most the
    last ``history``, including earlier queries of the same call, in order), finds the
    ``k`` nearest in encoder space and averages their L2 distances. A mean below
    ``threshold`` flags the query. A query with fewer than ``k`` earlier queries is never
    flagged (its score is ``inf``), as in the paper's code.

    Args:
        k: neighbours averaged.
        threshold: flag below this mean distance; ``None`` until :meth:`calibrate`.
        history: queries remembered per client (a ring buffer: memory is bounded by
            ``clients × history × encoding size``).
        encoder: ``"pixels"`` or ``"features"`` (see :func:`make_encoder`).
        pool: pooled side length of the pixel encoder.
        model: the target (for ``"features"``).
        ban: a flagged client stays flagged: its later queries are flagged without being
            compared (the service has closed the account). ``False`` scores every query, as
            for measuring false alarms.
        device: where the buffers live and distances are computed (default: the first
            query's device, else :func:`robustcore.device.get_device`).

    Attributes:
        detected_at: per client, the number of its first flagged query (0: never).
        flagged: per client, how many of its queries were flagged.
        scored: per client, how many of its queries had ``k`` earlier queries to compare.
    """

    def __init__(
        self,
        k: int = 50,
        threshold: float | None = None,
        *,
        history: int = 1000,
        encoder: str = "pixels",
        pool: int = 7,
        model: nn.Module | None = None,
        ban: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        for name, value, low in (("k", k, 1), ("history", history, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(f"{name} must be a whole number ≥ {low}; got {value!r}.")
        if k >= history:
            raise ValidationError(
                f"k ({k}) must be smaller than history ({history}): the detector needs k "
                "earlier queries to compare with."
            )
        self.k = int(k)
        self.history = int(history)
        self.encoder_name = encoder
        self.encoder = make_encoder(encoder, pool=pool, model=model)
        self.threshold: float | None = None
        if threshold is not None:
            self.set_threshold(threshold)
        self.ban = bool(ban)
        self.device = torch.device(device) if device is not None else None
        self.calibration_scores: torch.Tensor | None = None
        self._cache: dict[str, Any] = {}
        self._n = 0
        self._buf: torch.Tensor | None = None
        self._num: torch.Tensor | None = None
        self.detected_at = torch.zeros(0, dtype=torch.long)
        self.flagged = torch.zeros(0, dtype=torch.long)
        self.scored = torch.zeros(0, dtype=torch.long)

    @classmethod
    def from_config(
        cls,
        config: QueryLimit,
        model: nn.Module | None = None,
        *,
        threshold: float | None = None,
        ban: bool = True,
        device: torch.device | str | None = None,
    ) -> StatefulDetector:
        """A detector with the settings of a :class:`QueryLimit` declaration."""
        if not isinstance(config, QueryLimit):
            raise ValidationError(f"Expected a QueryLimit; got {type(config).__name__}.")
        return cls(
            config.k,
            threshold,
            history=config.history,
            encoder=config.encoder,
            pool=config.pool,
            model=model,
            ban=ban,
            device=device,
        )

    def set_threshold(self, threshold: float) -> None:
        value = float(threshold)
        if not math.isfinite(value) or value < 0:
            raise ValidationError(f"The threshold must be a finite distance ≥ 0; got {threshold}.")
        self.threshold = value

    def clone(self, *, ban: bool | None = None) -> StatefulDetector:
        """A fresh detector with the same settings and threshold (no clients, no state)."""
        new = object.__new__(StatefulDetector)
        new.k, new.history, new.encoder_name = self.k, self.history, self.encoder_name
        new.encoder, new.threshold, new._cache = self.encoder, self.threshold, self._cache
        new.ban = self.ban if ban is None else bool(ban)
        new.device, new.calibration_scores = self.device, self.calibration_scores
        new._n, new._buf, new._num = 0, None, None
        new.detected_at = torch.zeros(0, dtype=torch.long)
        new.flagged = torch.zeros(0, dtype=torch.long)
        new.scored = torch.zeros(0, dtype=torch.long)
        return new

    # -- state ---------------------------------------------------------------------------

    @property
    def n_clients(self) -> int:
        return self._n

    def open(self, n: int) -> None:
        """Forget everything and start ``n`` clients (called by ``QueryModel.open``)."""
        if isinstance(n, bool) or int(n) < 0:
            raise ValidationError(f"The number of clients must be ≥ 0; got {n}.")
        self._n = int(n)
        self._buf = None  # allocated at the first query, when the encoding size is known
        self._num = None
        dev = self.device or torch.device("cpu")
        self.detected_at = torch.zeros(self._n, dtype=torch.long, device=dev)
        self.flagged = torch.zeros(self._n, dtype=torch.long, device=dev)
        self.scored = torch.zeros(self._n, dtype=torch.long, device=dev)

    def _ensure_state(self, dim: int, device: torch.device) -> None:
        if self._buf is not None:
            return
        if self.device is None:
            self.device = device
        need = self._n * self.history * (dim * 4 + 8)
        if need > _MAX_STATE_BYTES:
            raise ValidationError(
                f"The detector's memory would be {need / 2**30:.1f} GiB ({self._n} clients × "
                f"{self.history} queries × {dim} values); lower the history or the pooled size."
            )
        self._buf = torch.zeros(self._n, self.history, dim, device=self.device)
        self._num = torch.zeros(self._n, self.history, dtype=torch.long, device=self.device)
        self.detected_at = self.detected_at.to(self.device)
        self.flagged = self.flagged.to(self.device)
        self.scored = self.scored.to(self.device)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encodings (m, D) of a batch of queries, on the detector's device.

        Detectors cloned from one another share the encoder and remember the last batch
        they encoded (by identity, holding a reference), so several monitors of the same
        service encode each query batch once.
        """
        cache = self._cache
        version = _version(x)
        if version is not None and cache.get("x") is x and cache.get("version") == version:
            return cache["e"]
        dev = self.device or x.device
        enc_dev = next((p.device for p in self.encoder.parameters()), dev)
        out = self.encoder(x.detach().to(enc_dev, torch.float32)).float().flatten(1).to(dev)
        if version is not None:
            cache.update(x=x, version=version, e=out)
        return out

    def _check(
        self, x: torch.Tensor, clients: torch.Tensor, numbers: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._n == 0:
            raise ValidationError("No clients: call open(n) before the first query.")
        c = torch.as_tensor(clients, dtype=torch.long).reshape(-1)
        num = torch.as_tensor(numbers, dtype=torch.long).reshape(-1)
        if c.shape[0] != x.shape[0] or num.shape[0] != x.shape[0]:
            raise ValidationError("clients and numbers must have one entry per query.")
        if c.numel() and bool(((c < 0) | (c >= self._n)).any()):
            raise ValidationError(f"Client ids must lie in 0..{self._n - 1}.")
        if num.numel() and bool((num < 1).any()):
            raise ValidationError("Query numbers are 1-based positions in each client's stream.")
        return c, num

    # -- scoring -------------------------------------------------------------------------

    @torch.inference_mode()
    def _scores(
        self,
        e: torch.Tensor,
        c: torch.Tensor,
        num: torch.Tensor,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean distance of each query to its k nearest earlier queries of its client.

        Neighbours of query ``(c, N)`` are the client's queries numbered in
        ``[max(N − history, start, 1), N − 1]``: those in the ring buffer (earlier calls) and
        those of this call. ``start`` (per query) cuts the history, e.g. at an account switch.
        Nothing is stored. Returns ``inf`` where fewer than ``k`` neighbours exist.
        """
        m = e.shape[0]
        out = torch.full((m,), _INF, device=e.device)
        if m == 0:
            return out
        assert self._buf is not None and self._num is not None
        big = int(num.max()) + 1
        order = torch.argsort(c * big + num)
        cs, ns, es = c[order], num[order], e[order]
        lo = (ns - self.history).clamp_min(1)
        if start is not None:
            lo = torch.maximum(lo, start[order])
        groups, counts = torch.unique_consecutive(cs, return_counts=True)
        g_of = torch.repeat_interleave(torch.arange(groups.numel(), device=e.device), counts)
        offsets = torch.cumsum(counts, 0) - counts
        pos = torch.arange(m, device=e.device) - offsets[g_of]
        s_max = int(counts.max())
        first_n = ns[offsets]  # each group's smallest query number
        first_lo = lo[offsets]
        n_buf = int((first_n - first_lo).clamp(0, self.history).max())
        if n_buf + s_max - 1 < self.k:  # nobody can have k neighbours: skip the distances
            return out
        sorted_scores = torch.full((m,), _INF, device=e.device)
        dim = e.shape[1]
        per_group = (n_buf + s_max) * (s_max + dim)  # distances and gathered candidates
        step = max(1, _MAX_ELEMENTS // max(per_group, 1))
        for g0 in range(0, groups.numel(), step):
            g1 = min(groups.numel(), g0 + step)
            sel = (g_of >= g0) & (g_of < g1)
            gi, pi = g_of[sel] - g0, pos[sel]
            G = g1 - g0
            q = torch.zeros(G, s_max, dim, device=e.device)
            q[gi, pi] = es[sel]
            q_num = torch.zeros(G, s_max, dtype=torch.long, device=e.device)
            q_num[gi, pi] = ns[sel]
            q_lo = torch.full((G, s_max), big, dtype=torch.long, device=e.device)
            q_lo[gi, pi] = lo[sel]
            cand, cand_num = q, q_num
            if n_buf > 0:
                b_num = first_n[g0:g1, None] - 1 - torch.arange(n_buf, device=e.device)
                slot = (b_num - 1).remainder(self.history)
                rows = groups[g0:g1, None]
                stored = self._num[rows, slot]
                b_num = torch.where((b_num >= 1) & (stored == b_num), b_num, 0)
                cand = torch.cat([self._buf[rows, slot], q], dim=1)
                cand_num = torch.cat([b_num, q_num], dim=1)
            dist = torch.cdist(q, cand)
            valid = (cand_num[:, None, :] >= q_lo[:, :, None]) & (
                cand_num[:, None, :] < q_num[:, :, None]
            )
            dist = dist.masked_fill(~valid, _INF)
            kk = min(self.k, dist.shape[-1])
            mean = dist.topk(kk, dim=-1, largest=False).values.mean(-1)
            enough = valid.sum(-1) >= self.k
            score = torch.where(enough, mean, torch.full_like(mean, _INF))
            sorted_scores[sel] = score[gi, pi]
        out[order] = sorted_scores
        return out

    @torch.inference_mode()
    def _remember(self, e: torch.Tensor, c: torch.Tensor, num: torch.Tensor) -> None:
        """Write the queries into their clients' ring buffers (the newest ``history`` win)."""
        if e.shape[0] == 0:
            return
        assert self._buf is not None and self._num is not None
        last = torch.zeros(self._n, dtype=torch.long, device=e.device)
        last.scatter_reduce_(0, c, num, reduce="amax")
        keep = num > last[c] - self.history
        slot = (num[keep] - 1).remainder(self.history)
        self._buf[c[keep], slot] = e[keep]
        self._num[c[keep], slot] = num[keep]

    def _record(self, c: torch.Tensor, num: torch.Tensor, flags: torch.Tensor) -> None:
        self.flagged += torch.bincount(c[flags], minlength=self._n)
        if bool(flags.any()):
            first = torch.full_like(self.detected_at, torch.iinfo(torch.long).max)
            first.scatter_reduce_(0, c[flags], num[flags], reduce="amin")
            new = (self.detected_at == 0) & (first < torch.iinfo(torch.long).max)
            self.detected_at = torch.where(new, first, self.detected_at)

    @torch.inference_mode()
    def score(self, x: torch.Tensor, clients: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """The k-NN mean distance of every query (``inf``: fewer than ``k`` earlier ones).

        Like :meth:`observe` the queries are remembered, but nothing is flagged or banned.
        """
        c, num = self._check(x, clients, numbers)
        e = self.encode(x)
        self._ensure_state(e.shape[1], e.device)
        c, num = c.to(self.device), num.to(self.device)
        s = self._scores(e, c, num)
        self.scored += torch.bincount(c[torch.isfinite(s)], minlength=self._n)
        self._remember(e, c, num)
        return s

    @torch.inference_mode()
    def observe(
        self, x: torch.Tensor, clients: torch.Tensor, numbers: torch.Tensor
    ) -> torch.Tensor:
        """Flag the queries whose k-NN mean distance is below the threshold (QueryMonitor).

        Args:
            x: the queries (m, …) as the service received them.
            clients: the client of each query (m,).
            numbers: each query's 1-based position in its client's stream (m,).

        Returns:
            A bool tensor (m,): ``True`` for flagged queries (and, with ``ban``, for every
            query of a client flagged before).
        """
        if self.threshold is None:
            raise ValidationError(
                "The detector has no threshold yet: call calibrate(benign_images, fpr) or "
                "give threshold=."
            )
        c, num = self._check(x, clients, numbers)
        e = self.encode(x)
        self._ensure_state(e.shape[1], e.device)
        c, num = c.to(self.device), num.to(self.device)
        flags = torch.zeros(c.shape[0], dtype=torch.bool, device=self.device)
        live = (self.detected_at[c] == 0) if self.ban else torch.ones_like(flags)
        if bool(live.any()):
            idx = live.nonzero().flatten()
            s = self._scores(e[idx], c[idx], num[idx])
            self.scored += torch.bincount(c[idx][torch.isfinite(s)], minlength=self._n)
            flags[idx] = s < self.threshold
            self._remember(e[idx], c[idx], num[idx])
        new_flags = flags.clone()
        self._record(c, num, new_flags)
        if self.ban:
            caught = self.detected_at[c]
            flags |= (caught > 0) & (num >= caught)
        return flags

    # -- calibration ---------------------------------------------------------------------

    @torch.inference_mode()
    def stream_scores(self, x: torch.Tensor, *, chunk: int = 512) -> torch.Tensor:
        """Scores of one client sending ``x`` in order (``chunk`` queries per call).

        Uses a scratch copy of the detector: this detector's clients are left alone.
        """
        scratch = self.clone(ban=False)
        scratch.open(1)
        out = []
        for i in range(0, x.shape[0], chunk):
            xb = x[i : i + chunk]
            nums = torch.arange(i + 1, i + 1 + xb.shape[0])
            out.append(scratch.score(xb, torch.zeros_like(nums), nums))
        if self.device is None:
            self.device = scratch.device
        return torch.cat(out) if out else torch.zeros(0)

    def calibrate(
        self, benign: torch.Tensor, fpr: float = 0.001, *, seed: int = 0, chunk: int = 512
    ) -> float:
        """Set the threshold so that about ``fpr`` of a benign stream's queries are flagged.

        The stream is ``benign`` (natural images, e.g. the training set) in a seeded random
        order, sent by one client; every query with ``k`` earlier ones gets its k-NN mean
        distance, and the threshold is the ``fpr`` quantile of those distances: at most
        ``⌊fpr · n⌋`` of them (ties aside) lie strictly below it.

        Returns:
            The threshold (also stored in :attr:`threshold`; the stream's distances are kept
            in :attr:`calibration_scores`).
        """
        if not isinstance(benign, torch.Tensor) or benign.dim() < 2:
            raise ValidationError("benign must be a batch tensor of natural inputs (n, …).")
        f = float(fpr)
        if not 0.0 < f < 1.0:
            raise ValidationError(f"fpr must lie strictly between 0 and 1; got {fpr}.")
        if benign.shape[0] <= self.k:
            raise ValidationError(
                f"The benign stream needs more than k = {self.k} inputs; got {benign.shape[0]}."
            )
        gen = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(benign.shape[0], generator=gen)
        scores = self.stream_scores(benign[order], chunk=chunk)
        finite = torch.sort(scores[torch.isfinite(scores)]).values
        j = min(int(math.floor(f * finite.numel())), finite.numel() - 1)
        self.calibration_scores = finite.cpu()
        self.set_threshold(float(finite[j]))
        return float(self.threshold)

    def __repr__(self) -> str:
        thr = "uncalibrated" if self.threshold is None else f"{self.threshold:.4g}"
        return (
            f"StatefulDetector(k={self.k}, threshold={thr}, history={self.history}, "
            f"encoder={self.encoder_name!r}, clients={self._n})"
        )


# -- the adaptive attacker -------------------------------------------------------------------


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
        c, num = det._check(x, clients, numbers)
        e = det.encode(x)
        det._ensure_state(e.shape[1], e.device)
        self._to(det.device)
        c, num = c.to(det.device), num.to(det.device)
        big = torch.iinfo(torch.long).max
        todo = torch.ones(c.shape[0], dtype=torch.bool, device=det.device)
        # Bans reset an account's history, which changes the scores of the same client's
        # later queries in this call: resolve them one ban per client at a time.
        while bool(todo.any()):
            idx = todo.nonzero().flatten()
            ci, ni = c[idx], num[idx]
            s = det._scores(e[idx], ci, ni, self._account_start(ci, ni))
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
        det._remember(e, c, num)
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


# -- measurement -----------------------------------------------------------------------------


def benign_false_alarms(
    detector: StatefulDetector,
    x_benign: torch.Tensor,
    streams: BenignStreams,
    *,
    seed: int = 0,
    per_call: int = 25,
) -> tuple[pd.DataFrame, dict[str, float], torch.Tensor]:
    """False alarms on honest clients: each sends distinct natural images, none an attack.

    Client ``j`` sends ``streams.queries`` distinct images of ``x_benign`` (held-out test
    images) in a seeded random order, ``per_call`` at a time; every query is scored (no
    ban) so each false alarm counts.

    Returns:
        ``(per_client, metrics, scores)``: one row per client (queries, judged queries,
        flagged queries, first flagged query), the rates, and every query's k-NN distance.
    """
    if detector.threshold is None:
        raise ValidationError("Calibrate the detector before measuring false alarms.")
    n_img = int(x_benign.shape[0])
    length = min(int(streams.queries), n_img)
    clients = int(streams.clients)
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    plan = torch.stack([torch.randperm(n_img, generator=gen)[:length] for _ in range(clients)])
    det = detector.clone(ban=False)
    det.open(clients)
    scores = torch.full((clients, length), _INF)
    thr = float(detector.threshold)
    for i in range(0, length, per_call):
        j = min(length, i + per_call)
        idx = plan[:, i:j].reshape(-1)
        who = torch.arange(clients).repeat_interleave(j - i)
        nums = torch.arange(i + 1, j + 1).repeat(clients)
        s = det.score(x_benign[idx], who, nums).cpu()
        scores[:, i:j] = s.view(clients, j - i)
    flags = scores < thr
    judged = torch.isfinite(scores)
    first = torch.where(
        flags.any(1), flags.float().argmax(1) + 1, torch.zeros(clients, dtype=torch.long)
    )
    per_client = pd.DataFrame(
        {
            "client": range(clients),
            "queries": length,
            "judged": judged.sum(1).numpy(),
            "flagged": flags.sum(1).numpy(),
            "first_flag": first.numpy(),
        }
    )
    n_judged = int(judged.sum())
    metrics = {
        "benign_queries": int(clients * length),
        "benign_judged": n_judged,
        "benign_fpr": float(flags.sum()) / n_judged if n_judged else 0.0,
        "benign_clients_caught": float(flags.any(1).float().mean()),
    }
    return per_client, metrics, scores[judged]


ATTACK_TITLES = {"simba_pixel": "SimBA (pixel)", "simba_dct": "SimBA (DCT)", "zoo": "ZOO"}


def _budget_grid(budget: int, points: int = 30) -> list[int]:
    grid = {int(round(v)) for v in torch.logspace(0, math.log10(max(budget, 1)), points).tolist()}
    return sorted(grid | {int(budget)})


def _summary_row(
    title: str,
    res: Any,
    budget: int,
    caught: torch.Tensor,
    resume: AccountRotation,
    rotate: AccountRotation,
    chunk: int,
) -> dict[str, Any]:
    s, q = res.success.cpu(), res.queries.cpu()
    ok = success_within(s, q, budget)
    ok_def = success_within(s, q, budget, caught_at=caught)
    detected = caught > 0
    delays = caught[detected].float()
    used_rot = rotate.accounts.cpu()
    used_res = resume.accounts.cpu()
    return {
        "attack": title,
        "n": int(s.numel()),
        "success_no_defense": float(ok.float().mean()),
        "success_before_detection": float(ok_def.float().mean()),
        "detected": float(detected.float().mean()),
        "delay_median": float(delays.median()) if delays.numel() else float("nan"),
        "delay_mean": float(delays.mean()) if delays.numel() else float("nan"),
        "delay_min": int(delays.min()) if delays.numel() else 0,
        "delay_max": int(delays.max()) if delays.numel() else 0,
        "queries_median": float(q.float().median()) if q.numel() else float("nan"),
        "accounts_resume_mean": float(used_res.float().mean()),
        "accounts_resume_max": int(used_res.max()) if used_res.numel() else 0,
        "accounts_rotate_mean": float(used_rot.float().mean()),
        "accounts_rotate_max": int(used_rot.max()) if used_rot.numel() else 0,
        "accounts_rotate_total": int(used_rot.sum()),
        "rotate_bans": int(rotate.bans.sum()),
        "per_account": int(chunk),
        "seconds": float(res.seconds),
    }


def evaluate_query_limit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: QueryLimit,
    attacks: Mapping[str, Any],
    calibration_images: torch.Tensor,
    benign_images: torch.Tensor,
    benign: BenignStreams | None = None,
    adaptive: AdaptiveAttacker | None = None,
    bounds: tuple[Any, Any] | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Run black-box attacks against a service with a query budget and a stateful detector.

    Each attack runs once through a :class:`QueryModel` with the budget and three monitors:
    the detector as deployed (a client is banned at its first flag; its success counts only
    before that: :func:`~robustcore.evaluation.queries.success_within` with
    ``caught_at=api.detected_at``) and two what-if copies for the adaptive attacker
    (:class:`AccountRotation`): a new account after every ban (the paper's count of
    detections) and, in addition, proactively after ``per_account`` queries. With query
    blinding (``adaptive.blinding > 0``) each attack runs a second time with noisy queries.

    Args:
        model: the target (logits).
        x, y: the images to attack and their labels (client ``i`` attacks image ``i``).
        config: budget and detector settings.
        attacks: name → black-box attack (``SimBA``/``ZOO`` instances); names as in
            :data:`ATTACK_TITLES` get readable titles.
        calibration_images: natural images for the threshold (the training set).
        benign_images: held-out natural images for the benign clients (the test set).
        benign: benign clients and stream length (default :class:`BenignStreams`).
        adaptive: the adaptive attacker (default :class:`AdaptiveAttacker`).
        bounds: data bounds for the attacks and the blinding noise (default ``(0, 1)``).
        seed: calibration order and benign streams.
        progress: ``progress(fraction, message)``; it may raise to cancel.

    Returns:
        ``(metrics, tables)``: tables ``summary`` (one row per attack), ``curves`` (success
        against budget per attack and defense), ``per_image``, ``benign`` (per benign
        client), ``scores`` (k-NN distances of benign queries) and, with blinding,
        ``blinding``.
    """
    if not attacks:
        raise ValidationError("Choose at least one attack.")
    benign = benign or BenignStreams()
    adaptive = adaptive or AdaptiveAttacker()
    report = progress or (lambda f, m: None)
    bounds = bounds if bounds is not None else (0.0, 1.0)
    t0 = time.perf_counter()
    device = next((p.device for p in model.parameters()), get_device())

    report(0.0, "calibrating the detector on benign training images")
    detector = StatefulDetector.from_config(config, model, device=device)
    n_cal = min(int(config.calibration), int(calibration_images.shape[0]))
    gen = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(calibration_images.shape[0], generator=gen)[:n_cal]
    threshold = detector.calibrate(calibration_images[pick], config.fpr, seed=seed)
    cal = detector.calibration_scores
    cal_fpr = float((cal < threshold).float().mean()) if cal is not None and cal.numel() else 0.0

    report(0.06, "benign clients")
    benign_table, benign_metrics, benign_scores = benign_false_alarms(
        detector, benign_images, benign, seed=seed
    )
    chunk = adaptive.chunk(config.k)
    n_runs = len(attacks) * (2 if adaptive.blinding > 0 else 1)
    share = 0.9 / max(n_runs, 1)
    summary, curves, per_image, blind_rows = [], [], [], []
    grid = _budget_grid(config.budget)
    run_i = 0
    for name, attack in attacks.items():
        title = ATTACK_TITLES.get(name, name)
        base = 0.08 + share * run_i
        run_i += 1
        naive = detector.clone(ban=True)
        resume = AccountRotation(detector, None)
        rotate = AccountRotation(detector, chunk)
        api = QueryModel(model, budget=config.budget, monitors=[naive, resume, rotate])

        def sub(f: float, m: str, base: float = base, title: str = title) -> None:
            report(min(0.98, base + share * f), f"{title}: {m}")

        res = attack.run(api, x, y, bounds=bounds, progress=sub)
        # when the deployed detector caught each client (the what-if monitors never flag)
        caught = api.detected_at.cpu()
        s, q = res.success.cpu(), res.queries.cpu()
        summary.append(_summary_row(title, res, config.budget, caught, resume, rotate, chunk))
        for defense, caught_at in (("no defense", None), ("stateful detector", caught)):
            df = success_vs_queries(s, q, grid, caught_at=caught_at, label=title)
            curves.append(df.assign(attack=title, defense=defense))
        per_image.append(
            pd.DataFrame(
                {
                    "attack": title,
                    "image": range(int(s.numel())),
                    "label": y.cpu().numpy(),
                    "success": s.numpy(),
                    "queries": q.numpy(),
                    "detected_at": caught.numpy(),
                    "success_before_detection": success_within(
                        s, q, config.budget, caught_at=caught
                    ).numpy(),
                    "accounts_resume": resume.accounts.cpu().numpy(),
                    "accounts_rotate": rotate.accounts.cpu().numpy(),
                    "bans_rotate": rotate.bans.cpu().numpy(),
                    "l2": res.l2.cpu().numpy(),
                }
            )
        )
        if adaptive.blinding > 0:
            base = 0.08 + share * run_i
            run_i += 1
            blind_det = detector.clone(ban=True)
            bapi = BlindedQueryModel(
                model,
                sigma=adaptive.blinding,
                seed=seed,
                bounds=bounds,
                budget=config.budget,
                monitors=[blind_det],
            )

            def bsub(f: float, m: str, base: float = base, title: str = title) -> None:
                report(min(0.98, base + share * f), f"{title} with blinding: {m}")

            bres = attack.run(bapi, x, y, bounds=bounds, progress=bsub)
            bs, bq = bres.success.cpu(), bres.queries.cpu()
            bc = blind_det.detected_at.cpu()
            # A blinded success must survive without the noise: re-check the clean point
            # with the undefended model (the attacker's final image is what it submits).
            with torch.inference_mode():
                pred = model(bres.x_adv.to(device)).argmax(1).cpu()
            real = bs & (pred != y.cpu())
            hit = bc[bc > 0].float()
            blind_rows.append(
                {
                    "attack": title,
                    "sigma": float(adaptive.blinding),
                    "success_no_defense": float(
                        success_within(real, bq, config.budget).float().mean()
                    ),
                    "success_before_detection": float(
                        success_within(real, bq, config.budget, caught_at=bc).float().mean()
                    ),
                    "detected": float((bc > 0).float().mean()),
                    "delay_median": float(hit.median()) if hit.numel() else float("nan"),
                }
            )
            curves.append(
                success_vs_queries(real, bq, grid, caught_at=bc, label=title).assign(
                    attack=title, defense="blinded, stateful detector"
                )
            )
    report(0.99, "tables")
    metrics: dict[str, Any] = {
        "threshold": threshold,
        "calibration_queries": int(cal.numel()) if cal is not None else 0,
        "calibration_fpr": cal_fpr,
        "target_fpr": float(config.fpr),
        "budget": int(config.budget),
        "k": int(config.k),
        "encoder": config.encoder,
        "per_account": int(chunk),
        "n": int(x.shape[0]),
        "seconds": time.perf_counter() - t0,
        **benign_metrics,
    }
    score_sample = benign_scores[:5000].numpy()
    tables = {
        "summary": pd.DataFrame(summary),
        "curves": pd.concat(curves, ignore_index=True),
        "per_image": pd.concat(per_image, ignore_index=True),
        "benign": benign_table,
        "scores": pd.DataFrame({"distance": score_sample}),
    }
    if blind_rows:
        tables["blinding"] = pd.DataFrame(blind_rows)
    return metrics, tables
