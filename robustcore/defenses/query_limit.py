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

What is here (the defense; the attackers who know it are in
:mod:`robustcore.attacks.evasion.adaptive`, and the page's measurement is the
``query_limitation`` experiment, :mod:`robustcore.experiments.query_limitation`):

* :class:`QueryLimit` – the declaration (budget, ``k``, target false-positive rate,
  history length, encoder): one parameter set drives the form, the cache key and the
  report. The per-client budget itself is enforced by
  :class:`~robustcore.threat.QueryModel` (``budget=``).
* :class:`StatefulDetector` – the detector, a :class:`~robustcore.threat.QueryMonitor`:
  per client a ring buffer of its last ``history`` query encodings; every query is
  compared with the earlier queries of the same client (including earlier queries of the
  same call, in order), all clients and queries of a call at once on the device (batched
  ``cdist`` with a causal mask).
* :meth:`StatefulDetector.calibrate` – the paper's threshold: a benign stream of training
  images, the ``fpr`` quantile of its k-NN distances.
* :class:`BenignStreams` and :func:`benign_false_alarms` – honest clients sending distinct
  held-out images, and how often the detector flags them.

Encoders. The paper compares queries in the space of a similarity encoder trained with a
contrastive loss (and, as a baseline, in pixel space). Here ``"pixels"`` average-pools each
image to ``pool × pool`` per channel (tabular rows are used as they are): no training, hard
to fool with small pixel noise (pooling averages it away), and what the paper's released
``L2Detector`` does without the pooling. ``"features"`` uses the target's own penultimate
activations (:mod:`robustcore.models.features`): a learned space at no extra training
cost, but one the attack itself moves through, so it is offered for comparison rather than
as the default.

Example::

    from robustcore.attacks.evasion import SimBA
    from robustcore.defenses.query_limit import QueryLimit, StatefulDetector
    from robustcore.threat import QueryModel

    cfg = QueryLimit(budget=2000, k=50, fpr=0.001)
    det = StatefulDetector.from_config(cfg, model)
    det.calibrate(ds.x_train, cfg.fpr)
    api = QueryModel(model, budget=cfg.budget, monitors=[det])
    res = SimBA(basis="dct").run(api, x, y, eps=0.2)   # the service's budget ends each image
    api.detected_at      # per image: the query at which its client was caught (0: never)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError, ValidationError
from ..params import Configurable, param

ENCODERS = ("pixels", "features")
"""How queries are compared: pooled pixels, or the target's penultimate activations."""

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

    # -- replaying the detector (for what-if monitors such as account rotation) ------------

    def prepare(
        self, x: torch.Tensor, clients: torch.Tensor, numbers: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Check a query batch, encode it and return ``(encodings, clients, numbers)`` on
        the detector's device (its buffers allocated), for :meth:`knn_scores` and
        :meth:`remember`."""
        c, num = self._check(x, clients, numbers)
        e = self.encode(x)
        self._ensure_state(e.shape[1], e.device)
        return e, c.to(self.device), num.to(self.device)

    def knn_scores(
        self,
        e: torch.Tensor,
        clients: torch.Tensor,
        numbers: torch.Tensor,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The k-NN mean distance of each prepared query to its client's earlier queries
        numbered from ``start`` on (per query; e.g. where an account began), without
        remembering them. ``inf`` with fewer than ``k`` such queries."""
        return self._scores(e, clients, numbers, start)

    def remember(self, e: torch.Tensor, clients: torch.Tensor, numbers: torch.Tensor) -> None:
        """Store prepared queries in their clients' histories (the newest ``history`` win)."""
        self._remember(e, clients, numbers)

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
