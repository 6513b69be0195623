"""Leases: across app processes, a spec being computed is claimed so it is computed once.

Several app processes (two ``streamlit run`` on one data folder, the CLI beside the app)
share one result store. Within a process the job runner and the cell cache already compute
a spec once (one :class:`~robustcore.runs.runner.Job`, one event per cell); across
processes they claim the key in the store first (:meth:`ResultStore.claim`):

* The process that gets the claim computes. A heartbeat thread renews its claim every
  :data:`HEARTBEAT_S` seconds, and the claim is released once the outcome is stored (also
  when the computation fails or is cancelled).
* A process that finds the key claimed waits, looking in the store every :data:`POLL_S`
  seconds. When the result appears it uses it; when the holder released the key without a
  result (it failed or was cancelled) it claims the key and computes it itself.
* A claim whose heartbeat is older than :data:`STALE_AFTER_S` seconds belongs to a process
  that died (killed, out of memory, the machine slept); the next claimer takes it over and
  computes. A holder that outlived its claim (it hung longer than that) keeps computing
  and stores its result too, so the spec may then be computed twice, never lost.

The three constants are read each time a lease is made, so tests may set them small.
Lease keys are prefixed by what they guard (``"run:<key>"``, ``"cell:<key>"``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

from .store import ResultStore

logger = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
"""How often a holder renews its claim (seconds)."""

STALE_AFTER_S = 15.0
"""A claim not renewed for this long belongs to a dead process and is taken over."""

POLL_S = 0.25
"""How often a process waiting for another one's result looks in the store (seconds)."""

T = TypeVar("T")


def new_holder() -> str:
    """A holder id unique to this process and this claim: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_lease_key(key: str) -> str:
    """The lease key guarding the computation of run ``key``."""
    return f"run:{key}"


def cell_lease_key(key: str) -> str:
    """The lease key guarding the computation of cell ``key``."""
    return f"cell:{key}"


class Lease:
    """One claim of ``key`` in ``store``, kept alive by a heartbeat thread while held.

    Args:
        store: the result store holding the claims.
        key: what is claimed.
        holder: the holder id (default: a new :func:`new_holder`).
        heartbeat_s: seconds between heartbeats (default :data:`HEARTBEAT_S`).
        stale_after: seconds after which another holder's claim counts as dead (default
            :data:`STALE_AFTER_S`).
    """

    def __init__(
        self,
        store: ResultStore,
        key: str,
        *,
        holder: str | None = None,
        heartbeat_s: float | None = None,
        stale_after: float | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.holder = holder if holder is not None else new_holder()
        self.heartbeat_s = float(heartbeat_s if heartbeat_s is not None else HEARTBEAT_S)
        self.stale_after = float(stale_after if stale_after is not None else STALE_AFTER_S)
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._lost = False

    def __repr__(self) -> str:
        return f"Lease(key={self.key!r}, holder={self.holder!r}, held={self.held})"

    @property
    def held(self) -> bool:
        """True while this lease is claimed here (and not known to be lost)."""
        with self._lock:
            return self._thread is not None and not self._lost

    @property
    def lost(self) -> bool:
        """True when a heartbeat found the claim taken over by another holder."""
        with self._lock:
            return self._lost

    def claim(self) -> bool:
        """Claim the key (see :meth:`ResultStore.claim`) and start the heartbeat.

        Returns:
            True if this lease holds the key now; False if another live holder does.
        """
        before = self.store.lease_holder(self.key)
        if not self.store.claim(self.key, self.holder, stale_after=self.stale_after):
            return False
        if before is not None and before.holder != self.holder and before.age > self.stale_after:
            logger.warning(
                "Took over %s from %s (pid %s on %s), silent for %.1f s: it is computed here",
                self.key,
                before.holder,
                before.pid,
                before.host,
                before.age,
            )
        with self._lock:
            self._lost = False
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._beat,
                    args=(self._stop,),
                    name=f"robustcore-lease-{self.key[:24]}",
                    daemon=True,
                )
                self._thread.start()
        return True

    def release(self) -> None:
        """Stop the heartbeat and give the key up (a claim taken over by another holder
        is left alone). Errors are logged, never raised."""
        with self._lock:
            stop, thread = self._stop, self._thread
            self._stop = self._thread = None
        if stop is not None:
            stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        try:
            self.store.release(self.key, self.holder)
        except Exception:
            logger.warning("Could not release %s", self.key, exc_info=True)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            try:
                renewed = self.store.renew(self.key, self.holder)
            except Exception:  # a busy or closed store: try again at the next beat
                logger.warning("Could not renew %s", self.key, exc_info=True)
                continue
            if not renewed and not stop.is_set():
                with self._lock:
                    self._lost = True
                logger.warning(
                    "Lost %s: its heartbeat went stale and another process took it over; "
                    "it may be computed twice",
                    self.key,
                )
                return


@contextlib.contextmanager
def hold(
    store: ResultStore,
    key: str,
    *,
    ready: Callable[[], T | None] | None = None,
    waiting: Callable[[], None] | None = None,
) -> Iterator[T | None]:
    """Wait until ``key`` is ours to compute, or its result is ready.

    Yields ``ready()``'s value as soon as it is not None (nothing is held then), or None
    once this process holds the claim of ``key``: the block computes and stores the result,
    and the claim is released when the block ends (also on an exception). ``ready`` is
    asked again right after the claim is taken, so a result stored by a holder that just
    finished is never computed again.

    Args:
        store: the result store holding the claims.
        key: the lease key (:func:`run_lease_key`, :func:`cell_lease_key`).
        ready: returns the stored result, or None while there is none (``None``: always
            compute once the claim is ours, as a forced run does).
        waiting: called every :data:`POLL_S` seconds while another process holds the key
            (a progress callback; whatever it raises, e.g. a cancellation, ends the wait).
    """
    lease = Lease(store, key)
    found = _claim_or_result(lease, ready, waiting)
    if found is not None:
        yield found
        return
    try:
        yield None
    finally:
        lease.release()


def _claim_or_result(
    lease: Lease,
    ready: Callable[[], T | None] | None,
    waiting: Callable[[], None] | None,
) -> T | None:
    """None once ``lease`` is claimed (and no result is there), else the result."""
    while True:
        if ready is not None:
            found = ready()
            if found is not None:
                return found
        if lease.claim():
            if ready is None:
                return None
            try:
                found = ready()
            except BaseException:
                lease.release()
                raise
            if found is not None:
                lease.release()
            return found
        if waiting is not None:
            waiting()
        time.sleep(POLL_S)
