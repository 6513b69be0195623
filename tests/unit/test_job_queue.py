"""The job runner's fair queue: a per-session (owner) limit on running jobs, round-robin
between owners, queue positions and their messages, cancelling from the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from robustcore.errors import RunError, ValidationError
from robustcore.runs import JobContext, JobRunner, ResultStore, RunResult
from robustcore.runs import runner as runner_module
from robustcore.runs import store as store_module
from robustcore.runs.runner import PER_SESSION_ENV, held_message, ordinal, waiting_message

FAKE_VERSIONS = {"python": "3.11", "torch": "test", "device": "cpu"}


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(PER_SESSION_ENV, raising=False)
    monkeypatch.setattr(store_module, "library_versions", lambda: dict(FAKE_VERSIONS))
    monkeypatch.setattr(runner_module, "library_versions", lambda: dict(FAKE_VERSIONS))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    result_store = ResultStore(tmp_path / "runs.sqlite")
    yield result_store
    result_store.close()


class Gates:
    """Job functions that record when they start and wait until released (or cancelled)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.order: list[str] = []
        self.running: set[str] = set()
        self.peak: dict[str, int] = {}  # owner -> most of its jobs running at once
        self.started: dict[str, threading.Event] = {}
        self.release: dict[str, threading.Event] = {}
        self.release_all = threading.Event()

    def fn(self, name: str, owner: str = "-") -> Callable[[JobContext], RunResult]:
        started = self.started.setdefault(name, threading.Event())
        release = self.release.setdefault(name, threading.Event())

        def compute(ctx: JobContext) -> RunResult:
            with self.lock:
                self.order.append(name)
                self.running.add(name)
                mine = sum(1 for n in self.running if n.startswith(owner))
                self.peak[owner] = max(self.peak.get(owner, 0), mine)
            started.set()
            try:
                while not (release.wait(0.005) or self.release_all.is_set()):
                    ctx.check_cancelled()
            finally:
                with self.lock:
                    self.running.discard(name)
            return RunResult(metrics={"name": name})

        return compute


@pytest.fixture
def gates() -> Iterator[Gates]:
    made = Gates()
    yield made
    made.release_all.set()


@pytest.fixture
def make_runner(store: ResultStore) -> Iterator[Callable[..., JobRunner]]:
    made: list[JobRunner] = []

    def make(max_workers: int = 2, **kwargs: object) -> JobRunner:
        made.append(JobRunner(store, max_workers=max_workers, **kwargs))
        return made[-1]

    yield make
    for job_runner in made:
        job_runner.shutdown(wait=True, cancel=True)


def spec(name: str) -> dict[str, str]:
    return {"kind": "queue.test", "name": name}


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


# ------------------------------------------------------------------------ per-owner limit


def test_one_session_never_holds_every_worker(
    make_runner: Callable[..., JobRunner], gates: Gates
) -> None:
    runner = make_runner(max_workers=2, per_owner=1)
    a = [runner.submit_job(spec(f"a{i}"), gates.fn(f"a{i}", "a"), owner="A") for i in range(3)]
    assert gates.started["a0"].wait(5)
    # A worker is free, but A already runs its share: its other jobs wait.
    assert [job.state for job in a] == ["running", "queued", "queued"]
    assert a[1].message == held_message(1, 1)
    assert a[1].message == (
        "Waiting: your other job is using this session's share of the workers "
        "(limit 1 at a time); 1st in line"
    )
    assert a[2].queue_position == 2

    b = runner.submit_job(spec("b0"), gates.fn("b0", "b"), owner="B")
    assert gates.started["b0"].wait(5)  # another session starts at once
    assert b.state == "running" and b.queue_position is None

    for name, job in (("a0", a[0]), ("a1", a[1]), ("a2", a[2])):
        gates.release[name].set()
        assert job.wait(5).state == "done"
    gates.release["b0"].set()
    assert b.wait(5).state == "done"
    assert gates.order.index("b0") < gates.order.index("a1")
    assert gates.peak["a"] == 1


def test_a_larger_share_and_its_message(
    make_runner: Callable[..., JobRunner], gates: Gates
) -> None:
    runner = make_runner(max_workers=3, per_owner=2)
    jobs = [runner.submit_job(spec(f"a{i}"), gates.fn(f"a{i}", "a"), owner="A") for i in range(3)]
    wait_until(lambda: gates.started["a0"].is_set() and gates.started["a1"].is_set())
    assert jobs[2].state == "queued"
    assert jobs[2].message == (
        "Waiting: your other jobs are using this session's share of the workers "
        "(limit 2 at a time); 1st in line"
    )
    gates.release["a0"].set()
    assert gates.started["a2"].wait(5)
    assert gates.peak["a"] == 2


