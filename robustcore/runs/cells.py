"""Cells: the parts of a run, each computed once per content key and kept in the store.

A run made of independent parts (the White-box page: the clean accuracy, one ε sweep per
attack, C&W, each sanity check) can name every part by a *cell spec*: everything that
part's numbers depend on and nothing else — the model (its target spec and a hash of its
weights, :func:`model_fingerprint`), the dataset's content fingerprint, the exact test
inputs, the part's own parameters and seed. The cell's key is the spec's key
(:func:`~robustcore.runs.spec.spec_key`), and its numbers live in the ``cells`` table of
the result store (:meth:`ResultStore.save_cell`), so they survive restarts. A run then
assembles its result from stored cells and computes only the missing ones: a what-if that
changes PGD's steps recomputes PGD and the checks that depend on it, nothing else.

The job runner opens its cell cache around every job (:func:`using_cells`), so an
experiment's ``run`` finds it with :func:`current_cells`; a run called directly (tests,
notebooks) computes every part unless it is given a cache. A forced job
(``submit(..., force=True)``, the CLI's ``--force``) computes every cell again and stores
the new ones in place of the old.

Two jobs that need the same missing cell at the same time (a run and its what-if,
submitted together) compute it once: the second waits for the first and reuses its cell;
if the first fails or is cancelled, the second computes it itself. Within one process the
jobs of a runner share an event per cell; across app processes on one data folder, the job
about to compute a cell claims it in the store (a lease with a heartbeat,
:mod:`.leases`), and a job of another process waits for that cell, or takes the claim over
when its holder died. A forced job's cells are computed without a claim.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import leases
from .spec import spec_key
from .store import ResultStore

logger = logging.getLogger(__name__)

ComputeFn = Callable[[], tuple[Mapping[str, Any], Mapping[str, np.ndarray]]]
"""What computes a missing cell: returns its metrics (plain JSON values) and arrays."""

WAIT_POLL_S = 0.25


@dataclass
class Cell:
    """A cell's content: ``metrics`` (plain JSON values) and ``arrays`` (numpy).

    ``reused`` says whether it came from the store (or another job computing it at the
    same time) rather than being computed by this call.
    """

    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    reused: bool = False


def _plain(metrics: Mapping[str, Any]) -> dict[str, Any]:
    # The JSON round trip the store makes: a fresh cell and a stored one give equal values.
    return json.loads(json.dumps(dict(metrics)))


class CellCache:
    """The cells of one result store, shared by the jobs of one runner.

    Args:
        store: where cells are kept.
        reuse: ``False`` computes every cell again (and replaces the stored one).
    """

    def __init__(self, store: ResultStore, *, reuse: bool = True) -> None:
        self.store = store
        self.reuse = reuse
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Event] = {}

    def forcing(self) -> CellCache:
        """The same cache for a forced job: nothing is reused, every cell is computed."""
        other = CellCache(self.store, reuse=False)
        other._lock, other._inflight = self._lock, self._inflight
        return other

    def key(self, spec: Mapping[str, Any]) -> str:
        return spec_key(spec)

    def _stored(self, key: str) -> Cell | None:
        record = self.store.get_cell(key)
        if record is None:
            return None
        return Cell(metrics=record.metrics, arrays=record.arrays, reused=True)

    def get(self, spec: Mapping[str, Any]) -> Cell | None:
        """The stored cell of ``spec``, or None (always None when not reusing)."""
        return self._stored(self.key(spec)) if self.reuse else None

    def get_or_compute(
        self,
        spec: Mapping[str, Any],
        compute: ComputeFn,
        *,
        waiting: Callable[[], None] | None = None,
    ) -> Cell:
        """The cell of ``spec``: stored, computed by another job right now (of this
        process or another one; waited for), or computed here by ``compute`` and stored.

        ``waiting`` is called every quarter second while another job computes the cell
        (a progress callback, which raises when the waiting job is cancelled).
        """
        key = self.key(spec)
        if not self.reuse:
            return self._compute(key, spec, compute)
        while True:
            hit = self._stored(key)
            if hit is not None:
                return hit
            with self._lock:
                event = self._inflight.get(key)
                mine = event is None
                if mine:
                    event = self._inflight[key] = threading.Event()
            assert event is not None
            if mine:
                break
            while not event.wait(WAIT_POLL_S):
                if waiting is not None:
                    waiting()
            # The other job is done (or failed): look again.
        try:
            # The first job of this process to want the cell: claim it across processes.
            # The stored cell is looked at again once claimed (saved between our look and
            # our claim); another process computing it is waited for.
            with leases.hold(
                self.store,
                leases.cell_lease_key(key),
                ready=lambda: self._stored(key),
                waiting=waiting,
            ) as hit:
                return hit if hit is not None else self._compute(key, spec, compute)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()

    def _compute(self, key: str, spec: Mapping[str, Any], compute: ComputeFn) -> Cell:
        begin = time.perf_counter()
        metrics, arrays = compute()
        cell = Cell(metrics=_plain(metrics), arrays=dict(arrays), reused=False)
        try:
            self.store.save_cell(
                key, spec, cell.metrics, cell.arrays, seconds=time.perf_counter() - begin
            )
        except Exception:  # a cell that cannot be kept is still a result
            logger.exception("Could not store cell %s (%s)", key, spec.get("kind"))
        return cell


def get_or_compute(
    cells: CellCache | None,
    spec: Mapping[str, Any],
    compute: ComputeFn,
    *,
    waiting: Callable[[], None] | None = None,
) -> Cell:
    """:meth:`CellCache.get_or_compute`, or just ``compute`` when there is no cache."""
    if cells is None:
        metrics, arrays = compute()
        return Cell(metrics=_plain(metrics), arrays=dict(arrays))
    return cells.get_or_compute(spec, compute, waiting=waiting)


_current: ContextVar[CellCache | None] = ContextVar("robustcore_cells", default=None)


def current_cells() -> CellCache | None:
    """The cell cache of the job running in this thread (None outside the job runner)."""
    return _current.get()


@contextlib.contextmanager
def using_cells(cells: CellCache | None) -> Iterator[CellCache | None]:
    """Make ``cells`` the :func:`current_cells` of this thread for the block."""
    token = _current.set(cells)
    try:
        yield cells
    finally:
        _current.reset(token)


def model_fingerprint(model: Any) -> str:
    """A content hash of a module: its class, and every parameter's and buffer's name,
    shape, dtype and values (20 hex digits). Equal weights give equal fingerprints."""
    import torch

    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def inputs_fingerprint(indices: Any) -> str:
    """A hash of the test-input indices a cell uses (a tensor or array of ints)."""
    values = np.asarray(indices.cpu() if hasattr(indices, "cpu") else indices, dtype=np.int64)
    return hashlib.sha256(values.tobytes()).hexdigest()[:20]
