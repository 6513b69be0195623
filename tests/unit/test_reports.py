"""Reports from stored runs: the self-contained HTML (plotly.js once), the ZIP, the
generated limitations, comparisons, run labels, and deleting a run without leaving the
store inconsistent."""

from __future__ import annotations

import html
import io
import json
import sqlite3
import zipfile

import pytest
from helpers.report_runs import two_whitebox_runs
from plotly.offline import get_plotlyjs

from robustcore.cli import main
from robustcore.errors import ValidationError
from robustcore.reports import build_report, compare, to_html, to_zip
from robustcore.reports.document import ATTACK_CATALOGUE, resolve_keys, run_section
from robustcore.reports.history import filter_history, history
from robustcore.reports.model_card import model_card, runs_on_model
from robustcore.runs import ResultStore, RunResult, get_runner


@pytest.fixture(scope="module")
def keys(mnist5k, tiny_cnn):
    return two_whitebox_runs(mnist5k)


@pytest.fixture(scope="module")
def store():
    return get_runner().store


def test_html_report_is_self_contained_with_plotly_js_once(store, keys):
    report = build_report(store, keys, title="Two <PGD> budgets", summary="Made **here**.")
    page = to_html(report)
    js = get_plotlyjs()
    assert page.count(js[:300]) == 1  # inlined exactly once, not per figure
    rest = page.replace(js, "")  # the page without plotly.js: nothing loads from outside
    assert len(page) - len(rest) == len(js)
    assert "src=" not in rest and "http://" not in rest and "https://" not in rest
    charts = sum(len(s.charts) for s in report.sections)
    assert charts >= 2 and page.count('class="plotly-graph-div"') == charts
    assert "Two &lt;PGD&gt; budgets" in rest and "<strong>here</strong>" in rest  # escaped
    for key in keys:  # the appendix: key, spec, seed, versions
        assert key in rest
    text = html.unescape(rest)
    assert '"torch":' in text and '"steps": 6' in text
    assert "What this evaluation does not show" in rest


def test_limitations_name_the_attacks_not_tried_and_the_threat(store, keys):
    report = build_report(store, keys)
    limits = dict(report.limitations)
    tried = set().union(*(s.tried for s in report.sections))
    assert {"FGSM", "PGD"} <= tried and "C&W" not in tried
    untried = " ".join(limits["Attacks not tried"])
    assert "SimBA" in untried and "C&W" in untried and "FGSM (" not in untried
    assert limits["Threat models assumed"][0]
    assert "mnist5k" in " ".join(limits["Scope"])
    assert set(tried) <= set(ATTACK_CATALOGUE)


