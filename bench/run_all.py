"""Every speed benchmark with one command, and one table of ratios.

Runs, each as its own process (so that one's memory and threads do not colour the next),
with ``--json`` into the output folder:

- ``whitebox``: ``bench/whitebox.py`` (FGSM, PGD-40, C&W against torchattacks and ART) at
  ε = 0.3, and PGD alone at ε = 0.1 (``whitebox_eps01``), where PGD's early stop has less to
  skip;
- ``blackbox``: ``bench/blackbox.py`` (SimBA pixel and DCT, ZOO against ART);
- ``training``: ``bench/adversarial_training.py --only passes`` (an adversarial epoch in
  standard-epoch passes);
- ``pages``: ``bench/page_defaults.py`` (every page's default run, cold and warm).

Then it prints one Markdown table, every figure a ratio of two times measured side by side in
the same run: ours ÷ the floor (the forward + backward pass, or the queries' own forward
passes) and ours ÷ each peer, with images per second next to the peers' and the issue's
target, plus the machine's load average before and after each benchmark. Everything goes to
``OUT/run_all.json`` (and each benchmark's own JSON and stdout next to it).

On a GPU (``ROBUSTCORE_DEVICE`` or the default device is ``cuda``) the same command uses
sizes that fill it: 4,096 images for the gradient attacks (the test set repeated; 256 for
C&W), every correctly classified test image at once for SimBA and ZOO; all timing goes
through ``bench/clock.py`` (CUDA events after a synchronisation).

    python bench/run_all.py [--only whitebox blackbox training pages] [--out DIR]
        [--threads 1] [--quick]

``--quick`` is a smoke run with tiny sizes (its numbers mean nothing); without it the CPU
run takes about 25 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHES = ("whitebox", "blackbox", "training", "pages")


@dataclass
class Ratio:
    """One line of the summary table: ``ours`` seconds over a ``reference``'s seconds."""

    bench: str
    what: str
    ours: str  # which of our rows
    reference: str  # the floor or the peer
    ratio: float  # ours ÷ reference (seconds)
    ours_per_s: float | None = None  # images per second, ours
    ref_per_s: float | None = None  # images per second, the reference
    target: str = ""
    met: bool | None = None
    note: str = ""


# ---------------------------------------------------------------- the commands


def commands(
    device: str, threads: int | None, quick: bool
) -> dict[str, list[tuple[str, list[str]]]]:
    """Per benchmark, its runs: (name of the run, command line)."""
    py = sys.executable
    t = [] if threads is None else ["--threads", str(threads)]
    gpu = device.startswith("cuda")
    wb: list[str] = []  # whitebox.py's own defaults: 256 images, PGD-40, C&W on 32
    bb = ["--n", "100", "--art-n", "10"]
    tr: list[str] = []
    pg: list[str] = []
    if quick:
        wb = ["--batch", "16", "--steps", "3", "--repeats", "1", "--cw-images", "4"]
        wb += ["--cw-binary", "1", "--cw-iters", "3"]
        bb = ["--n", "4", "--art-n", "2", "--simba-iters", "20", "--zoo-queries", "300"]
        tr = ["--quick"]
        pg = ["--only", "train", "scorecard"]
    elif gpu:
        wb = ["--batch", "4096", "--cw-images", "256"]
        bb = ["--n", "2000", "--art-n", "10"]  # every correctly classified test image
    wb01 = ["--eps", "0.1", "--attacks", "pgd", "--libs", "robustcore,torchattacks"]
    return {
        "whitebox": [
            ("whitebox", [py, str(HERE / "whitebox.py"), *wb, *t]),
            ("whitebox_eps01", [py, str(HERE / "whitebox.py"), *wb, *wb01, *t]),
        ],
        "blackbox": [("blackbox", [py, str(HERE / "blackbox.py"), *bb, *t])],
        "training": [
            ("training", [py, str(HERE / "adversarial_training.py"), "--only", "passes", *tr, *t])
        ],
        "pages": [("pages", [py, str(HERE / "page_defaults.py"), *pg, *t])],
    }


