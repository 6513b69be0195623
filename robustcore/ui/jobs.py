"""Start jobs on the shared runner and show their progress, with a cancel button.

A job runs on the runner's worker threads, not on the Streamlit script thread, so
clicking any widget (or switching page) never kills it. The page keeps the job in
``st.session_state`` under a *slot* name and polls it from a fragment that reruns every
second until the job is finished, then reruns the whole page to draw the result
(polling more often measurably slowed jobs on a 2-core machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from ..runs import Job, JobContext, RunRecord, RunResult, get_runner

_PREFIX = "rc_job."


def start_experiment(slot: str, experiment: Any, dataset: Any, *, force: bool = False) -> Job:
    """Submit an Experiment on ``dataset`` (served from the store when it ran before)."""
    job = get_runner().submit(experiment, dataset, force=force)
    st.session_state[_PREFIX + slot] = job
    return job


def start(
    slot: str, spec: dict[str, Any], fn: Callable[[JobContext], RunResult], *, force: bool = False
) -> Job:
    """Submit a hand-made ``spec`` with ``fn`` (for runs that are not experiments)."""
    job = get_runner().submit_job(spec, fn, force=force)
    st.session_state[_PREFIX + slot] = job
    return job


def current(slot: str) -> Job | None:
    return st.session_state.get(_PREFIX + slot)


def forget(slot: str) -> None:
    st.session_state.pop(_PREFIX + slot, None)


def _progress_line(job: Job) -> str:
    elapsed = time.time() - job.started if job.started else 0.0
    msg = job.message or job.state
    return f"{msg} · {job.progress:.0%} · {elapsed:.0f} s"


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
