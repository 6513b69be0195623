"""Start jobs on the shared runner and show their progress, with a cancel button.

A job runs on the runner's worker threads, not on the Streamlit script thread, so
clicking any widget (or switching page) never kills it. The page keeps the job in
``st.session_state`` under a *slot* name and polls it from a fragment that reruns every
second until the job is finished, then reruns the whole page to draw the result
(polling more often measurably slowed jobs on a 2-core machine).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from ..experiments.estimate import format_seconds
from ..runs import Job, JobContext, RunRecord, RunResult, get_runner, spec_key

logger = logging.getLogger(__name__)

PREFIX = "rc_job."
"""Session-state key prefix of a page slot's job."""


def start_experiment(slot: str, experiment: Any, dataset: Any, *, force: bool = False) -> Job:
    """Submit an Experiment on ``dataset`` (served from the store when it ran before).

    A job that will compute gets the experiment's time estimate on this machine, which
    its progress line counts down from."""
    runner = get_runner()
    # Priced before the job starts, so that the timing does not compete with it.
    key = spec_key(experiment.spec(dataset))
    will_run = force or (runner.get(key) is None and runner.store.get(key) is None)
    seconds = estimated_seconds(experiment, dataset) if will_run else None
    job = runner.submit(experiment, dataset, force=force)
    if not job.done and job.estimate is None:
        job.estimate = seconds
    st.session_state[PREFIX + slot] = job
    return job


def estimated_seconds(experiment: Any, dataset: Any) -> float | None:
    """The experiment's estimate here, or ``None`` (it gives none, or pricing failed)."""
    try:
        est = experiment.estimate(dataset)
    except Exception:  # an estimate must never stop a run
        logger.warning("time estimate failed for %s", type(experiment).__name__, exc_info=True)
        return None
    return None if est is None else float(est.seconds)


def busy_factor(exclude: Job | None = None) -> tuple[int, float]:
    """Other jobs computing now and how much longer that makes a run: the workers share
    the machine's cores, so with k others running each gets about 1 / (k + 1) of it."""
    others = [j for j in get_runner().jobs() if j is not exclude and j.state == "running"]
    return len(others), float(len(others) + 1)


def start(
    slot: str, spec: dict[str, Any], fn: Callable[[JobContext], RunResult], *, force: bool = False
) -> Job:
    """Submit a hand-made ``spec`` with ``fn`` (for runs that are not experiments)."""
    job = get_runner().submit_job(spec, fn, force=force)
    st.session_state[PREFIX + slot] = job
    return job


def current(slot: str) -> Job | None:
    return st.session_state.get(PREFIX + slot)


def forget(slot: str) -> None:
    st.session_state.pop(PREFIX + slot, None)


def remaining_seconds(progress: float, elapsed: float, estimate: float | None) -> float | None:
    """Seconds left: the estimate's remainder at first, the pace of the progress bar as it
    advances (weighted by how far it is: at 30 % done, 30 % pace and 70 % estimate)."""
    pace = elapsed * (1 - progress) / progress if progress >= 0.02 and elapsed >= 1 else None
    if estimate is None:
        return pace
    left = max(estimate - elapsed, 0.0)
    if pace is None:
        return left
    return progress * pace + (1 - progress) * left


def _progress_line(job: Job) -> str:
    elapsed = time.time() - job.started if job.started else 0.0
    msg = job.message or job.state
    line = f"{msg} · {job.progress:.0%} · {elapsed:.0f} s"
    if job.state == "queued":
        return line
    left = remaining_seconds(job.progress, elapsed, job.estimate)
    if left is not None:
        line += f" · about {format_seconds(left)} left"
        if job.estimate is not None:
            line += f" (estimated {format_seconds(job.estimate)} in all)"
    return line


@st.fragment(run_every=1.0)
def _poll(slot: str) -> None:
    job = current(slot)
    if job is None or job.done:
        st.rerun()
        return
    st.progress(min(max(job.progress, 0.0), 1.0), text=_progress_line(job))
    if st.button("Cancel", key=f"rc_cancel.{slot}"):
        job.cancel()
        st.toast("Cancelling…")


def show(slot: str, *, container: Any = None) -> RunRecord | None:
    """Draw the state of the job in ``slot`` and return its record once it is done.

    While it runs: a progress bar with a Cancel button. Failed: the error message.
    Cancelled: a note. Done: the stored record (from the run store).
    """
    job = current(slot)
    if job is None:
        return None
    box = container if container is not None else st.container()
    if not job.done:
        with box:
            _poll(slot)
        return None
    if job.state == "failed":
        box.error(f"The run failed: {job.error}")
        return None
    if job.state == "cancelled":
        box.warning("The run was cancelled; nothing was stored.")
        return None
    return job.result
