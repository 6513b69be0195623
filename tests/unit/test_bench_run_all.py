"""bench/run_all.py: the summary table's ratios and verdicts, from benchmark JSON it is given.

No benchmark runs here (speed is never a test); these check that the table divides the
right numbers, applies each target to the rows it names and says MISSED when one is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import run_all  # noqa: E402


def _wb_row(library, attack, seconds, acc, images=256, floor=1.05):
    return {
        "library": library,
        "attack": attack,
        "images": images,
        "seconds": seconds,
        "adv_accuracy": acc,
        "step_over_floor": floor,
    }


WHITEBOX = {
    "args": {"eps": 0.3},
    "rows": [
        _wb_row("robustcore", "fgsm", 0.056, 0.059),
        _wb_row("torchattacks", "fgsm", 0.069, 0.059),
        _wb_row("robustcore", "pgd", 2.323, 0.0, floor=1.08),
        _wb_row("robustcore (early stop)", "pgd", 0.463, 0.0, floor=1.2),
        _wb_row("torchattacks", "pgd", 2.180, 0.0),
        _wb_row("robustcore", "cw", 5.0, 0.0, images=32, floor=1.3),
        _wb_row("art", "cw", 64.0, 0.06, images=32),
    ],
}


def _find(rows, what_prefix, ours, reference):
    found = [
        r
        for r in rows
        if r.what.startswith(what_prefix) and r.ours == ours and r.reference == reference
    ]
    assert len(found) == 1, [(r.what, r.ours, r.reference) for r in rows]
    return found[0]


def test_whitebox_ratios_and_targets():
    rows = run_all.whitebox_ratios(WHITEBOX)
    fgsm = _find(rows, "fgsm", "robustcore", "torchattacks")
    assert fgsm.ratio == pytest.approx(0.056 / 0.069)
    assert fgsm.met is True and fgsm.ours_per_s == pytest.approx(256 / 0.056)
    pgd = _find(rows, "pgd", "robustcore", "torchattacks")
    assert pgd.ratio == pytest.approx(2.323 / 2.180) and pgd.met is False
    early = _find(rows, "pgd", "robustcore (early stop)", "torchattacks")
    assert early.ratio == pytest.approx(0.463 / 2.180) and early.met is True
    assert _find(rows, "pgd", "robustcore", "floor per step (fwd + bwd)").met is True
    assert _find(rows, "cw", "robustcore", "floor per step (fwd + bwd)").met is False
    cw = _find(rows, "cw", "robustcore", "art")
    assert cw.ratio == pytest.approx(5.0 / 64.0) and cw.met is True
    assert "ε=0.3" in fgsm.what and "ε" not in cw.what


def test_faster_but_weaker_early_stop_is_missed():
    data = {
        "args": {"eps": 0.1},
        "rows": [
            _wb_row("robustcore (early stop)", "pgd", 0.5, 0.30),
            _wb_row("torchattacks", "pgd", 2.0, 0.25),
        ],
    }
    early = _find(run_all.whitebox_ratios(data), "pgd", "robustcore (early stop)", "torchattacks")
    assert early.ratio == pytest.approx(0.25) and early.met is False
    assert "30.0 %" in early.note and "25.0 %" in early.note


def test_blackbox_ratios():
    row = {
        "library": "robustcore",
        "attack": "simba-dct",
        "settings": "ε=0.2",
        "images": 10,
        "seconds": 1.2,
        "seconds_per_image": 0.12,
        "forward_seconds": 0.8,
        "success_rate": 1.0,
        "mean_queries": 500.0,
    }
    art = dict(row, library="art", seconds=3.8, seconds_per_image=0.38, success_rate=0.9)
    art["forward_seconds"] = None
    rows = run_all.blackbox_ratios({"rows": [row, dict(row, images=100, seconds=6.0), art]})
    q10 = _find(rows, "simba-dct (10 images)", "robustcore", "its queries' forward passes")
    assert q10.ratio == pytest.approx(1.5) and q10.met is True
    q100 = _find(rows, "simba-dct (100 images)", "robustcore", "its queries' forward passes")
    assert q100.ratio == pytest.approx(7.5) and q100.met is False
    vs_art = _find(rows, "simba-dct (10 images)", "robustcore", "art")
    assert vs_art.ratio == pytest.approx(0.12 / 0.38) and vs_art.met is False
    # ART ran on 10 images only: no per-image ratio for the 100-image row.
    assert not [r for r in rows if r.what.startswith("simba-dct (100") and r.reference == "art"]


def test_training_and_pages():
    training = {
        "sections": {
            "passes": {
                "rows": [
                    {"method": "standard", "passes": 1, "sec_epoch": 1.0, "ratio": None},
                    {"method": "PGD-AT", "passes": 11, "sec_epoch": 12.0, "ratio": 12 / 11},
                    {"method": "TRADES", "passes": 11, "sec_epoch": 13.0, "ratio": 13 / 11},
                ]
            }
        }
    }
    tr = run_all.training_ratios(training)
    assert [r.met for r in tr] == [True, False]
    pages = {
        "goals_s": {"cold": 30.0, "warm": 1.0},
        "rows": [
            {"title": "White-box attacks", "cold_s": 28.0, "warm_s": 0.005, "cold_ok": True,
             "warm_ok": True},
            {"title": "Defensive distillation", "cold_s": 90.0, "warm_s": 0.01, "cold_ok": False,
             "warm_ok": True},
            {"title": "Broken", "cold_s": 3.0, "warm_s": float("nan"), "cold_ok": False,
             "warm_ok": False},
        ],
    }  # fmt: skip
    pr = run_all.page_ratios(pages)
    assert [(r.what, r.met) for r in pr] == [
        ("White-box attacks (cold)", True),
        ("White-box attacks (warm)", True),
        ("Defensive distillation (cold)", False),
        ("Defensive distillation (warm)", True),
        ("Broken (cold)", False),
    ]
    assert pr[2].ratio == pytest.approx(3.0)


def test_table_has_a_line_per_ratio_and_says_missed():
    results = {"whitebox": {"result": WHITEBOX}, "blackbox": {"result": {}}}
    rows = run_all.all_ratios(results)
    lines = run_all.markdown(rows)
    assert len(lines) == 2 + len(rows)
    assert any("| MISSED |" in line for line in lines)
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_gpu_commands_fill_the_device():
    cpu = run_all.commands("cpu", 1, quick=False)
    gpu = run_all.commands("cuda", None, quick=False)
    assert "4096" in gpu["whitebox"][0][1] and "4096" not in cpu["whitebox"][0][1]
    assert "--threads" in cpu["blackbox"][0][1] and "--threads" not in gpu["blackbox"][0][1]
    assert [name for name, _ in cpu["whitebox"]] == ["whitebox", "whitebox_eps01"]


@pytest.mark.slow
def test_the_quick_run_drives_every_benchmark(tmp_path):
    """``run_all.py --quick`` end to end: every benchmark process exits 0 and yields ratio
    rows (a smoke run with tiny sizes; no timing is asserted)."""
    import json
    import subprocess

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "bench" / "run_all.py"), "--quick", "--out", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "run_all.json").read_text())
    assert set(data["benchmarks"]) == {
        "whitebox", "whitebox_eps01", "blackbox", "training", "pages"
    }  # fmt: skip
    benches = {r["bench"] for r in data["ratios"]}
    assert benches == set(data["benchmarks"])
    assert "| benchmark | what |" in proc.stdout and "load average" in proc.stdout
