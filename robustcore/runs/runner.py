"""Background jobs: compute a spec once, keep the result, serve it again from the store.

:class:`JobRunner` runs job functions on a small thread pool. A job is described by a spec
(see :mod:`robustcore.runs.spec`) and computed by a function ``fn(ctx) -> RunResult``.

* A spec whose result is already stored is not computed again: ``submit`` answers at once
  with a finished job marked ``from_store`` (unless ``force=True``).
* A spec that is being computed right now is not started twice: a second ``submit`` of the
  same spec gets the very same :class:`Job` object, so two browser sessions asking for the
  same thing share one computation.
* Nor by another app process on the same data folder (another ``streamlit run``, the CLI):
  a job claims its spec's key in the store before computing it (a lease with a heartbeat,
  :mod:`.leases`). A job whose key another live process holds waits for that process
  (message "Computed by another app process; waiting for its result"; Cancel still works)
  and then serves its result, marked ``from_store``. If that process fails or is
  cancelled the waiting job computes the spec itself; if it dies (no heartbeat for
  :data:`.leases.STALE_AFTER_S` seconds) its claim is taken over. A forced job claims the
  key too: it waits for another process computing the spec, then computes it again.
* Every run ends in the store: ``done`` with its metrics, tables and artifacts; ``failed``
  with its error text; or ``cancelled``. Only ``done`` runs are served as results. A failed
  or cancelled re-computation (``force=True``) never replaces a good stored result.

Parts of runs (:mod:`.cells`) are shared the same way: every job runs with the runner's
cell cache as its :func:`~.cells.current_cells`, so an experiment built from cells reuses
those stored by earlier runs (or computed by another job, of this process or another one,
right now) and computes only the missing ones; a forced job computes every cell again.

Cancelling is cooperative: :meth:`Job.cancel` only raises a flag. A job that has not
started yet is cancelled at once and its function never runs; a running function stops
the next time it calls ``ctx.progress(...)`` or ``ctx.check_cancelled()``, which raise
:class:`~robustcore.errors.JobCancelled`. A function that never calls them runs to the end.

Nothing here imports Streamlit: a page polls ``job.state``, ``job.progress`` and
``job.message`` (safe to read from any thread) or calls ``job.wait()``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import JobCancelled, RunError, ValidationError
from ..paths import home
from ..versions import library_versions
from . import leases
from .cells import CellCache, using_cells
from .spec import checked_plain, spec_key
from .store import ResultStore, RunRecord, RunResult

logger = logging.getLogger(__name__)

JobState = str
"""One of ``queued``, ``running``, ``done``, ``failed``, ``cancelled``."""

TERMINAL_STATES = frozenset({"done", "failed", "cancelled"})

JobFunction = Callable[["JobContext"], RunResult]

WAITING_FOR_OTHER = "Computed by another app process; waiting for its result"
"""The message of a job waiting for another process that computes the same spec."""

WAITING_FORCED = "Another app process is computing this spec; the forced run starts after it"
"""The message of a forced job waiting for another process to finish the same spec."""

COMPUTED_ELSEWHERE = "Computed by another app process"
"""The final message of a job whose result another process computed (``from_store``)."""


class Job:
    """One computation of a spec, as seen from outside.

    All attributes are safe to read from any thread while the job runs.

    Attributes:
        key: the spec key.
        spec: the spec (a plain JSON copy: tuples became lists).
        state: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
        progress: how far along the job is, between 0 and 1.
        message: the last progress message.
        error: ``"ExcType: message"`` when the job failed, else None.
        traceback: the formatted traceback of a failure, else None.
        from_store: True when nothing was computed by this job: the result was already
            stored, or another app process computed it while this job waited.
        created: when the job was submitted (``time.time()``).
        started: when the function began (for a stored result: when it began back then).
        finished: when the job reached its final state.
        result: the stored :class:`RunRecord` once the job is ``done``, else None. It is
            read back from the store, so it is exactly what other sessions will see.
    """

    def __init__(self, key: str, spec: dict[str, Any]) -> None:
        self.key = key
        self.spec = spec
        self.created = time.time()
        self._lock = threading.Lock()
        self._cancel_event = threading.Event()
        self._done_event = threading.Event()
        self._state: JobState = "queued"
        self._progress = 0.0
        self._message = "Waiting for a free worker"
        self._error: str | None = None
        self._traceback: str | None = None
        self._from_store = False
        self._started: float | None = None
        self._finished: float | None = None
        self._result: RunRecord | None = None
        self._future: Future[None] | None = None
        self._on_queued_cancel: Callable[[Job], None] | None = None
        self._force = False  # submitted with force=True: its cells are computed again
        self.estimate: float | None = None
        """Seconds the run should take on this machine, when its experiment says
        (:meth:`~robustcore.experiments.Experiment.estimate`); set by whoever submits."""

    @classmethod
    def _from_record(cls, record: RunRecord) -> Job:
        job = cls(record.key, record.spec)
        job._state = "done"
        job._progress = 1.0
        job._message = "Loaded from the result store"
        job._from_store = True
        job._started = record.finished - record.seconds
        job._finished = record.finished
        job._result = record
        job._done_event.set()
        return job

    def __repr__(self) -> str:
        return (
            f"Job(key={self.key!r}, kind={self.spec.get('kind')!r}, state={self.state!r}, "
            f"progress={self.progress:.2f}, from_store={self.from_store})"
        )

    # -- read-only views -----------------------------------------------------------

    @property
    def state(self) -> JobState:
        with self._lock:
            return self._state

    @property
    def progress(self) -> float:
        with self._lock:
            return self._progress

    @property
    def message(self) -> str:
        with self._lock:
            return self._message

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    @property
    def traceback(self) -> str | None:
        with self._lock:
            return self._traceback

    @property
    def from_store(self) -> bool:
        return self._from_store

    @property
    def started(self) -> float | None:
        with self._lock:
            return self._started

    @property
    def finished(self) -> float | None:
        with self._lock:
            return self._finished

    @property
    def result(self) -> RunRecord | None:
        with self._lock:
            return self._result

    @property
    def record(self) -> RunRecord | None:
        """Same as :attr:`result`."""
        return self.result

    @property
    def done(self) -> bool:
        """True once the job is ``done``, ``failed`` or ``cancelled``."""
        return self.state in TERMINAL_STATES

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel_event.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds the function has run so far (or ran in total); 0 before it starts."""
        with self._lock:
            if self._started is None:
                return 0.0
            end = self._finished if self._finished is not None else time.time()
            return max(0.0, end - self._started)

    def snapshot(self) -> dict[str, Any]:
        """The job's visible fields read together, at one moment (handy for a UI poll)."""
        with self._lock:
            return {
                "key": self.key,
                "kind": self.spec.get("kind"),
                "state": self._state,
                "progress": self._progress,
                "message": self._message,
                "error": self._error,
                "from_store": self._from_store,
                "created": self.created,
                "started": self._started,
                "finished": self._finished,
            }

    # -- control -------------------------------------------------------------------

    def cancel(self) -> bool:
        """Ask the job to stop.

        A job still waiting for a worker is cancelled at once (its function never runs).
        A running job stops at its next ``ctx.progress``/``ctx.check_cancelled`` call.

        Returns:
            False if the job had already finished, True otherwise.
        """
        with self._lock:
            if self._state in TERMINAL_STATES:
                return False
            self._cancel_event.set()
            if self._state != "queued":
                self._message = "Cancelling…"
                return True
            self._state = "cancelled"
            self._message = "Cancelled before it started"
            self._finished = time.time()
            future, callback = self._future, self._on_queued_cancel
        if future is not None:
            future.cancel()
        try:
            if callback is not None:
                callback(self)
        finally:
            self._done_event.set()
        return True

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is finished (or ``timeout`` seconds passed); returns self."""
        self._done_event.wait(timeout)
        return self

    # -- used by the runner --------------------------------------------------------

    def _try_start(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
            self._started = time.time()
            self._message = "Started"
            return True

    def _set_progress(self, fraction: float, message: str) -> None:
        with self._lock:
            if self._state != "running":
                return
            self._progress = fraction
            if message:
                self._message = message

    def _set_final(
        self,
        state: JobState,
        *,
        message: str,
        result: RunRecord | None = None,
        error: str | None = None,
        tb: str | None = None,
    ) -> None:
        with self._lock:
            self._state = state
            self._message = message
            self._finished = time.time()
            self._result = result
            self._error = error
            self._traceback = tb
            if state == "done":
                self._progress = 1.0


class JobContext:
    """What a job function gets: its spec, its seed, and a way to report progress.

    Its methods are meant to be called from the job's own (worker) thread.
    """

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def spec(self) -> dict[str, Any]:
        """The job's spec (plain JSON values: tuples became lists)."""
        return self._job.spec

    @property
    def key(self) -> str:
        """The spec key."""
        return self._job.key

    @property
    def seed(self) -> int:
        """``spec["seed"]``, or 0 when the spec has none."""
        return self._job.spec.get("seed", 0)

    @property
    def cancelled(self) -> bool:
        """True once the user asked to cancel this job."""
        return self._job.cancel_requested

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the user asked to cancel this job."""
        if self._job.cancel_requested:
            raise JobCancelled(f"job {self._job.key} ({self.spec.get('kind')}) was cancelled")

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the job is (clamped to [0, 1]) and stop if it was cancelled.

        Raises:
            JobCancelled: the user asked to cancel; let it propagate out of the function.
        """
        try:
            value = float(fraction)
        except (TypeError, ValueError):
            value = math.nan
        if math.isnan(value):
            value = self._job.progress
        self._job._set_progress(min(1.0, max(0.0, value)), str(message))
        self.check_cancelled()


