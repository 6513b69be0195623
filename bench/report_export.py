"""How big and how fast the report exports are: a report of N page-default runs written as
HTML, PDF and ZIP, each timed through ``robustcore.reports`` as the CLI and the Report page
call it.

The runs are the pages' default runs (the registry's order, as ``bench/page_defaults.py``
makes them, Home's model first), computed through the job runner first (or found in
``--home``); only the report is timed. The issue's targets: a 10-run HTML report under
8 MB written in under 5 s, its PDF in under 15 s, on two CPU cores.

    python bench/report_export.py [--runs 10] [--only KIND ...] [--threads N] [--home DIR]
        [--repeat 3]

Each export is timed ``--repeat`` times and the best and median are printed; the load
average before and after is printed with them (timings on a busy machine run long).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from page_defaults import engine_args, engine_home, open_engine  # noqa: E402

TARGETS = {"html": (5.0, 8_000_000), "pdf": (15.0, None), "zip": (None, None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    engine_args(ap)
    ap.add_argument("--runs", type=int, default=10, help="runs in the report (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="timings per format (default 3)")
    ns = ap.parse_args()
    if ns.runs < 1 or ns.repeat < 1:
        ap.error("--runs and --repeat must be at least 1")
    home = engine_home(ap, ns, "robustcore-report-")
    try:
        from robustcore.experiments import get
        from robustcore.reports import build_report
        from robustcore.reports.export import render
        from robustcore.runs import get_runner

        names, ds, session, threads = open_engine(ap, ns)
        keys = []
        for name in names:
            if len(keys) == ns.runs:
                break
            exp = get(name).page_default(ds, session)
            job = get_runner().submit(exp, ds).wait()
            if job.state != "done":
                print(f"error: {name} {job.state}: {job.error}", file=sys.stderr)
                sys.exit(1)
            keys.append(job.key)
            print(f"  {name}: {'stored' if job.from_store else 'computed'}", file=sys.stderr)
        if len(keys) < ns.runs:
            ap.error(f"only {len(keys)} experiments to run; ask for fewer --runs")
        load_before = os.getloadavg()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"# {stamp} — `{shlex.join(['python', 'bench/report_export.py', *sys.argv[1:]])}`"
            f" — {len(keys)} runs ({', '.join(get_runner().store.get(k).kind for k in keys)}), "
            f"{threads} torch threads, {os.cpu_count()} CPUs; load average before: "
            f"{' '.join(f'{x:.2f}' for x in load_before)}"
        )
        print()
        print("| format | best (s) | median (s) | size (MB) | target | met |")
        print("|---|---:|---:|---:|---|---|")
        failed = False
        for fmt, (limit_s, limit_bytes) in TARGETS.items():
            times, size = [], 0
            for _ in range(ns.repeat):
                t0 = time.perf_counter()
                report = build_report(get_runner().store, keys, title="Benchmark report")
                data = render(report, fmt)
                times.append(time.perf_counter() - t0)
                size = len(data)
            best, median = min(times), statistics.median(times)
            target = []
            ok = True
            if limit_s is not None:
                target.append(f"< {limit_s:g} s")
                ok &= median < limit_s
            if limit_bytes is not None:
                target.append(f"< {limit_bytes / 1e6:g} MB")
                ok &= size < limit_bytes
            met = ("yes" if ok else "NO") if target else "–"
            failed |= not ok
            print(
                f"| {fmt.upper()} | {best:.2f} | {median:.2f} | {size / 1e6:.2f} | "
                f"{', '.join(target) or '–'} | {met} |"
            )
        from plotly.offline import get_plotlyjs

        print(f"\nplotly.js, inlined once in the HTML: {len(get_plotlyjs()) / 1e6:.2f} MB")
        load_after = os.getloadavg()
        print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
        if failed:
            sys.exit(1)
    finally:
        if ns.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
