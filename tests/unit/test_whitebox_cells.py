"""White-box runs are assembled from cells (robustcore.runs.cells): a what-if that changes
only PGD's steps computes PGD and the check that depends on it, and reuses FGSM, C&W and
the unbounded attack; the numbers are those of a run from scratch; a cell is never served
to another model or other data; cells survive a restart; a forced run computes them again;
a run and its what-if submitted together compute their shared cells once."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustcore.attacks.evasion import FGSM, PGD, CarliniWagnerL2
from robustcore.errors import ValidationError
from robustcore.experiments import Target
from robustcore.experiments.whitebox import REACH_STEPS, WhiteBox
from robustcore.runs import JobRunner, ResultStore, RunResult
from robustcore.runs.cells import CellCache, model_fingerprint


@pytest.fixture()
def calls(monkeypatch):
    """Every attack computation, counted by kind: ``fgsm``, ``cw``, ``pgd`` (the sweep's and
    the convergence check's) and ``reach`` (the unbounded attack's PGD)."""
    seen: Counter[str] = Counter()

    def counting(cls, kind_of):
        original = cls._attack

        def _attack(self, *args, **kwargs):
            seen[kind_of(self)] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "_attack", _attack)

    counting(FGSM, lambda a: "fgsm")
    counting(CarliniWagnerL2, lambda a: "cw")
    counting(
        PGD,
        lambda a: "reach" if a.steps == REACH_STEPS and not a.random_start else "pgd",
    )
    return seen


@pytest.fixture()
def model(tiny_cnn):
    return tiny_cnn.model


@pytest.fixture()
def target(model):
    return Target.upload(model, "tiny-cnn-cells", arch="small_cnn", label="tiny")


def _small(target: Target, **changes) -> WhiteBox:
    exp = WhiteBox(
        n=40,
        n_cw=8,
        eps=(0.0, 0.1, 0.3),
        pgd=PGD(steps=3, early_stop=True),
        cw=CarliniWagnerL2(binary_search_steps=1, max_iter=10),
    ).on(target)
    return exp.replace(**changes) if changes else exp


def _assert_same(a: RunResult, b: RunResult) -> None:
    """Equal tables, artifacts and metrics, bit for bit (timings aside)."""
    assert list(a.tables) == list(b.tables) and list(a.artifacts) == list(b.artifacts)
    for name in a.tables:
        ta, tb = a.tables[name], b.tables[name]
        if "seconds" in ta:
            ta, tb = ta.drop(columns="seconds"), tb.drop(columns="seconds")
        pd.testing.assert_frame_equal(ta, tb, check_exact=True, obj=name)
    for name, value in a.artifacts.items():
        assert value.dtype == b.artifacts[name].dtype, name
        assert np.array_equal(value, b.artifacts[name]), name
    drop = {"cw_seconds"}
    ma = {k: v for k, v in a.metrics.items() if k not in drop}
    mb = {k: v for k, v in b.metrics.items() if k not in drop}
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k] == mb[k] or (ma[k] != ma[k] and mb[k] != mb[k]), k  # NaN == NaN


def _messages():
    seen: list[str] = []
    return seen, lambda fraction, message="": seen.append(message)


def test_a_what_if_on_pgd_steps_computes_only_pgd_and_its_check(
    tmp_path, mnist5k, model, target, calls
):
    cells = CellCache(ResultStore(tmp_path / "runs.sqlite"))
    first = _small(target)
    first.run(mnist5k, model, cells=cells)
    assert calls["fgsm"] and calls["cw"] and calls["reach"] and calls["pgd"]

    calls.clear()
    what_if = _small(target, pgd=PGD(steps=5, early_stop=True))
    seen, progress = _messages()
    assembled = what_if.run(mnist5k, model, progress, cells=cells)
    assert calls["fgsm"] == 0 and calls["cw"] == 0 and calls["reach"] == 0
    assert calls["pgd"] > 0  # the sweep and the convergence check, with 5 steps
    for part in ("Clean accuracy", "FGSM", "C&W", "Sanity check (unbounded attack)"):
        assert f"{part}: reused from an earlier run" in seen, (part, seen)
    assert not any(m.startswith(("PGD: reused", "Sanity check (PGD")) for m in seen), seen

    calls.clear()
    _assert_same(assembled, what_if.run(mnist5k, model))  # from scratch, no cells
    assert calls["fgsm"] and calls["cw"] and calls["reach"] and calls["pgd"]
    calls.clear()
    _assert_same(assembled, what_if.run(mnist5k, model, cells=cells))  # all reused
    assert sum(calls.values()) == 0


def test_another_model_or_other_data_never_reuses_a_cell(tmp_path, mnist5k, model, target, calls):
    cells = CellCache(ResultStore(tmp_path / "runs.sqlite"))
    exp = _small(target)
    exp.run(mnist5k, model, cells=cells)

    # Other weights under the very same target spec (an upload with the same name).
    other = copy.deepcopy(model)
    next(other.parameters()).data.mul_(0.9)
    assert model_fingerprint(other) != model_fingerprint(model)
    # Other data: the same test set with one image changed.
    x_test = mnist5k.x_test.clone()
    x_test[0] = 1.0 - x_test[0]
    data = dataclasses.replace(mnist5k, x_test=x_test, _fingerprint=None)
    assert data.fingerprint() != mnist5k.fingerprint()
    # Another target spec on the same weights.
    renamed = Target.upload(model, "tiny-cnn-cells-other", arch="small_cnn")

    for ds, m, t in ((mnist5k, other, target), (data, model, target), (mnist5k, model, renamed)):
        calls.clear()
        seen, progress = _messages()
        exp.on(t).run(ds, m, progress, cells=cells)
        assert not any("reused" in s for s in seen), seen
        assert calls["fgsm"] and calls["pgd"] and calls["cw"] and calls["reach"]


def test_cells_survive_a_restart_and_force_computes_them_again(tmp_path, mnist5k, target, calls):
    path = tmp_path / "runs.sqlite"
    runner = JobRunner(ResultStore(path))
    try:
        job = runner.submit(_small(target), mnist5k).wait()
        assert job.state == "done", job.error
    finally:
        runner.shutdown()
    kinds = set(ResultStore(path).list_cells()["kind"])
    parts = {"clean", "fgsm", "pgd", "cw", "sanity.reaches_chance", "sanity.converged"}
    assert kinds == {f"whitebox.{p}" for p in parts}

    calls.clear()
    runner = JobRunner(ResultStore(path))  # a new process would see the same file
    try:
        fewer_cw = _small(target, n_cw=4)  # only C&W's inputs change
        job = runner.submit(fewer_cw, mnist5k).wait()
        assert job.state == "done", job.error
        assert calls["fgsm"] == 0 and calls["pgd"] == 0 and calls["reach"] == 0
        assert calls["cw"] > 0
        calls.clear()
        job = runner.submit(fewer_cw, mnist5k, force=True).wait()
        assert job.state == "done", job.error
        assert calls["fgsm"] and calls["pgd"] and calls["cw"] and calls["reach"]
    finally:
        runner.shutdown()


def test_a_run_and_its_what_if_submitted_together_share_their_cells(
    tmp_path, mnist5k, model, target, calls
):
    _small(target, n=30).run(mnist5k, model)  # no cells: the attack calls of one run
    one_run = Counter(calls)
    calls.clear()
    runner = JobRunner(ResultStore(tmp_path / "runs.sqlite"), max_workers=2)
    try:
        b_exp = _small(target, n=30, pgd=PGD(steps=4, early_stop=True))
        a = runner.submit(_small(target, n=30), mnist5k)
        b = runner.submit(b_exp, mnist5k)
        for job in (a.wait(), b.wait()):
            assert job.state == "done", job.error
    finally:
        runner.shutdown()
    # FGSM, C&W and the unbounded attack once; PGD's sweep and check once for each run.
    for kind in ("fgsm", "cw", "reach"):
        assert calls[kind] == one_run[kind], (kind, calls, one_run)
    assert calls["pgd"] > one_run["pgd"]
    # The what-if's stored result is the one a run from scratch gives.
    scratch = _stored(tmp_path / "scratch.sqlite", b_exp, mnist5k)
    _assert_same(b.result.result(), scratch)


def _stored(path: Path, exp: WhiteBox, data) -> RunResult:
    """``exp`` computed from scratch in a new store and read back, as a job's result is."""
    runner = JobRunner(ResultStore(path))
    try:
        job = runner.submit(exp, data).wait()
        assert job.state == "done", job.error
        return job.result.result()
    finally:
        runner.shutdown()