def test_jobs_without_an_owner_have_no_limit(
    make_runner: Callable[..., JobRunner], gates: Gates
) -> None:
    runner = make_runner(max_workers=2, per_owner=1)
    jobs = [runner.submit_job(spec(f"n{i}"), gates.fn(f"n{i}", "n")) for i in range(2)]
    assert gates.started["n0"].wait(5) and gates.started["n1"].wait(5)
    assert all(job.owner is None and job.state == "running" for job in jobs)


# --------------------------------------------------------------------------- fair order


def test_round_robin_across_owners(make_runner: Callable[..., JobRunner], gates: Gates) -> None:
    runner = make_runner(max_workers=1, per_owner=1)
    blocker = runner.submit_job(spec("a-block"), gates.fn("a-block", "a"), owner="a")
    assert gates.started["a-block"].wait(5)
    submitted = ["a1", "a2", "a3", "b1", "b2", "c1"]
    jobs = {n: runner.submit_job(spec(n), gates.fn(n, n[0]), owner=n[0]) for n in submitted}
    # b and c never started a job: they go first (in submit order), then a (it started the
    # blocker), then round-robin by who started least recently; FIFO within an owner.
    expected = ["b1", "c1", "a1", "b2", "a2", "a3"]
    assert [job.spec["name"] for job in runner.queue()] == expected
    assert [jobs[n].queue_position for n in expected] == [1, 2, 3, 4, 5, 6]
    assert jobs["b1"].message == "Waiting for a free worker: 1st in line (1 job running)"
    assert jobs["c1"].message == waiting_message(2, 1)
    assert jobs["a1"].message == held_message(3, 1)  # its owner runs the blocker
    assert jobs["b2"].message == waiting_message(4, 1)  # b's turn comes after a1

    gates.release_all.set()
    blocker.wait(5)
    for job in jobs.values():
        assert job.wait(5).state == "done"
    assert gates.order == ["a-block", *expected]


def test_positions_and_messages_follow_the_queue(
    make_runner: Callable[..., JobRunner], gates: Gates
) -> None:
    runner = make_runner(max_workers=2, per_owner=1)
    first = runner.submit_job(spec("p"), gates.fn("p"), owner="p")
    second = runner.submit_job(spec("q"), gates.fn("q"), owner="q")
    assert gates.started["p"].wait(5) and gates.started["q"].wait(5)
    r = runner.submit_job(spec("r"), gates.fn("r"), owner="r")
    s = runner.submit_job(spec("s"), gates.fn("s"), owner="s")
    assert (r.queue_position, s.queue_position) == (1, 2)
    assert r.message == "Waiting for a free worker: 1st in line (2 jobs running)"
    assert s.message == "Waiting for a free worker: 2nd in line (2 jobs running)"
    assert r.snapshot()["queue_position"] == 1 and r.snapshot()["owner"] == "r"

    gates.release["p"].set()
    assert first.wait(5).state == "done"
    # The freed worker took the next job before wait() returned; the queue moved up.
    assert r.state == "running" and r.queue_position is None and r.message != s.message
    assert s.queue_position == 1 and s.message == waiting_message(1, 2)
    assert first.queue_position is None
    gates.release_all.set()
    for job in (second, r, s):
        assert job.wait(5).state == "done" and job.queue_position is None


def test_cancel_while_queued_leaves_the_queue_at_once(
    make_runner: Callable[..., JobRunner], gates: Gates, store: ResultStore
) -> None:
    runner = make_runner(max_workers=1, per_owner=1)
    running = runner.submit_job(spec("x"), gates.fn("x"), owner="x")
    assert gates.started["x"].wait(5)
    queued = runner.submit_job(spec("y"), gates.fn("y"), owner="y")
    behind = runner.submit_job(spec("z"), gates.fn("z"), owner="z")
    assert behind.queue_position == 2
    assert queued.cancel()
    assert queued.state == "cancelled" and queued.queue_position is None
    assert queued.message == "Cancelled before it started"
    assert behind.queue_position == 1 and behind.message == waiting_message(1, 1)
    assert runner.queue() == [behind] and runner.get(queued.key) is None
    gates.release_all.set()
    assert running.wait(5).state == "done" and behind.wait(5).state == "done"
    assert "y" not in gates.order
    record = store.get(queued.key, any_status=True)
    assert record is not None and record.status == "cancelled"