def run_one(name: str, cmd: list[str], out: Path) -> dict[str, Any]:
    """Run one benchmark process; return its JSON with the load and wall time around it."""
    json_path = out / f"{name}.json"
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    shown = shlex.join(["python", *(str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT))
                                    else c for c in cmd[1:])])  # fmt: skip
    print(f"[{name}] {shown}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [*cmd, "--json", str(json_path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    (out / f"{name}.stdout.md").write_text(proc.stdout)
    (out / f"{name}.stderr.txt").write_text(proc.stderr)
    data: dict[str, Any] = {}
    if proc.returncode == 0 and json_path.is_file():
        data = json.loads(json_path.read_text())
    else:
        print(proc.stderr[-3000:], file=sys.stderr)
    return {
        "command": shown,
        "returncode": proc.returncode,
        "wall_s": wall,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "result": data,
    }


# ---------------------------------------------------------------- the ratios


def _per_s(row: dict[str, Any]) -> float | None:
    s, n = row.get("seconds"), row.get("images")
    return n / s if s and n else None


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def whitebox_ratios(data: dict[str, Any], bench: str = "whitebox") -> list[Ratio]:
    """Ours ÷ floor per step and ours ÷ torchattacks / ART, per attack and image count."""
    out: list[Ratio] = []
    eps = data.get("args", {}).get("eps")
    rows = data.get("rows", [])
    for r in rows:
        if not r["library"].startswith("robustcore"):
            continue
        what = f"{r['attack']} ({r['images']} images" + (
            f", ε={eps:g})" if eps is not None and r["attack"] != "cw" else ")"
        )
        ours = r["library"]
        floor_target = "≤ 1.10×" if r["attack"] in ("pgd", "cw") and ours == "robustcore" else ""
        out.append(
            Ratio(
                bench,
                what,
                ours,
                "floor per step (fwd + bwd)",
                r["step_over_floor"],
                _per_s(r),
                None,
                floor_target,
                (r["step_over_floor"] <= 1.10) if floor_target else None,
            )
        )
        for peer in rows:
            if peer["library"].startswith("robustcore") or peer["attack"] != r["attack"]:
                continue
            if peer["images"] != r["images"]:
                continue
            ratio = r["seconds"] / peer["seconds"]
            target, met = "", None
            no_worse = r["adv_accuracy"] <= peer["adv_accuracy"]
            if peer["library"] == "torchattacks" and r["attack"] == "fgsm":
                target, met = "≤ 1.05×", ratio <= 1.05
            elif peer["library"] == "torchattacks" and r["attack"] == "pgd":
                target, met = "≤ 0.90× at no higher accuracy", ratio <= 0.90 and no_worse
            elif peer["library"] == "art" and r["attack"] == "cw" and ours == "robustcore":
                target, met = "≤ 0.10× (ART ≥ 10×)", ratio <= 0.10
            note = (
                f"adv. accuracy {_fmt_pct(r['adv_accuracy'])} vs {_fmt_pct(peer['adv_accuracy'])}"
            )
            out.append(
                Ratio(
                    bench,
                    what,
                    ours,
                    peer["library"],
                    ratio,
                    _per_s(r),
                    _per_s(peer),
                    target,
                    met,
                    note,
                )  # fmt: skip
            )
    return out


def blackbox_ratios(data: dict[str, Any]) -> list[Ratio]:
    """Ours ÷ its queries' forward passes, and ours ÷ ART per image on the same images."""
    out: list[Ratio] = []
    rows = data.get("rows", [])
    arts = {r["attack"]: r for r in rows if r["library"] == "art"}
    for r in rows:
        if r["library"] != "robustcore":
            continue
        label = "robustcore" + (" (full resolution)" if "full resolution" in r["settings"] else "")
        what = f"{r['attack']} ({r['images']} images)"
        if r.get("forward_seconds"):
            ratio = r["seconds"] / r["forward_seconds"]
            out.append(
                Ratio(
                    "blackbox",
                    what,
                    label,
                    "its queries' forward passes",
                    ratio,
                    _per_s(r),
                    None,
                    "≤ 1.50×",
                    ratio <= 1.5,
                    f"{r['mean_queries']:.0f} queries per image",
                )  # fmt: skip
            )
        art = arts.get(r["attack"])
        if art and art["images"] == r["images"]:
            ratio = r["seconds_per_image"] / art["seconds_per_image"]
            good = r["success_rate"] >= art["success_rate"]
            out.append(
                Ratio(
                    "blackbox",
                    what,
                    label,
                    "art",
                    ratio,
                    _per_s(r),
                    _per_s(art),
                    "≤ 0.05× (ART ≥ 20×) at equal or better success",
                    ratio <= 0.05 and good,
                    f"success {_fmt_pct(r['success_rate'])} vs {_fmt_pct(art['success_rate'])}",
                )  # fmt: skip
            )
    return out


def training_ratios(data: dict[str, Any]) -> list[Ratio]:
    """An adversarial epoch ÷ (standard epoch × passes per batch)."""
    out = []
    for r in data.get("sections", {}).get("passes", {}).get("rows", []):
        if r.get("ratio") is None:
            continue
        out.append(
            Ratio(
                "training",
                f"{r['method']} epoch ({r['passes']} passes per batch)",
                "robustcore",
                "standard epoch × passes",
                r["ratio"],
                None,
                None,
                "≤ 1.15×",
                r["ratio"] <= 1.15,
                f"{r['sec_epoch']:.2f} s per epoch",
            )  # fmt: skip
        )
    return out


def page_ratios(data: dict[str, Any]) -> list[Ratio]:
    """Each page's default run: cold ÷ 30 s and warm ÷ 1 s (the goals)."""
    goals = data.get("goals_s", {"cold": 30.0, "warm": 1.0})
    out = []
    for r in data.get("rows", []):
        for kind in ("cold", "warm"):
            s = r[f"{kind}_s"]
            if s is None or (isinstance(s, float) and math.isnan(s)):
                continue
            out.append(
                Ratio(
                    "pages",
                    f"{r['title']} ({kind})",
                    "robustcore",
                    f"the {goals[kind]:g} s goal",
                    s / goals[kind],
                    None,
                    None,
                    "< 1×",
                    bool(r[f"{kind}_ok"]),
                    f"{s:.3g} s",
                )  # fmt: skip
            )
    return out


def all_ratios(results: dict[str, dict[str, Any]]) -> list[Ratio]:
    """The summary table's rows from each benchmark's JSON (``results[name]['result']``)."""
    rows: list[Ratio] = []
    for name, res in results.items():
        data = res.get("result") or {}
        if name.startswith("whitebox"):
            rows += whitebox_ratios(data, name)
        elif name == "blackbox":
            rows += blackbox_ratios(data)
        elif name == "training":
            rows += training_ratios(data)
        elif name == "pages":
            rows += page_ratios(data)
    return rows


def markdown(rows: list[Ratio]) -> list[str]:
    def num(x: float | None) -> str:
        return "—" if x is None else f"{x:,.0f}"

    lines = [
        "| benchmark | what | ours | ÷ reference | ratio | ours img/s | reference img/s | "
        "target | verdict | note |",
        "|---|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        verdict = "—" if r.met is None else ("met" if r.met else "MISSED")
        lines.append(
            f"| {r.bench} | {r.what} | {r.ours} | {r.reference} | {r.ratio:.2f}× | "
            f"{num(r.ours_per_s)} | {num(r.ref_per_s)} | {r.target or '—'} | {verdict} | "
            f"{r.note} |"
        )
    return lines


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=BENCHES, default=list(BENCHES))
    ap.add_argument("--out", type=Path, default=None, help="folder (default bench/results/DATE)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads of every run")
    ap.add_argument("--quick", action="store_true", help="smoke run (numbers mean nothing)")
    ns = ap.parse_args()
    if ns.threads is not None and ns.threads < 1:
        ap.error("--threads must be at least 1")

    sys.path.insert(0, str(ROOT))
    from robustcore.device import get_device

    device = str(get_device())
    stamp = dt.datetime.now(dt.UTC)
    out = ns.out or HERE / "results" / stamp.strftime("%Y%m%d-%H%M")
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "bench/run_all.py", *sys.argv[1:]])
    header = (
        f"{stamp:%Y-%m-%d %H:%M} UTC — `{command}` — {device}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(f"# {header}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    cmds = commands(device, ns.threads, ns.quick)
    for bench in ns.only:
        for name, cmd in cmds[bench]:
            results[name] = run_one(name, cmd, out)
    rows = all_ratios(results)
    print()
    for line in markdown(rows):
        print(line)
    print()
    for name, res in results.items():
        status = "ok" if res["returncode"] == 0 else f"FAILED (exit {res['returncode']})"
        print(
            f"- {name}: `{res['command']}` — {status}, {res['wall_s']:.0f} s, load average "
            f"{res['load_before']:.2f} before, {res['load_after']:.2f} after"
        )
    missed = [r for r in rows if r.met is False]
    print(f"- targets: {sum(r.met is True for r in rows)} met, {len(missed)} missed")
    payload = {
        "header": header,
        "device": device,
        "benchmarks": results,
        "ratios": [asdict(r) for r in rows],
    }
    (out / "run_all.json").write_text(json.dumps(payload, indent=2, default=str))
    print(f"- JSON: {out / 'run_all.json'}", file=sys.stderr)
    return 0 if all(r["returncode"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