def test_zip_holds_json_and_csv_per_run(store, keys):
    data = to_zip(build_report(store, keys, title="Z"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("report.json"))
        assert [r["key"] for r in manifest["runs"]] == keys
        for run in manifest["runs"]:
            body = json.loads(zf.read(f"{run['folder']}/run.json"))
            assert body["key"] == run["key"] and body["spec"]["kind"] == "whitebox"
            assert any(n.startswith(run["folder"]) and n.endswith(".csv") for n in names)


def test_compare_names_what_differs_and_overlays_one_colour_per_run(store, keys):
    sections = [run_section(store.get(k)) for k in keys]
    assert compare.run_names(sections) == ["pgd.steps=3", "pgd.steps=6"]
    table = compare.differences_table(sections)
    assert table["setting"].tolist() == ["pgd.steps"]
    (cid, per), *_ = compare.chart_pairs(sections)
    fig = compare.overlay(per, compare.run_names(sections))
    assert fig is not None
    for trace in fig.data:  # each line is either one run's, or shared and said so
        assert trace.name.startswith(("pgd.steps=3", "pgd.steps=6", "every run (2)")), trace.name
        assert ("(identical)" in trace.name) == (trace.line.color == compare.SHARED)
    metrics = compare.metric_table(sections, [store.get(k).metrics for k in keys], "robust_*")
    assert "Δ pgd.steps=6" in metrics.columns
    shown = compare.as_text(metrics)
    assert all(isinstance(v, str) for v in shown.to_numpy().ravel())
    with pytest.raises(ValidationError, match="2 to 6"):
        compare.check_count(1)


def test_history_rows_and_filters(store, keys):
    frame = history(store)
    row = frame[frame["key"] == keys[1]].iloc[0]
    assert row["experiment"] == "White-box attacks" and "pgd.steps=6" in row["settings"]
    assert row["headline"].startswith("robust_accuracy") and row["status"] == "done"
    assert set(filter_history(frame, text="pgd.steps=6")["key"]) >= {keys[1]}
    assert filter_history(frame, kinds=["label_flipping"], text=keys[0]).empty


def test_labels_keys_and_model_card(store, keys, mnist5k):
    assert store.set_label(keys[0], "  baseline PGD-3  ")
    assert store.get(keys[0]).label == "baseline PGD-3"
    with pytest.raises(ValidationError, match="at most 200"):
        store.set_label(keys[0], "x" * 201)
    assert not store.set_label("nope", "x")
    assert resolve_keys(store, [keys[0][:8]]) == [keys[0]]
    with pytest.raises(ValidationError, match="at least 6"):
        resolve_keys(store, ["abc"])
    target = store.get(keys[0]).spec["target"]
    found = runs_on_model(store, target, mnist5k.fingerprint())
    assert set(keys) <= set(found)
    card = model_card(store, target, mnist5k, label="tiny")
    assert card.title == "Model card: tiny" and {s.key for s in card.sections} >= set(keys)


def test_deleting_a_run_leaves_the_store_and_reports_consistent(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    spec = {"kind": "demo", "seed": 0}
    import numpy as np
    import pandas as pd

    for key in ("a" * 20, "b" * 20):
        store.save(
            key,
            spec,
            RunResult(
                metrics={"x": 1.0},
                tables={"t": pd.DataFrame({"v": [1, 2]})},
                artifacts={"arr": np.zeros(3)},
            ),
            seconds=0.1,
        )
    store.save_report("r1", "R", "", ["a" * 20, "b" * 20])
    assert store.delete("a" * 20)
    assert store.get("a" * 20, any_status=True) is None
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        for table in ("tables", "artifacts"):
            left = db.execute(f"SELECT COUNT(*) FROM {table} WHERE key = ?", ("a" * 20,))
            assert left.fetchone()[0] == 0
    assert store.get_report("r1")["keys"] == ["b" * 20]
    assert store.get("b" * 20).table("t")["v"].tolist() == [1, 2]
    report = build_report(store, ["a" * 20, "b" * 20])
    assert report.missing == ["a" * 20] and len(report.sections) == 1
    assert store.delete_report("r1") and store.get_report("r1") is None


def test_build_report_refuses_bad_input(store, keys):
    with pytest.raises(ValidationError, match="at least one run"):
        build_report(store, [])
    with pytest.raises(ValidationError, match="title"):
        build_report(store, keys, title="t" * 201)


def test_cli_writes_html_and_zip_and_refuses_unknown_formats(keys, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--runs", keys[0][:10], keys[1], "--out", str(out)]) == 0
    assert out.read_text().count("plotly-graph-div") >= 2
    assert main(["report", "--runs", keys[0], "--out", str(tmp_path / "r.zip")]) == 0
    assert zipfile.is_zipfile(tmp_path / "r.zip")
    assert main(["report", "--runs", keys[0], "--out", str(tmp_path / "r.txt")]) == 2
    assert ".html, .pdf or .zip" in capsys.readouterr().err


def test_overlay_gives_each_run_a_colour_and_merges_identical_lines():
    import plotly.graph_objects as go

    from robustcore.reports.blocks import Chart

    def chart(pgd):
        fig = go.Figure(
            [
                go.Scatter(x=[0, 0.1], y=[0.9, 0.5], name="FGSM", mode="lines"),
                go.Scatter(x=[0, 0.1], y=pgd, name="PGD", mode="lines"),
            ]
        )
        return Chart("sweep", fig)

    fig = compare.overlay([chart([0.9, 0.3]), chart([0.9, 0.1])], ["steps=10", "steps=40"])
    names = {t.name: t.line.color for t in fig.data}
    assert names["every run (2) · FGSM (identical)"] == compare.SHARED
    assert names["steps=10 · PGD"] != names["steps=40 · PGD"]
    assert compare.SHARED not in (names["steps=10 · PGD"], names["steps=40 · PGD"])
    heat = Chart("cm", go.Figure(go.Heatmap(z=[[1, 0], [0, 1]])))
    assert compare.overlay([heat, heat], ["a", "b"]) is None  # drawn side by side instead
