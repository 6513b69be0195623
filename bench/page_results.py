"""What every page's default run shows: its headline numbers and tables, for the README.

The same runs as ``bench/page_defaults.py`` (the registry's order; ``cls.page_default``: the
dataset's defaults on the model the page starts on, the sidebar's default model or the
privacy pages' overfit one), through the job runner with an empty ``ROBUSTCORE_HOME``, but
printing what each result holds instead of timing it: the tables the experiment's command
prints (``result.cli_tables()``), its whole summary table where it has one and its headline
numbers (``result.summary()``). The README's
figures for a page's default run are checked against this output.

    python bench/page_results.py [--only poisoning_sanitization membership_inference ...]
        [--threads N] [--home DIR]

Without ``--home`` a new temporary folder is used and removed afterwards; Home's model
(``train``) is always run first, as on the app's first visit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from page_defaults import engine_args, engine_home, open_engine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    engine_args(ap)
    ns = ap.parse_args()
    home = engine_home(ap, ns, "robustcore-results-")
    try:
        import pandas as pd
        import torch

        from robustcore.device import get_device
        from robustcore.experiments import get
        from robustcore.runs import get_runner

        names, ds, session, threads = open_engine(ap, ns)
        pd.set_option("display.width", 250)
        pd.set_option("display.max_columns", 50)
        load_before = os.getloadavg()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"# {stamp} — `{shlex.join(['python', 'bench/page_results.py', *sys.argv[1:]])}` — "
            f"{ds.name}, sidebar model {session.describe()}, {get_device()} with {threads} "
            f"threads, {os.cpu_count()} CPUs, torch {torch.__version__}, empty ROBUSTCORE_HOME; "
            f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}",
            flush=True,
        )
        t0 = time.perf_counter()
        failed = 0
        for name in names:
            cls = get(name)
            exp = cls.page_default(ds, session)
            job = get_runner().submit(exp, ds).wait()
            model = exp.target.describe() if exp.target is not None else "none"
            print(f"\n## {cls.title} (`{name}`) on {model}: {job.state}", flush=True)
            if job.state != "done":
                print(f"error: {job.error}")
                failed += 1
                continue
            result = cls.result(job.result)
            tables = dict(result.cli_tables())
            if hasattr(result, "summary_table"):  # the command prints only some of its columns
                tables["summary table, every column"] = result.summary_table()
            for title, table in tables.items():
                print(f"\n### {title}\n")
                print(table.to_string(index=False))
            print()
            print(json.dumps(result.summary(), indent=2, default=str), flush=True)
        load_after = os.getloadavg()
        print(
            f"\n# {time.perf_counter() - t0:.0f} s in all; load average after: "
            f"{' '.join(f'{x:.2f}' for x in load_after)}"
        )
        if failed:
            sys.exit(1)
    finally:
        if ns.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
