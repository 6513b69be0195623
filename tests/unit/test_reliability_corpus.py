"""Issue 17, item 7: a generated corpus of malformed and hostile uploads (tests/helpers/corpus.py),
each loaded with the loader the sidebar uses, must be answered with a typed error whose message
is short, printable and never relays a library's advice to turn a safety check off; no file may
appear or change outside the data folder (a pickle payload that ran would create its marker);
the bombs stay under the upload memory budget (measured in a subprocess, per file).

Run alone to see the outcome counts (the README quotes them):
``python3 -m pytest tests/unit/test_reliability_corpus.py -q -p no:cacheprovider -n 0``.

Out of scope here: slow models (a forward pass that sleeps or loops) need the forward check in
a worker process with a deadline, which does not exist yet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers.corpus import (
    BOMB_FAMILIES,
    DATASET_FAMILIES,
    MODEL_FAMILIES,
    Case,
    generate,
    image_dataset,
    memory_edge,
    outcome,
)

pytestmark = pytest.mark.xdist_group("reliability_corpus")  # one worker: the summary sees all

REPO = Path(__file__).resolve().parents[2]
BOMB_BUDGET_MB = 64
"""ROBUSTCORE_UPLOAD_MEMORY_MB in the subprocess that loads the bombs."""
MAX_MESSAGE = 300
MAX_SENTENCES = 2
TYPED = ("UploadError", "ModelError")
"""The errors a bad upload may give (robustcore.errors; both are RobustcoreError)."""
BANNED = (
    "weights_only",
    "allow_pickle",
    "trust",
    "unsafe",
    "safe_globals",
    "max_header_size",
    "pickle_module",
    "torch_force",
    "disable",
    "traceback",
    "strict=false",
    "at your own risk",
)
"""Advice to turn a safety check off, or signs of a dumped traceback."""

OUTCOMES: dict[str, Counter] = {}
"""Per family, how many files got which answer (the error's class name)."""
KINDS: dict[str, str] = {}


def message_problems(message: str) -> list[str]:
    """What is wrong with an error message a person will read (empty when nothing)."""
    problems = []
    if not message.strip():
        problems.append("empty message")
    if len(message) > MAX_MESSAGE:
        problems.append(f"{len(message)} characters")
    sentences = len(re.findall(r"[.!?](?=\s+[A-Z]|\s*$)", message))
    if sentences > MAX_SENTENCES:
        problems.append(f"{sentences} sentences")
    if not message.isprintable():
        problems.append("unprintable characters")
    if re.search(r"\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|(?<![\w'\"])b['\"]", message):
        problems.append("escaped bytes")
    lower = message.lower()
    problems += [f"says {word!r}" for word in BANNED if word in lower]
    return problems


def judge(case: Case, result: dict) -> list[str]:
    """Problems with one file's outcome: loaded, an untyped error, or a bad message."""
    if result["error"] is None:
        return [f"{case.id}: loaded, expected a typed error"]
    if not set(TYPED) & set(result["mro"]) or "RobustcoreError" not in result["mro"]:
        return [f"{case.id}: untyped {result['error']}: {result['message'][:200]!r}"]
    return [
        f"{case.id}: {p}: {result['message'][:400]!r}" for p in message_problems(result["message"])
    ]


def snapshot(*roots: Path, top_only: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    """Every file under ``roots`` (recursively) and at the top of ``top_only`` with its
    size and mtime; caches of tools are skipped."""
    out = {}
    skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in skip]
            for name in [*filenames, *dirnames]:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                out[p] = (st.st_size, st.st_mtime_ns)
    for root in top_only:
        for entry in os.scandir(root):
            if entry.name not in skip:
                out[entry.path] = (0, 0)  # new entries only: others may edit files in there
    return out


def _written(cases: list[Case], folder: Path) -> list[tuple[Case, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, case in enumerate(cases):
        path = folder / f"{i:03d}-{case.name[:60]}{case.suffix}"
        path.write_bytes(case.data)
        out.append((case, path))
    return out


def _record(family: str, kind: str, results: list[dict]) -> None:
    KINDS[family] = "dataset" if kind == "npz" else "model"
    OUTCOMES[family] = Counter(r["error"] or "loaded" for r in results)


@pytest.fixture(scope="module")
def model_dataset():
    return image_dataset()


@pytest.mark.parametrize(
    ("family", "kind", "fn"),
    DATASET_FAMILIES + MODEL_FAMILIES,
    ids=[f[0] for f in DATASET_FAMILIES + MODEL_FAMILIES],
)
def test_every_file_of_the_family_gets_a_typed_plain_error(
    family, kind, fn, tmp_path, monkeypatch, model_dataset
):
    sandbox = tmp_path / "outside"  # where a payload that ran would leave its marker
    sandbox.mkdir()
    cases = generate(family, kind, fn, sandbox, budget=BOMB_BUDGET_MB * 2**20)
    files = _written(cases, tmp_path / "files")
    monkeypatch.chdir(sandbox)  # a payload writing relative paths writes here
    before = snapshot(sandbox, top_only=(REPO, Path.home()))
    results, problems = [], []
    for case, path in files:
        result = outcome(case, path, model_dataset)
        results.append(result)
        problems += judge(case, result)
    after = snapshot(sandbox, top_only=(REPO, Path.home()))
    _record(family, kind, results)
    markers = [m for case in cases for m in case.markers]
    assert markers or "payload" not in family
    ran = [m for m in markers if os.path.lexists(m)]
    assert not ran, f"payloads ran: {ran}"
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"files created or changed outside the data folder: {changed[:10]}"
    assert not problems, f"{len(problems)} of {len(cases)} files:\n" + "\n".join(problems)


def test_bombs_stay_under_the_memory_budget(tmp_path):
    """Each bomb (and each valid file near the budget) is loaded in a subprocess with a budget
    of BOMB_BUDGET_MB; its peak resident memory above what the process held before may not
    pass the budget. Bombs get a typed error; the valid files load or are refused for memory."""
    budget = BOMB_BUDGET_MB * 2**20
    sandbox = tmp_path / "outside"
    sandbox.mkdir()
    cases = [
        c for name, kind, fn in BOMB_FAMILIES for c in generate(name, kind, fn, sandbox, budget)
    ]
    edge = memory_edge(budget)
    files = _written([*cases, *edge], tmp_path / "files")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            [{"family": c.family, "name": c.name, "kind": c.kind, "path": str(p)} for c, p in files]
        )
    )
    env = {
        **os.environ,
        "ROBUSTCORE_UPLOAD_MEMORY_MB": str(BOMB_BUDGET_MB),
        "ROBUSTCORE_HOME": str(tmp_path / "home"),
        "ROBUSTCORE_DEVICE": "cpu",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
        "OMP_NUM_THREADS": "1",
        # Large blocks in their own mappings, returned when freed: each file's peak is its own.
        "MALLOC_MMAP_THRESHOLD_": "131072",
        "MALLOC_TRIM_THRESHOLD_": "131072",
    }
    before = snapshot(sandbox, top_only=(REPO, Path.home()))
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.corpus", str(manifest)],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert snapshot(sandbox, top_only=(REPO, Path.home())) == before
    results = json.loads((tmp_path / "results.json").read_text())
    problems = []
    by_case = {(c.family, c.name): c for c, _ in files}
    for r in results:
        case = by_case[(r["family"], r["name"])]
        if r["peak"] > budget:
            problems.append(f"{case.id}: peak {r['peak'] / 2**20:.0f} MB over the budget")
        if case.family == "memory-edge":
            if r["error"] is not None and "memory" not in r["message"]:
                problems.append(f"{case.id}: {r['error']}: {r['message'][:200]!r}")
            continue
        problems += judge(case, r)
    for name, kind, _ in BOMB_FAMILIES:
        _record(name, kind, [r for r in results if r["family"] == name])
    loaded = sum(r["error"] is None for r in results if r["family"] == "memory-edge")
    assert loaded >= 4, "the valid files near the budget should mostly load"
    assert not problems, "\n".join(problems)


def test_the_message_check_catches_library_text():
    """The checks above are not vacuous: torch's refusal, a traceback, bytes and a long
    list all fail them; a plain message passes."""
    torch_text = (
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` "
        "will likely succeed, but it can result in arbitrary code execution."
    )
    assert "says 'weights_only'" in message_problems(torch_text)
    assert message_problems('Traceback (most recent call last):\n  File "x.py"')
    assert "escaped bytes" in message_problems("Bad header b'\\x93NUMPY\\x01'")
    assert message_problems("One. Two. Three.") == ["3 sentences"]
    assert message_problems("x" * 301) == ["301 characters"]
    assert message_problems("The file is empty. Upload an .npz file.") == []


def test_zz_corpus_summary(capsys):
    """The outcome counts, one line per family (shown with -n 0); the corpus sizes."""
    expected = [f[0] for f in DATASET_FAMILIES + MODEL_FAMILIES + BOMB_FAMILIES]
    if set(expected) - set(OUTCOMES):
        pytest.skip("summary needs every family test of this file in the session")
    lines = []
    totals = {"dataset": Counter(), "model": Counter()}
    for family in expected:
        counts = OUTCOMES[family]
        totals[KINDS[family]].update(counts)
        lines.append(
            f"  {family:28s} {sum(counts.values()):4d}  "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
    for kind, counts in totals.items():
        lines.append(
            f"{kind} files: {sum(counts.values())} ("
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + ")"
        )
    with capsys.disabled():
        print("\nreliability corpus:\n" + "\n".join(lines))
    assert sum(totals["dataset"].values()) >= 200
    assert sum(totals["model"].values()) >= 100
