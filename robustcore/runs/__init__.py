"""Runs: spec keys, the SQLite result store and the background job runner.

Typical use::

    from robustcore.runs import RunResult, get_runner

    def compute(ctx):
        for i in range(10):
            ctx.progress(i / 10, f"step {i}")   # also stops here if cancelled
        return RunResult(metrics={"accuracy": 0.93})

    job = get_runner().submit({"kind": "demo", "seed": 0}, compute)
    job.wait()
    job.result.metrics   # {"accuracy": 0.93}; the next submit is served from the store
"""

from __future__ import annotations

from .runner import Job, JobContext, JobRunner, get_runner
from .spec import canonical_json, spec_key
from .store import ResultStore, RunRecord, RunResult

__all__ = [
    "Job",
    "JobContext",
    "JobRunner",
    "ResultStore",
    "RunRecord",
    "RunResult",
    "canonical_json",
    "get_runner",
    "spec_key",
]