def test_a_queued_job_shared_by_two_sessions(
    make_runner: Callable[..., JobRunner], gates: Gates
) -> None:
    runner = make_runner(max_workers=1, per_owner=1)
    blocker = runner.submit_job(spec("block"), gates.fn("block"), owner="A")
    assert gates.started["block"].wait(5)
    shared = runner.submit_job(spec("shared"), gates.fn("shared"), owner="A")
    again = runner.submit_job(spec("shared"), gates.fn("other fn"), owner="B")
    assert again is shared and shared.owner == "A"  # counts for its first owner
    assert shared.queue_position == 1 and len(runner.queue()) == 1
    b_own = runner.submit_job(spec("b"), gates.fn("b"), owner="B")
    assert [job.spec["name"] for job in runner.queue()] == ["b", "shared"]
    gates.release_all.set()
    for job in (blocker, shared, b_own):
        assert job.wait(5).state == "done"
    assert gates.order == ["block", "b", "shared"]
    assert "other fn" not in gates.order


# ---------------------------------------------------------------------------- shutdown


def test_shutdown_without_waiting_still_runs_the_queue(store: ResultStore, gates: Gates) -> None:
    runner = JobRunner(store, max_workers=1)
    first = runner.submit_job(spec("1"), gates.fn("1"), owner="o")
    later = runner.submit_job(spec("2"), gates.fn("2"), owner="o")
    assert gates.started["1"].wait(5) and later.state == "queued"
    runner.shutdown(wait=False)
    with pytest.raises(RunError, match="shut down"):
        runner.submit_job(spec("3"), gates.fn("3"))
    gates.release_all.set()
    assert first.wait(5).state == "done" and later.wait(5).state == "done"
    runner.shutdown(wait=True)  # nothing left: returns at once


def test_shutdown_with_cancel_empties_the_queue(store: ResultStore, gates: Gates) -> None:
    runner = JobRunner(store, max_workers=1)
    first = runner.submit_job(spec("1"), gates.fn("1"), owner="o")
    later = runner.submit_job(spec("2"), gates.fn("2"), owner="p")
    assert gates.started["1"].wait(5)
    runner.shutdown(wait=True, cancel=True)
    assert first.state == "cancelled" and later.state == "cancelled"
    assert gates.order == ["1"] and runner.jobs() == []


# ------------------------------------------------------------------------ configuration


def test_per_owner_is_validated(store: ResultStore) -> None:
    with pytest.raises(ValidationError, match="per_owner must be at least 1, got 0"):
        JobRunner(store, per_owner=0)
    with pytest.raises(ValidationError, match="per_owner must be a whole number"):
        JobRunner(store, per_owner=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_workers must be at least 1"):
        JobRunner(store, max_workers=0)
    with pytest.raises(ValidationError, match="owner must be a string or None"):
        runner = JobRunner(store, max_workers=1)
        try:
            runner.submit_job(spec("o"), lambda ctx: RunResult(), owner=7)  # type: ignore
        finally:
            runner.shutdown()


def test_per_owner_default_and_setting(store: ResultStore, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[JobRunner] = []

    def per_owner(max_workers: int, **kwargs: int) -> int:
        made.append(JobRunner(store, max_workers=max_workers, **kwargs))
        return made[-1].per_owner

    try:
        assert [per_owner(n) for n in (1, 2, 4)] == [1, 1, 3]
        monkeypatch.setenv(PER_SESSION_ENV, " 3 ")
        assert per_owner(2) == 3
        assert per_owner(2, per_owner=1) == 1  # the argument wins over the setting
        monkeypatch.setenv(PER_SESSION_ENV, "")
        assert per_owner(2) == 1
        for bad in ("0", "-1", "two", "1.5"):
            monkeypatch.setenv(PER_SESSION_ENV, bad)
            with pytest.raises(ValidationError) as info:
                JobRunner(store)
            assert str(info.value) == (
                f"{PER_SESSION_ENV} must be a whole number of at least 1 (how many jobs one "
                f"browser session may run at a time), got {bad!r}."
            )
    finally:
        for job_runner in made:
            job_runner.shutdown()


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 112)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
        "111th",
        "112th",
    ]
