"""Spec keys, the SQLite result store and the background job runner."""

from __future__ import annotations

import io
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustcore import versions
from robustcore.errors import JobCancelled, ValidationError
from robustcore.runs import (
    Job,
    JobContext,
    JobRunner,
    ResultStore,
    RunResult,
    canonical_json,
    get_runner,
    spec_key,
)
from robustcore.runs import runner as runner_module
from robustcore.runs import store as store_module

FAKE_VERSIONS = {"python": "3.11", "torch": "test", "device": "cpu"}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ROBUSTCORE_HOME; ~/.robustcore is never touched."""
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path / "home"))
    # Looking up the device imports torch (seconds); the runs code does not need it here.
    monkeypatch.setattr(store_module, "library_versions", lambda: dict(FAKE_VERSIONS))
    monkeypatch.setattr(runner_module, "library_versions", lambda: dict(FAKE_VERSIONS))
    return tmp_path / "home"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    result_store = ResultStore(tmp_path / "runs.sqlite")
    yield result_store
    result_store.close()


@pytest.fixture
def make_runner(store: ResultStore) -> Iterator[Callable[..., JobRunner]]:
    made: list[JobRunner] = []

    def make(max_workers: int = 2) -> JobRunner:
        made.append(JobRunner(store, max_workers=max_workers))
        return made[-1]

    yield make
    for job_runner in made:
        job_runner.shutdown(wait=True, cancel=True)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def sample_result() -> RunResult:
    table = pd.DataFrame(
        {"eps": [0.0, 0.1, 0.3], "correct": [98, 71, 12], "attack": ["none", "pgd", "pgd"]}
    )
    return RunResult(
        metrics={"accuracy": 0.98, "n": 100, "model": "cnn", "ok": True, "curve": [1, 2.5]},
        tables={"sweep": table},
        artifacts={
            "adv": np.arange(12, dtype=np.float32).reshape(3, 4),
            "plot.png": b"\x89PNG fake",
            "raw": (b"\x00\x01", "application/x-custom"),
            "notes": "plain text ü",
        },
        label="demo run",
    )


def table_rows(path: Path, key: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT (SELECT COUNT(*) FROM tables WHERE key = ?)"
            " + (SELECT COUNT(*) FROM artifacts WHERE key = ?)",
            (key, key),
        ).fetchone()[0]


# ------------------------------------------------------------------------------ spec keys


def test_spec_key_is_stable_and_ignores_order() -> None:
    a = {"kind": "whitebox.sweep", "seed": 0, "attack": {"name": "pgd", "eps": [0.1, 0.2]}}
    b = {"attack": {"eps": (0.1, 0.2), "name": "pgd"}, "seed": 0, "kind": "whitebox.sweep"}
    assert spec_key(a) == spec_key(b)
    assert len(spec_key(a)) == 20 and int(spec_key(a), 16) >= 0
    assert spec_key({"kind": "k", "x": 0.1}) == spec_key({"kind": "k", "x": 0.10000000000000001})
    assert spec_key({"kind": "k", "x": 1}) != spec_key({"kind": "k", "x": 1.0})
    assert spec_key({"kind": "k", "x": 1}) != spec_key({"kind": "k", "x": True})
    assert spec_key(a) != spec_key({**a, "seed": 1})
    assert canonical_json(b) == (
        '{"attack":{"eps":[0.1,0.2],"name":"pgd"},"kind":"whitebox.sweep","seed":0}'
    )
    # The same spec gives the same key in every call (no randomness, no id()).
    assert spec_key(a) == spec_key(dict(a))


def test_spec_key_rejects_values_that_are_not_plain_json() -> None:
    class Tensor:
        pass

    with pytest.raises(ValidationError, match=r"spec\['attack'\]\['eps'\] has type Tensor"):
        spec_key({"kind": "k", "attack": {"eps": Tensor()}})
    with pytest.raises(ValidationError, match=r"spec\['layers'\]\[1\] has type ndarray"):
        spec_key({"kind": "k", "layers": [1, np.zeros(2)]})
    with pytest.raises(ValidationError, match="finite"):
        spec_key({"kind": "k", "eps": float("nan")})
    with pytest.raises(ValidationError, match="finite"):
        spec_key({"kind": "k", "eps": [float("inf")]})
    with pytest.raises(ValidationError, match="string keys"):
        spec_key({"kind": "k", "map": {1: "a"}})


def test_spec_key_requires_a_kind() -> None:
    with pytest.raises(ValidationError, match="kind"):
        spec_key({"seed": 0})
    with pytest.raises(ValidationError, match="kind"):
        spec_key({"kind": 3})
    with pytest.raises(ValidationError, match="dict"):
        spec_key(["kind", "x"])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- versions


def test_library_versions_lists_core_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "_device_name", lambda: "cpu")
    versions._cached_versions.cache_clear()
    try:
        found = versions.library_versions()
    finally:
        versions._cached_versions.cache_clear()
    for name in ("python", "numpy", "pandas", "robustcore", "device"):
        assert isinstance(found[name], str) and found[name]
    assert found["device"] == "cpu"


# ---------------------------------------------------------------------------------- store


def test_store_round_trip(store: ResultStore) -> None:
    spec = {"kind": "whitebox.sweep", "seed": 7, "eps": [0.1, 0.3]}
    key = spec_key(spec)
    original = sample_result()
    store.save(key, spec, original, seconds=1.25)

    record = store.get(key)
    assert record is not None
    assert (record.key, record.kind, record.status, record.seed) == (key, spec["kind"], "done", 7)
    assert record.spec == spec and record.seconds == 1.25 and record.label == "demo run"
    assert record.metrics == original.metrics
    assert record.versions == FAKE_VERSIONS
    assert record.error is None and record.finished >= record.created
    assert record.tables == ["sweep"]
    assert sorted(record.artifact_names) == ["adv", "notes", "plot.png", "raw"]

    table = record.table("sweep")
    pd.testing.assert_frame_equal(table, original.tables["sweep"])
    assert table["correct"].dtype == np.int64 and table["eps"].dtype == np.float64

    adv = record.artifact("adv")
    assert isinstance(adv, np.ndarray) and adv.dtype == np.float32
    np.testing.assert_array_equal(adv, original.artifacts["adv"])
    assert np.load(io.BytesIO(store.load_artifact(key, "adv")), allow_pickle=False).shape == (3, 4)
    assert store.load_artifact(key, "plot.png") == b"\x89PNG fake"
    assert store.artifact_mime(key, "plot.png") == "image/png"
    assert store.artifact_mime(key, "raw") == "application/x-custom"
    assert record.artifact("notes") == "plain text ü"

    loaded = record.result()
    assert loaded.metrics == original.metrics and loaded.label == "demo run"
    pd.testing.assert_frame_equal(loaded.tables["sweep"], original.tables["sweep"])
    np.testing.assert_array_equal(loaded.artifacts["adv"], original.artifacts["adv"])
    assert loaded.artifacts["raw"] == b"\x00\x01"

    with pytest.raises(KeyError, match="no stored table"):
        store.load_table(key, "missing")
    assert store.get("0" * 20) is None


def test_store_tables_keep_dtypes_and_index(store: ResultStore) -> None:
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, np.nan, 2.0],
            "s": ["a", None, "c"],
            "b": [True, False, True],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "c": pd.Categorical(["x", "y", "x"]),
            "t": pd.to_datetime(["2024-01-01", "2024-02-01", None]),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    store.save("k1", {"kind": "t"}, RunResult(tables={"frame": frame}), seconds=0.0)
    pd.testing.assert_frame_equal(store.load_table("k1", "frame"), frame)


def test_store_save_replaces_the_previous_run(store: ResultStore) -> None:
    spec = {"kind": "t"}
    store.save("k", spec, sample_result(), seconds=1.0)
    store.save("k", spec, RunResult(metrics={"v": 2}), seconds=2.0)
    record = store.get("k")
    assert record is not None and record.metrics == {"v": 2}
    assert record.tables == [] and record.artifact_names == []
    assert table_rows(store.path, "k") == 0


def test_store_failed_and_cancelled_runs_are_not_results(store: ResultStore) -> None:
    store.save("f", {"kind": "t"}, RunResult(), seconds=0.1, status="failed", error="E: x")
    store.save("c", {"kind": "t"}, RunResult(), seconds=0.1, status="cancelled")
    assert store.get("f") is None and store.get("c") is None
    failed = store.get("f", any_status=True)
    assert failed is not None and failed.status == "failed" and failed.error == "E: x"
    with pytest.raises(ValidationError, match="status"):
        store.save("x", {"kind": "t"}, RunResult(), seconds=0.0, status="weird")
    # keep_done: a failure never replaces a good stored result.
    store.save("g", {"kind": "t"}, RunResult(metrics={"a": 1}), seconds=0.1)
    assert not store.save(
        "g", {"kind": "t"}, RunResult(), seconds=0.1, status="failed", keep_done=True
    )
    assert store.get("g") is not None


def test_store_list_runs(store: ResultStore) -> None:
    for i in range(3):
        spec = {"kind": "train", "seed": i}
        store.save(
            spec_key(spec), spec, RunResult(metrics={"acc": i / 10, "curve": [1]}), seconds=0.0
        )
    store.save("s1", {"kind": "sweep"}, RunResult(metrics={"asr": 0.5}, label="L"), seconds=1)
    store.save("s2", {"kind": "sweep"}, RunResult(), seconds=1, status="failed", error="x")

    everything = store.list_runs()
    assert len(everything) == 5
    for column in ("key", "kind", "status", "created", "seconds", "seed", "label"):
        assert column in everything.columns
    assert "m.acc" in everything.columns and "m.asr" in everything.columns
    assert "m.curve" not in everything.columns  # lists are not scalar metrics

    train = store.list_runs("train")
    assert list(train["kind"].unique()) == ["train"]
    assert sorted(train["m.acc"].tolist()) == [0.0, 0.1, 0.2]
    assert sorted(train["seed"].tolist()) == [0, 1, 2]
    assert list(train["seed"]) == [2, 1, 0]  # newest first
    assert len(store.list_runs(limit=2)) == 2
    assert store.list_runs("sweep", status="failed")["key"].tolist() == ["s2"]
    empty = store.list_runs("nothing")
    assert empty.empty and "key" in empty.columns

    assert store.delete("s1") and not store.delete("s1")
    assert store.get("s1") is None


def test_store_artifact_size_cap(tmp_path: Path) -> None:
    small = ResultStore(tmp_path / "small.sqlite", max_artifact_bytes=1000)
    too_big = RunResult(metrics={"a": 1}, artifacts={"big": np.zeros(500, dtype=np.float64)})
    with pytest.raises(ValidationError, match="at most"):
        small.save("k", {"kind": "t"}, too_big, seconds=0.0)
    assert small.get("k", any_status=True) is None
    with pytest.raises(ValidationError, match="pickling"):
        small.save(
            "k", {"kind": "t"}, RunResult(artifacts={"o": np.array([object()])}), seconds=0.0
        )
    small.save("k", {"kind": "t"}, RunResult(artifacts={"ok": np.zeros(10)}), seconds=0.0)
    assert small.get("k") is not None
    assert store_module.MAX_ARTIFACT_BYTES == 20 * 1024 * 1024
    small.close()


def test_store_save_rolls_back_on_a_bad_table(store: ResultStore) -> None:
    spec = {"kind": "t"}
    bad = RunResult(
        metrics={"a": 1},
        tables={"good": pd.DataFrame({"x": [1]}), "bad": pd.DataFrame({"x": [object()]})},
    )
    with pytest.raises(ValidationError, match="table 'bad'"):
        store.save("k", spec, bad, seconds=0.0)
    assert store.get("k", any_status=True) is None
    assert table_rows(store.path, "k") == 0

    # A failed replacement leaves the earlier run exactly as it was.
    store.save("k", spec, sample_result(), seconds=1.0)
    with pytest.raises(ValidationError):
        store.save("k", spec, bad, seconds=0.0)
    record = store.get("k")
    assert record is not None and record.label == "demo run" and record.tables == ["sweep"]
    assert len(record.artifact_names) == 4


def test_store_save_rolls_back_on_a_crash(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_encode = store_module._encode_table
    calls = []

    def crash_on_second(name: str, frame: pd.DataFrame) -> bytes:
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real_encode(name, frame)

    monkeypatch.setattr(store_module, "_encode_table", crash_on_second)
    result = RunResult(tables={"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"y": [2]})})
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save("k", {"kind": "t"}, result, seconds=0.0)
    assert calls == ["a", "b"]
    assert store.get("k", any_status=True) is None
    assert table_rows(store.path, "k") == 0
    store.save("other", {"kind": "t"}, RunResult(metrics={"v": 1}), seconds=0.0)
    assert store.get("other") is not None


def test_store_from_several_threads(store: ResultStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(8):
                key = f"w{worker}-{i}"
                frame = pd.DataFrame({"i": [i]})
                store.save(
                    key, {"kind": "t", "seed": i}, RunResult(tables={"t": frame}), seconds=0.0
                )
                record = store.get(key)
                assert record is not None and record.table("t")["i"].iloc[0] == i
                store.list_runs()
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors, errors
    assert len(store.list_runs(limit=1000)) == 32


def test_a_second_store_on_the_same_file_sees_saved_runs(store: ResultStore) -> None:
    other = ResultStore(store.path)
    store.save("k", {"kind": "t"}, sample_result(), seconds=0.5)
    record = other.get("k")
    assert record is not None and record.metrics["n"] == 100
    pd.testing.assert_frame_equal(record.table("sweep"), sample_result().tables["sweep"])
    other.delete("k")
    assert store.get("k") is None
    other.close()


def test_default_store_lives_under_robustcore_home(_home: Path) -> None:
    default = ResultStore()
    assert default.path == _home / "runs.sqlite" and default.path.exists()
    default.close()


# --------------------------------------------------------------------------------- runner


def test_result_is_computed_once_then_served_from_the_store(
    make_runner: Callable[..., JobRunner], store: ResultStore
) -> None:
    runner = make_runner()
    calls = []

    def compute(ctx: JobContext) -> RunResult:
        calls.append(ctx.seed)
        ctx.progress(0.5, "half")
        return sample_result()

    spec = {"kind": "demo", "seed": 3}
    job = runner.submit(spec, compute)
    assert job.wait(5) is job
    assert job.state == "done" and job.done and not job.from_store
    assert job.progress == 1.0 and job.error is None
    assert job.result is not None and job.record is job.result
    assert job.result.metrics == sample_result().metrics and job.result.seed == 3
    assert job.result.versions == FAKE_VERSIONS
    assert store.get(job.key) is not None

    start = time.perf_counter()
    again = runner.submit({"seed": 3, "kind": "demo"}, compute)
    assert time.perf_counter() - start < 0.5
    assert again.from_store and again.done and again.state == "done"
    assert again.key == job.key and again.result is not None
    assert again.result.metrics == job.result.metrics
    pd.testing.assert_frame_equal(again.result.table("sweep"), job.result.table("sweep"))
    assert calls == [3]
    assert runner.get(job.key) is None

    forced = runner.submit(spec, compute, force=True).wait(5)
    assert forced.state == "done" and not forced.from_store
    assert calls == [3, 3]


def test_cancel_while_running(make_runner: Callable[..., JobRunner], store: ResultStore) -> None:
    runner = make_runner()
    started = threading.Event()
    calls = []

    def slow(ctx: JobContext) -> RunResult:
        calls.append(1)
        started.set()
        for i in range(500):
            ctx.progress(i / 500, f"step {i}")
            time.sleep(0.01)
        return RunResult(metrics={"finished": True})

    spec = {"kind": "slow", "seed": 0}
    job = runner.submit(spec, slow)
    assert started.wait(5)
    assert runner.get(job.key) is job
    assert job.cancel()
    job.wait(5)
    assert job.state == "cancelled" and job.result is None
    assert not job.cancel()  # already finished
    assert store.get(job.key) is None
    record = store.get(job.key, any_status=True)
    assert record is not None and record.status == "cancelled"
    assert runner.get(job.key) is None

    def quick(ctx: JobContext) -> RunResult:
        calls.append(2)
        return RunResult(metrics={"finished": True})

    again = runner.submit(spec, quick).wait(5)
    assert not again.from_store and again.state == "done"
    assert calls == [1, 2]


def test_cancel_of_a_queued_job_never_runs_it(
    make_runner: Callable[..., JobRunner], store: ResultStore
) -> None:
    runner = make_runner(max_workers=1)
    release = threading.Event()
    started = threading.Event()
    second_calls = []

    def blocker(ctx: JobContext) -> RunResult:
        started.set()
        release.wait(5)
        return RunResult()

    def second(ctx: JobContext) -> RunResult:
        second_calls.append(1)
        return RunResult()

    first = runner.submit({"kind": "block"}, blocker)
    assert started.wait(5)
    queued = runner.submit({"kind": "second"}, second)
    assert queued.state == "queued"
    assert queued.cancel()
    assert queued.state == "cancelled" and queued.done  # at once, no waiting
    assert runner.get(queued.key) is None
    release.set()
    assert first.wait(5).state == "done"
    time.sleep(0.05)
    assert second_calls == []
    assert store.get(queued.key) is None


def test_identical_concurrent_submits_share_one_job(
    make_runner: Callable[..., JobRunner],
) -> None:
    runner = make_runner()
    release = threading.Event()
    calls = []
    barrier = threading.Barrier(2)
    jobs: list[Job] = []

    def compute(ctx: JobContext) -> RunResult:
        calls.append(1)
        release.wait(5)
        return RunResult(metrics={"v": 1})

    def session() -> None:
        barrier.wait(5)
        jobs.append(runner.submit({"kind": "shared", "seed": 1}, compute))

    threads = [threading.Thread(target=session) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(jobs) == 2 and jobs[0] is jobs[1]
    release.set()
    assert jobs[0].wait(5).state == "done"
    assert calls == [1]


def test_a_failing_job_is_recorded_and_the_store_keeps_working(
    make_runner: Callable[..., JobRunner],
    store: ResultStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = make_runner()

    def broken(ctx: JobContext) -> RunResult:
        ctx.progress(0.2, "about to fail")
        raise ValueError("boom 42")

    with caplog.at_level(logging.ERROR, logger="robustcore.runs.runner"):
        job = runner.submit({"kind": "broken"}, broken).wait(5)
    assert job.state == "failed" and job.result is None
    assert job.error == "ValueError: boom 42"
    assert job.traceback is not None and "boom 42" in job.traceback
    assert "boom 42" in caplog.text
    assert store.get(job.key) is None
    record = store.get(job.key, any_status=True)
    assert record is not None and record.status == "failed" and "boom 42" in (record.error or "")
    assert table_rows(store.path, job.key) == 0

    ok = runner.submit({"kind": "fine"}, lambda ctx: RunResult(metrics={"v": 1})).wait(5)
    assert ok.state == "done" and store.get(ok.key) is not None

    wrong = runner.submit({"kind": "wrong"}, lambda ctx: {"v": 1}).wait(5)  # type: ignore
    assert wrong.state == "failed" and "RunResult" in (wrong.error or "")

    # A failed forced re-computation never replaces a good stored result.
    again = runner.submit({"kind": "fine"}, broken, force=True).wait(5)
    assert again.state == "failed"
    kept = store.get(ok.key)
    assert kept is not None and kept.metrics == {"v": 1}


def test_a_crash_while_saving_fails_the_job_without_a_partial_run(
    make_runner: Callable[..., JobRunner], store: ResultStore
) -> None:
    runner = make_runner()

    def unstorable(ctx: JobContext) -> RunResult:
        return RunResult(
            metrics={"a": 1},
            tables={"ok": pd.DataFrame({"x": [1]}), "bad": pd.DataFrame({"x": [object()]})},
        )

    job = runner.submit({"kind": "unstorable"}, unstorable).wait(5)
    assert job.state == "failed" and "table 'bad'" in (job.error or "")
    assert store.get(job.key) is None
    assert table_rows(store.path, job.key) == 0


def test_progress_is_visible_while_running(make_runner: Callable[..., JobRunner]) -> None:
    runner = make_runner()
    release = threading.Event()

    def compute(ctx: JobContext) -> RunResult:
        ctx.progress(0.5, "halfway")
        release.wait(5)
        ctx.progress(7.0)  # clamped
        release.clear()
        return RunResult()

    job = runner.submit({"kind": "progress"}, compute)
    wait_until(lambda: job.progress == 0.5)
    assert job.state == "running" and job.message == "halfway" and not job.done
    assert job.snapshot()["state"] == "running" and job.elapsed >= 0.0
    release.set()
    assert job.wait(5).state == "done" and job.progress == 1.0


def test_job_context_checks_cancellation(make_runner: Callable[..., JobRunner]) -> None:
    runner = make_runner()
    seen: dict[str, object] = {}
    go = threading.Event()

    def compute(ctx: JobContext) -> RunResult:
        seen["seed"], seen["kind"] = ctx.seed, ctx.spec["kind"]
        go.wait(5)
        seen["cancelled"] = ctx.cancelled
        try:
            ctx.check_cancelled()
        except JobCancelled as exc:
            raise RuntimeError("wrapped") from exc  # still counts as a cancellation
        return RunResult()

    job = runner.submit({"kind": "ctx"}, compute)
    wait_until(lambda: job.state == "running")
    job.cancel()
    go.set()
    assert job.wait(5).state == "cancelled"
    assert seen == {"seed": 0, "kind": "ctx", "cancelled": True}


def test_get_runner_is_a_singleton_per_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _home: Path
) -> None:
    first = get_runner()
    try:
        assert get_runner() is first
        assert first.store.path.parent == _home.resolve()
        monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path / "other"))
        second = get_runner()
        assert second is not first
        assert second.store.path == (tmp_path / "other").resolve() / "runs.sqlite"
    finally:
        get_runner().shutdown()