def _is_cancellation(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, JobCancelled):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class JobRunner:
    """Runs job functions on a thread pool and keeps their results in a :class:`ResultStore`.

    Args:
        store: where results go; ``None`` opens the default store under ROBUSTCORE_HOME.
        max_workers: how many jobs compute at the same time; others wait in a queue.
    """

    def __init__(self, store: ResultStore | None = None, max_workers: int = 2) -> None:
        if int(max_workers) < 1:
            raise ValidationError(f"max_workers must be at least 1, got {max_workers}")
        self.store = store if store is not None else ResultStore()
        self.cells = CellCache(self.store)
        self.max_workers = int(max_workers)
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="robustcore-job"
        )
        self._lock = threading.Lock()
        self._inflight: dict[str, Job] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"JobRunner(store={self.store!r}, max_workers={self.max_workers})"

    # -- public --------------------------------------------------------------------

    def submit(self, experiment: Any, dataset: Any, *, force: bool = False) -> Job:
        """Get the job that computes ``experiment`` (a :class:`~robustcore.experiments.
        Experiment`) on ``dataset``: its spec comes from the experiment's own fields and its
        job function from :meth:`Experiment.job`, so the key always names what runs.

        Served from the store, shared with an identical job in flight, or queued, as in
        :meth:`submit_job`.
        """
        if isinstance(experiment, Mapping):  # the low-level form: (spec, fn)
            return self.submit_job(experiment, dataset, force=force)
        if not (hasattr(experiment, "spec") and hasattr(experiment, "job")):
            raise ValidationError(
                f"submit() takes an Experiment and a Dataset, got {type(experiment).__name__}."
            )
        return self.submit_job(experiment.spec(dataset), experiment.job(dataset), force=force)

    def submit_job(self, spec: Mapping[str, Any], fn: JobFunction, *, force: bool = False) -> Job:
        """Get the job that computes a hand-made ``spec`` with ``fn`` (for tools and tests;
        pages and the CLI submit experiments).

        1. Unless ``force``, a result already stored is returned at once as a finished
           job with ``from_store=True``; nothing runs.
        2. If the same spec is being computed (queued or running) by this runner, that
           same :class:`Job` is returned (also with ``force``).
        3. Otherwise a new job is queued on the thread pool. When it starts, it claims
           the spec in the store; if another app process is computing it, the job waits
           for that result instead (see the module notes).

        Raises:
            ValidationError: the spec is not valid (see :func:`spec_key`) or ``fn`` is not
                callable.
            RunError: the runner was shut down.
        """
        plain = checked_plain(spec)
        key = spec_key(plain)
        if not callable(fn):
            raise ValidationError(f"fn must be callable, got {type(fn).__name__}")
        with self._lock:
            if self._closed:
                raise RunError("the job runner was shut down; create a new one")
            if not force:
                record = self.store.get(key)
                if record is not None:
                    return Job._from_record(record)
            existing = self._inflight.get(key)
            if existing is not None and not existing.done:
                return existing
            job = Job(key, plain)
            job._force = bool(force)
            job._on_queued_cancel = self._cancelled_before_start
            self._inflight[key] = job
            try:
                job._future = self._executor.submit(self._execute, job, fn)
            except BaseException:
                del self._inflight[key]
                raise
        return job

    def stored(self, key: str) -> Job | None:
        """A finished job holding the stored ``done`` run ``key`` (nothing is computed),
        or None when the store does not hold it: how a page is handed a run from the run
        history."""
        record = self.store.get(key)
        return Job._from_record(record) if record is not None else None

    def get(self, key: str) -> Job | None:
        """The queued or running job for ``key`` in this runner, or None."""
        with self._lock:
            job = self._inflight.get(key)
        return job if job is not None and not job.done else None

    def jobs(self) -> list[Job]:
        """All queued and running jobs of this runner."""
        with self._lock:
            return [job for job in self._inflight.values() if not job.done]

    def shutdown(self, wait: bool = True, *, cancel: bool = False) -> None:
        """Stop accepting jobs.

        Args:
            wait: block until the running and queued jobs are finished.
            cancel: cancel every queued and running job first.
        """
        with self._lock:
            self._closed = True
            pending = list(self._inflight.values())
        if cancel:
            for job in pending:
                job.cancel()
        self._executor.shutdown(wait=wait)

    # -- internals -----------------------------------------------------------------

    def _forget(self, job: Job) -> None:
        with self._lock:
            if self._inflight.get(job.key) is job:
                del self._inflight[job.key]

    def _cancelled_before_start(self, job: Job) -> None:
        try:
            self._save_quietly(job, RunResult(), seconds=0.0, status="cancelled", error=None)
        finally:
            self._forget(job)

    def _save_quietly(
        self, job: Job, result: RunResult, *, seconds: float, status: str, error: str | None
    ) -> None:
        """Record a failed or cancelled run; problems are logged, never raised."""
        try:
            self.store.save(
                job.key,
                job.spec,
                result,
                seconds=seconds,
                status=status,
                error=error,
                created=job.created,
                versions=library_versions(),
                keep_done=True,
            )
        except Exception:
            logger.exception("Could not record %s job %s in the result store", status, job.key)

    def _finish(self, job: Job, state: JobState, **kwargs: Any) -> None:
        job._set_final(state, **kwargs)
        self._forget(job)
        job._done_event.set()

    def _execute(self, job: Job, fn: JobFunction) -> None:
        """Worker thread body: run ``fn``, store what happened, never let errors vanish."""
        if not job._try_start():
            return  # cancelled while queued
        try:
            self._run(job, fn)
        except BaseException as exc:  # a bug in the runner itself: still end the job
            logger.exception("Job runner error while running job %s", job.key)
            if not job.done:
                self._finish(
                    job,
                    "failed",
                    message="Failed",
                    error=f"{type(exc).__name__}: {exc}",
                    tb=traceback.format_exc(),
                )

    def _run(self, job: Job, fn: JobFunction) -> None:
        """Compute the job once across processes: claim its key in the store (a lease,
        :mod:`.leases`) and compute, or wait for the process holding it and serve its
        result. A forced job always computes, once no other process holds the key."""
        ctx = JobContext(job)
        message = WAITING_FORCED if job._force else WAITING_FOR_OTHER

        def waiting() -> None:
            ctx.progress(math.nan, message)  # raises JobCancelled when cancelled

        def ready() -> RunRecord | None:
            return self.store.get(job.key)

        try:
            with leases.hold(
                self.store,
                leases.run_lease_key(job.key),
                ready=None if job._force else ready,
                waiting=waiting,
            ) as found:
                outcome = self._compute(job, fn, ctx) if found is None else None
        except JobCancelled:  # cancelled while another process computed it: nothing ran here
            logger.info("Job %s cancelled while another process computed it", job.key)
            self._finish(job, "cancelled", message="Cancelled")
            return
        if found is not None:
            job._from_store = True
            self._finish(job, "done", message=COMPUTED_ELSEWHERE, result=found)
            return
        assert outcome is not None
        state, final = outcome
        self._finish(job, state, **final)

    def _compute(
        self, job: Job, fn: JobFunction, ctx: JobContext
    ) -> tuple[JobState, dict[str, Any]]:
        """Run ``fn`` and store its outcome; returns the job's final state and fields."""
        kind = job.spec.get("kind")
        begin = time.perf_counter()
        cells = self.cells.forcing() if job._force else self.cells
        try:
            with using_cells(cells):
                result = fn(ctx)
            seconds = time.perf_counter() - begin
            if not isinstance(result, RunResult):
                raise ValidationError(
                    f"the job function for {kind!r} returned {type(result).__name__}; "
                    "it must return a RunResult"
                )
        except Exception as exc:
            seconds = time.perf_counter() - begin
            if _is_cancellation(exc):
                logger.info("Job %s (%s) cancelled after %.2f s", job.key, kind, seconds)
                self._save_quietly(
                    job, RunResult(), seconds=seconds, status="cancelled", error=None
                )
                return "cancelled", {"message": "Cancelled"}
            return self._fail(job, exc, seconds)

        try:
            self.store.save(
                job.key,
                job.spec,
                result,
                seconds=seconds,
                status="done",
                created=job.created,
                versions=library_versions(),
            )
            record = self.store.get(job.key)
            if record is None:
                raise RunError(f"the result of job {job.key} was saved but cannot be read back")
        except Exception as exc:
            return self._fail(job, exc, seconds, while_saving=True)
        return "done", {"message": "Done", "result": record}

    def _fail(
        self, job: Job, exc: Exception, seconds: float, *, while_saving: bool = False
    ) -> tuple[JobState, dict[str, Any]]:
        """Log and record a failed run; returns the job's final state and fields."""
        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        logger.error(
            "Job %s (%s) failed%s: %s\n%s",
            job.key,
            job.spec.get("kind"),
            " while saving its result" if while_saving else "",
            error,
            tb,
        )
        self._save_quietly(job, RunResult(), seconds=seconds, status="failed", error=error)
        return "failed", {"message": "Failed", "error": error, "tb": tb}


# --------------------------------------------------------------------------------------
# The process-wide runner

_runner_lock = threading.Lock()
_runner: JobRunner | None = None
_runner_home: Path | None = None


def get_runner() -> JobRunner:
    """The process-wide :class:`JobRunner`, created on first use.

    It stores into ``ROBUSTCORE_HOME/runs.sqlite``. When ``ROBUSTCORE_HOME`` changes (as in
    tests with a fresh folder) a new runner with a new store is made; the old one finishes
    its running jobs in the background.
    """
    global _runner, _runner_home
    current = home().resolve()
    with _runner_lock:
        if _runner is None or _runner_home != current:
            old = _runner
            _runner = JobRunner(ResultStore(current / "runs.sqlite"))
            _runner_home = current
            if old is not None:
                old.shutdown(wait=False)
        return _runner
