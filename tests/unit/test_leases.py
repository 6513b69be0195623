"""Leases (robustcore.runs.leases): across app processes on one result store, a spec being
computed is claimed, so it is computed once; a dead holder's claim is taken over."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from robustcore.runs import JobContext, JobRunner, ResultStore, RunResult, leases, spec_key
from robustcore.runs import runner as runner_module
from robustcore.runs import store as store_module
from robustcore.runs.cells import CellCache

FAKE_VERSIONS = {"python": "3.11", "torch": "test", "device": "cpu"}


def _fake_versions() -> dict[str, str]:
    return dict(FAKE_VERSIONS)


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short heartbeats and polls, and no torch import for the library versions."""
    monkeypatch.setattr(store_module, "library_versions", _fake_versions)
    monkeypatch.setattr(runner_module, "library_versions", _fake_versions)
    monkeypatch.setattr(leases, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(leases, "STALE_AFTER_S", 1.0)
    monkeypatch.setattr(leases, "POLL_S", 0.05)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    result_store = ResultStore(tmp_path / "runs.sqlite")
    yield result_store
    result_store.close()


@pytest.fixture
def make_runner(store: ResultStore) -> Iterator[Callable[..., JobRunner]]:
    """Runners on one store file, each with its own ResultStore object (as two app
    processes would have): only the leases in the file can de-duplicate between them."""
    made: list[tuple[JobRunner, ResultStore]] = []

    def make() -> JobRunner:
        own = ResultStore(store.path)
        made.append((JobRunner(own, max_workers=2), own))
        return made[-1][0]

    yield make
    for job_runner, own in made:
        job_runner.shutdown(wait=True, cancel=True)
        own.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# ------------------------------------------------------------------------------ the store


def test_claim_renew_and_release(store: ResultStore) -> None:
    assert store.lease_holder("k") is None
    assert store.claim("k", "a", stale_after=10)
    assert not store.claim("k", "b", stale_after=10)  # held by a live holder
    assert store.claim("k", "a", stale_after=10)  # already ours: renewed
    held = store.lease_holder("k")
    assert held is not None and held.holder == "a" and held.pid == os.getpid()
    assert held.age < 5 and held.taken <= held.heartbeat

    assert store.renew("k", "a") and not store.renew("k", "b")
    assert not store.release("k", "b")  # another holder's claim is left alone
    assert store.lease_holder("k").holder == "a"
    assert store.release("k", "a") and store.lease_holder("k") is None
    assert not store.renew("k", "a")  # released: the heartbeat says it is lost
    assert store.claim("k", "b", stale_after=10) and store.lease_holder("k").holder == "b"
    assert store.claim("other", "a", stale_after=10)  # keys are independent


def test_a_stale_lease_is_taken_over(store: ResultStore) -> None:
    assert store.claim("k", "dead", stale_after=10)
    with sqlite3.connect(store.path) as conn:  # its last heartbeat was 20 s ago
        conn.execute("UPDATE leases SET heartbeat = heartbeat - 20 WHERE key = 'k'")
    assert not store.claim("k", "new", stale_after=30)  # not stale by this limit
    assert store.claim("k", "new", stale_after=10)
    assert store.lease_holder("k").holder == "new"
    assert not store.renew("k", "dead")  # the old holder learns it lost the claim


def test_many_threads_claim_a_free_key_once(store: ResultStore) -> None:
    barrier = threading.Barrier(8)
    won: list[str] = []

    def claimer(name: str) -> None:
        own = ResultStore(store.path)
        barrier.wait(10)
        if own.claim("k", name, stale_after=10):
            won.append(name)
        own.close()

    threads = [threading.Thread(target=claimer, args=(f"h{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1 and store.lease_holder("k").holder == won[0]


# ---------------------------------------------------------------------------- the helper


def test_the_heartbeat_keeps_a_lease_alive_and_an_exception_releases_it(
    store: ResultStore,
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with leases.hold(store, "k") as found:
            assert found is None
            held = store.lease_holder("k")
            assert held is not None and held.holder.split(":")[1] == str(os.getpid())
            first_beat = held.heartbeat
            for _ in range(6):  # 1.2 s, longer than the staleness limit (1 s)
                time.sleep(0.2)
                assert not store.claim("k", "intruder", stale_after=leases.STALE_AFTER_S)
            assert store.lease_holder("k").heartbeat > first_beat
            raise RuntimeError("boom")
    assert store.lease_holder("k") is None


def test_hold_serves_a_ready_result_without_claiming(store: ResultStore) -> None:
    assert store.claim("k", "other", stale_after=10)
    with leases.hold(store, "k", ready=lambda: "stored") as found:
        assert found == "stored"
    assert store.lease_holder("k").holder == "other"  # untouched


def test_hold_waits_for_the_holder_and_then_claims_when_no_result_came(
    store: ResultStore,
) -> None:
    holder = leases.Lease(store, "k")
    assert holder.claim() and holder.held
    waited: list[float] = []
    threading.Timer(0.4, holder.release).start()  # the holder fails: no result
    begin = time.monotonic()
    with leases.hold(store, "k", ready=lambda: None, waiting=lambda: waited.append(1)) as found:
        assert found is None and time.monotonic() - begin >= 0.35
        assert store.lease_holder("k").holder != holder.holder
    assert waited and store.lease_holder("k") is None and not holder.held


def test_a_lease_taken_over_is_reported_lost(store: ResultStore) -> None:
    lease = leases.Lease(store, "k")
    assert lease.claim()
    with sqlite3.connect(store.path) as conn:  # someone took it over (we were stale)
        conn.execute("UPDATE leases SET holder = 'thief' WHERE key = 'k'")
    wait_until(lambda: lease.lost, timeout=5)
    lease.release()
    assert store.lease_holder("k").holder == "thief"  # not ours to release


# ------------------------------------------------------- two runners sharing one file


def test_a_second_runner_waits_for_the_first_and_serves_its_result(
    make_runner: Callable[..., JobRunner],
) -> None:
    first, second = make_runner(), make_runner()
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(ctx: JobContext) -> RunResult:
        calls.append("first")
        started.set()
        release.wait(10)
        return RunResult(metrics={"by": "first"})

    def other(ctx: JobContext) -> RunResult:
        calls.append("second")
        return RunResult(metrics={"by": "second"})

    spec = {"kind": "lease.demo", "seed": 1}
    one = first.submit_job(spec, slow)
    assert started.wait(10)
    two = second.submit_job(spec, other)
    assert two is not one
    wait_until(lambda: two.message == runner_module.WAITING_FOR_OTHER)
    assert two.state == "running" and not two.done
    release.set()
    assert one.wait(10).state == "done" and not one.from_store
    assert two.wait(10).state == "done" and two.from_store
    assert two.message == runner_module.COMPUTED_ELSEWHERE
    assert two.result is not None and two.result.metrics == {"by": "first"}
    assert calls == ["first"]
    assert first.store.lease_holder(leases.run_lease_key(one.key)) is None


def test_cancel_while_waiting_for_another_runner(make_runner: Callable[..., JobRunner]) -> None:
    first, second = make_runner(), make_runner()
    release, started = threading.Event(), threading.Event()

    def slow(ctx: JobContext) -> RunResult:
        started.set()
        release.wait(10)
        return RunResult(metrics={"v": 1})

    spec = {"kind": "lease.cancel"}
    one = first.submit_job(spec, slow)
    assert started.wait(10)
    two = second.submit_job(spec, slow)
    wait_until(lambda: two.message == runner_module.WAITING_FOR_OTHER)
    assert two.cancel()
    assert two.wait(5).state == "cancelled"
    # Nothing was computed by the cancelled job, so it records nothing.
    assert second.store.get(two.key, any_status=True) is None
    release.set()
    assert one.wait(10).state == "done" and first.store.get(one.key) is not None


def test_the_waiting_runner_computes_when_the_holder_fails(
    make_runner: Callable[..., JobRunner],
) -> None:
    first, second = make_runner(), make_runner()
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def failing(ctx: JobContext) -> RunResult:
        started.set()
        release.wait(10)
        raise ValueError("holder broke")

    def working(ctx: JobContext) -> RunResult:
        calls.append("second")
        return RunResult(metrics={"v": 2})

    spec = {"kind": "lease.fail"}
    one = first.submit_job(spec, failing)
    assert started.wait(10)
    two = second.submit_job(spec, working)
    wait_until(lambda: two.message == runner_module.WAITING_FOR_OTHER)
    release.set()
    assert one.wait(10).state == "failed"
    assert two.wait(10).state == "done" and not two.from_store
    assert calls == ["second"] and two.result.metrics == {"v": 2}


def test_a_forced_job_waits_for_the_holder_then_computes_again(
    make_runner: Callable[..., JobRunner],
) -> None:
    first, second = make_runner(), make_runner()
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(ctx: JobContext) -> RunResult:
        calls.append("first")
        started.set()
        release.wait(10)
        return RunResult(metrics={"by": "first"})

    def forced(ctx: JobContext) -> RunResult:
        calls.append("forced")
        return RunResult(metrics={"by": "forced"})

    spec = {"kind": "lease.force"}
    one = first.submit_job(spec, slow)
    assert started.wait(10)
    two = second.submit_job(spec, forced, force=True)
    wait_until(lambda: two.message == runner_module.WAITING_FORCED)
    assert calls == ["first"]
    release.set()
    assert one.wait(10).state == "done"
    assert two.wait(10).state == "done" and not two.from_store
    assert calls == ["first", "forced"] and two.result.metrics == {"by": "forced"}


def test_cells_of_two_caches_on_one_file_are_computed_once(store: ResultStore) -> None:
    other_store = ResultStore(store.path)
    mine, theirs = CellCache(store), CellCache(other_store)  # separate in-process events
    spec = {"kind": "demo.cell", "n": 7}
    started, calls, waited, got = threading.Event(), [], [], []

    def slow() -> tuple[dict[str, Any], dict[str, Any]]:
        calls.append("slow")
        started.set()
        time.sleep(0.5)
        return {"v": 7}, {}

    thread = threading.Thread(target=lambda: got.append(mine.get_or_compute(spec, slow)))
    thread.start()
    assert started.wait(10)
    out = theirs.get_or_compute(
        spec, lambda: calls.append("again") or ({"v": 0}, {}), waiting=lambda: waited.append(1)
    )
    thread.join(10)
    other_store.close()
    assert calls == ["slow"] and waited
    assert out.reused and out.metrics == {"v": 7} and not got[0].reused
    assert store.lease_holder(leases.cell_lease_key(spec_key(spec))) is None


# --------------------------------------------------------------------- real processes


def _count_and_sleep(counter: str, sleep_s: float, ctx: JobContext) -> RunResult:
    """A job that appends one line to ``counter`` (O_APPEND: lines of several processes
    never mix), then works for ``sleep_s`` seconds, reporting progress."""
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.spec['n']} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)
    end = time.monotonic() + sleep_s
    while time.monotonic() < end:
        ctx.progress(0.5, "working")
        time.sleep(0.05)
    return RunResult(metrics={"n": ctx.spec["n"], "by": os.getpid()})


def _child(
    path: str,
    counter: str,
    specs: list[dict[str, Any]],
    queue: Any,
    *,
    barrier: Any = None,
    flag: str | None = None,
    sleep_s: float = 0.5,
    heartbeat_s: float = 0.3,
    stale_after: float = 2.0,
) -> None:
    """One app process: its own store and runner; submits ``specs`` and reports."""
    store_module.library_versions = _fake_versions
    runner_module.library_versions = _fake_versions
    leases.HEARTBEAT_S, leases.STALE_AFTER_S, leases.POLL_S = heartbeat_s, stale_after, 0.1
    store = ResultStore(path)
    job_runner = JobRunner(store, max_workers=len(specs))
    if barrier is not None:
        barrier.wait(60)
    fn = functools.partial(_count_and_sleep, counter, sleep_s)
    jobs = [job_runner.submit_job(spec, fn) for spec in specs]
    if flag is not None:  # tell the test once every job waits for another process
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            job.message == runner_module.WAITING_FOR_OTHER for job in jobs
        ):
            time.sleep(0.02)
        Path(flag).touch()
    out = []
    for job in jobs:
        job.wait(60)
        record = job.result
        out.append(
            {
                "n": job.spec["n"],
                "state": job.state,
                "from_store": job.from_store,
                "metrics": record.metrics if record is not None else None,
            }
        )
    job_runner.shutdown(wait=True)
    store.close()
    queue.put((os.getpid(), out))


def _lines(counter: Path) -> list[list[str]]:
    if not counter.exists():
        return []
    return [line.split() for line in counter.read_text().splitlines() if line.strip()]


def test_several_processes_compute_each_spec_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    path, counter = tmp_path / "runs.sqlite", tmp_path / "computed.txt"
    ResultStore(path).close()  # the schema exists before the processes race
    specs = [{"kind": "lease.multi", "n": n, "seed": 0} for n in range(3)]
    n_procs = 5
    queue, barrier = ctx.Queue(), ctx.Barrier(n_procs)
    procs = [
        ctx.Process(
            target=_child,
            args=(str(path), str(counter), specs, queue),
            kwargs={"barrier": barrier},
        )
        for _ in range(n_procs)
    ]
    for proc in procs:
        proc.start()
    try:
        reports = dict(queue.get(timeout=60) for _ in procs)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)

    lines = _lines(counter)
    assert sorted(int(line[0]) for line in lines) == [0, 1, 2], lines  # each spec once
    computed_by = {int(line[0]): int(line[1]) for line in lines}
    assert len(reports) == n_procs
    for pid, out in reports.items():
        assert [item["n"] for item in out] == [0, 1, 2]
        for item in out:
            assert item["state"] == "done", (pid, item)
            # Everyone got the one computation's result; only its process computed it.
            assert item["metrics"] == {"n": item["n"], "by": computed_by[item["n"]]}
            assert item["from_store"] == (pid != computed_by[item["n"]])
    store = ResultStore(path)
    assert all(store.lease_holder(leases.run_lease_key(spec_key(s))) is None for s in specs)
    store.close()


def test_a_killed_holder_is_taken_over_after_the_staleness_limit(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    path, counter, flag = tmp_path / "runs.sqlite", tmp_path / "computed.txt", tmp_path / "w"
    store = ResultStore(path)
    spec = {"kind": "lease.kill", "n": 0}
    key = leases.run_lease_key(spec_key(spec))
    stale_after = 2.0
    queue = ctx.Queue()
    common = {"heartbeat_s": 0.25, "stale_after": stale_after}
    holder = ctx.Process(
        target=_child,
        args=(str(path), str(counter), [spec], queue),
        kwargs={**common, "sleep_s": 120.0},
    )
    waiter = ctx.Process(
        target=_child,
        args=(str(path), str(counter), [spec], queue),
        kwargs={**common, "sleep_s": 0.2, "flag": str(flag)},
    )
    holder.start()
    try:
        wait_until(lambda: len(_lines(counter)) == 1, timeout=60)  # the holder computes
        lease = store.lease_holder(key)
        assert lease is not None and lease.pid == holder.pid
        waiter.start()
        wait_until(flag.exists, timeout=60)  # the waiter waits for the holder
        time.sleep(0.5)
        assert len(_lines(counter)) == 1  # a live holder is not taken over
        killed_at = time.time()
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        pid, out = queue.get(timeout=30)
    finally:
        for proc in (holder, waiter):
            if proc.pid is not None:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
    assert holder.exitcode == -signal.SIGKILL and waiter.exitcode == 0
    assert pid == waiter.pid
    assert out == [
        {"n": 0, "state": "done", "from_store": False, "metrics": {"n": 0, "by": waiter.pid}}
    ]
    lines = _lines(counter)
    assert [int(line[1]) for line in lines] == [holder.pid, waiter.pid]
    # The waiter took over only once the killed holder's heartbeat was stale.
    assert float(lines[1][2]) - killed_at > stale_after / 2
    record = store.get(spec_key(spec))
    assert record is not None and record.metrics == {"n": 0, "by": waiter.pid}
    assert store.lease_holder(key) is None
    store.close()