def test_cells_round_trip_in_the_store_and_stay_out_of_its_runs(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    arrays = {
        "pred": np.arange(3, dtype=np.int64),
        "success": np.array([True, False]),
        "adv": np.full((2, 1, 2, 2), 0.1, dtype=np.float32),
    }
    metrics = {"rows": [{"attack": "PGD", "accuracy": 0.1}], "nan": float("nan")}
    store.save_cell("k1", {"kind": "demo.cell", "eps": [0.1]}, metrics, arrays, seconds=1.5)
    cell = store.get_cell("k1")
    assert (
        cell is not None
        and cell.kind == "demo.cell"
        and cell.spec == {"kind": "demo.cell", "eps": [0.1]}
    )
    assert cell.metrics["rows"] == metrics["rows"] and cell.metrics["nan"] != cell.metrics["nan"]
    for name, value in arrays.items():
        assert cell.arrays[name].dtype == value.dtype and np.array_equal(cell.arrays[name], value)
    assert store.get("k1") is None and store.list_runs().empty  # cells are not runs
    with pytest.raises(ValidationError, match="numeric"):
        store.save_cell("k2", {"kind": "demo.cell"}, {}, {"o": np.array(["x"], object)}, seconds=0)
    assert list(store.list_cells()["key"]) == ["k1"]
    assert store.delete_cells() == 1 and store.get_cell("k1") is None


def test_a_cell_whose_computation_fails_is_computed_by_the_job_that_waited(tmp_path):
    cells = CellCache(ResultStore(tmp_path / "runs.sqlite"))
    spec = {"kind": "demo.cell", "n": 1}
    started, errors, waited = threading.Event(), [], []

    def failing():
        started.set()
        time.sleep(0.6)
        raise RuntimeError("boom")

    def first_job():
        try:
            cells.get_or_compute(spec, failing)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=first_job)
    thread.start()
    started.wait(5)
    out = cells.get_or_compute(spec, lambda: ({"v": 1}, {}), waiting=lambda: waited.append(1))
    thread.join(5)
    assert errors and waited  # the second job waited for the first, which failed
    assert out.metrics == {"v": 1} and not out.reused
    assert cells.get_or_compute(spec, failing).reused  # now stored: nothing computes


def test_the_convergence_check_runs_even_when_clean_accuracy_is_nearest_half(mnist5k, target):
    # With the grid (0, 0.3), accuracy at ε = 0.3 is 0 and at ε = 0 near 1: both are about as
    # far from 50 %, and ε = 0 (nothing to converge) must never be the one checked.
    exp = _small(target, eps=(0.0, 0.3), attacks=("pgd",))
    res = exp.run(mnist5k, target.model)
    names = list(res.tables["sanity"]["check"])
    assert "PGD convergence at ε=0.3" in names, names
