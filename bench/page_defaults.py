"""Every page's default run through the engine, cold and warm.

For each experiment of the registry (the pages' order), in one process with an empty
``ROBUSTCORE_HOME``: the page's untouched form (``cls.page_default``: the dataset's defaults
on the model the page starts on, ``cls.default_target``: the sidebar's default model,
``Target.zoo(default_architecture(ds), TrainRecipe())``, or for the privacy pages their
deliberately overfit one) is submitted to the job runner and waited for, twice:

- **cold**: nothing of this run in the result store. The zoo is shared, as in the app: the
  first experiment (Home's *Train / load model*) trains the default model, later ones find
  it there, and any other model an experiment trains (shadow models, students, a defended
  model) is trained inside its cold time;
- **warm**: the same run again, served from the result store, including reading the typed
  result back (what a page does before it draws).

Before each cold run, the page's time estimate is taken as the page shows it
(``Experiment.estimate``: the run's work priced by timing its models on this machine, the
prices measured once and cached in ``ROBUSTCORE_HOME/costs.json``); the table gives cold ÷
estimate, so how honest the page's promise was.

While a cold run works, its job's progress message is sampled every 50 ms; the two phases
that took longest are shown, which is where a default that costs more than it shows lies.
Goals (the speed issue): under 30 s cold and under 1 s warm, on the quiet 2-core machine.

    python bench/page_defaults.py [--only whitebox adversarial_training ...] [--threads N]
        [--home DIR] [--json FILE]

Without ``--home`` a new temporary folder is used and removed afterwards. This goes through
the same engine as the pages and the CLI but does not draw in a browser; the browser's
click-to-result times of some pages are ``bench/page_times.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLD_GOAL_S = 30.0
WARM_GOAL_S = 1.0


@dataclass
class PageTime:
    """One experiment's default run, cold and warm."""

    experiment: str
    title: str
    model: str
    cold_s: float
    warm_s: float
    state: str
    warm_from_store: bool
    phases: list[tuple[str, float]] = field(default_factory=list)  # longest first
    error: str | None = None
    estimate_s: float | None = None  # what the page said before the run (its estimate)

    @property
    def actual_over_estimate(self) -> float | None:
        if not self.estimate_s or self.state != "done":
            return None
        return self.cold_s / self.estimate_s

    @property
    def cold_ok(self) -> bool:
        return self.state == "done" and self.cold_s < COLD_GOAL_S

    @property
    def warm_ok(self) -> bool:
        return self.state == "done" and self.warm_from_store and self.warm_s < WARM_GOAL_S


_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


def phase_name(message: str) -> str:
    """A progress message without its counters: "epoch 3/5" and "epoch 4/5" are one phase."""
    text = _NUMBERS.sub("#", message or "").strip()
    return text[:60] or "(no message)"


def timed_wait(job, poll: float = 0.05) -> tuple[float, dict[str, float]]:
    """Wait for ``job``; return the seconds since now and the seconds spent per phase."""
    phases: dict[str, float] = {}
    t0 = last = time.perf_counter()
    current = phase_name(job.message)
    while not job.done:
        job.wait(poll)
        now = time.perf_counter()
        phases[current] = phases.get(current, 0.0) + (now - last)
        last = now
        current = phase_name(job.message)
    return time.perf_counter() - t0, phases


def run_page(name: str, ds, session) -> PageTime:
    from robustcore.experiments import get
    from robustcore.runs import get_runner

    cls = get(name)
    exp = cls.page_default(ds, session)
    target = exp.target
    runner = get_runner()
    estimate = exp.estimate(ds)  # prices measured here once, as the page does
    estimate_s = None if estimate is None else estimate.seconds
    t0 = time.perf_counter()
    job = runner.submit(exp, ds)
    cold, phases = timed_wait(job)
    cold = time.perf_counter() - t0
    if job.state != "done":
        return PageTime(
            name, cls.title, _model(target), cold, float("nan"), job.state, False, [],
            str(job.error), estimate_s,
        )  # fmt: skip
    t1 = time.perf_counter()
    again = runner.submit(cls.page_default(ds, session), ds).wait()
    cls.result(again.result)  # what a page reads before drawing
    warm = time.perf_counter() - t1
    top = sorted(phases.items(), key=lambda kv: -kv[1])[:2]
    return PageTime(
        name, cls.title, _model(target), cold, warm, "done", again.from_store, top, None,
        estimate_s,
    )  # fmt: skip


def _model(target) -> str:
    if target is None:
        return "none"
    recipe = target.recipe
    return f"{target.arch}, {recipe.epochs} ep." + (
        f", {recipe.train_size} images" if recipe.train_size else ""
    )


def table(rows: list[PageTime]) -> list[str]:
    out = [
        "| page (experiment) | model | estimate s | cold s | cold ÷ estimate | warm s | "
        "cold < 30 s | warm < 1 s | longest phases of the cold run |",
        "|---|---|---:|---:|---:|---:|:---:|:---:|---|",
    ]
    for r in rows:
        phases = "; ".join(f"{p} {s:.1f} s" for p, s in r.phases) or (r.error or "")
        warm = f"{r.warm_s:.3f}" if r.warm_s == r.warm_s else "—"
        est = "—" if r.estimate_s is None else f"{r.estimate_s:.1f}"
        ratio = r.actual_over_estimate
        ratio_s = "—" if ratio is None else f"{ratio:.2f}"
        out.append(
            f"| {r.title} (`{r.experiment}`) | {r.model} | {est} | {r.cold_s:.1f} | {ratio_s} | "
            f"{warm} | "
            f"{'yes' if r.cold_ok else 'NO'} | {'yes' if r.warm_ok else 'NO'} | {phases} |"
        )
    return out


def engine_args(ap: argparse.ArgumentParser) -> None:
    """The options of the scripts that run the pages' defaults through the engine."""
    ap.add_argument("--only", nargs="+", default=None, help="experiment names (registry order)")
    ap.add_argument("--dataset", default=None, help="default: the app's default dataset")
    ap.add_argument("--threads", type=int, default=None, help="default: the app's own setting")
    ap.add_argument("--home", type=Path, default=None, help="ROBUSTCORE_HOME (default: a new one)")


def engine_home(ap: argparse.ArgumentParser, ns: argparse.Namespace, prefix: str) -> Path:
    """Check the options and set ``ROBUSTCORE_HOME`` (a new folder without ``--home``)."""
    if ns.threads is not None and ns.threads < 1:
        ap.error("--threads must be at least 1")
    home = ns.home or Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["ROBUSTCORE_HOME"] = str(home)
    return home


def open_engine(ap: argparse.ArgumentParser, ns: argparse.Namespace):
    """The experiments to run (Home's model first), the dataset, the sidebar's default
    model and the torch threads, after :func:`engine_home`."""
    from robustcore.data import DEFAULT_DATASET, load
    from robustcore.device import configure_threads
    from robustcore.errors import RobustcoreError
    from robustcore.experiments import Target, load_all
    from robustcore.experiments.registry import MODULES
    from robustcore.models import TrainRecipe, default_architecture

    load_all()
    names = list(MODULES)
    if ns.only:
        unknown = sorted(set(ns.only) - set(names))
        if unknown:
            ap.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {names}")
        # Home's model first: every page's cold run assumes the sidebar's model exists.
        names = [n for n in names if n in ns.only or n == "train"]
    threads = configure_threads(ns.threads)
    try:
        ds = load(ns.dataset or DEFAULT_DATASET)
    except RobustcoreError as exc:
        ap.error(str(exc))
    return names, ds, Target.zoo(default_architecture(ds), TrainRecipe()), threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    engine_args(ap)
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    ns = ap.parse_args()
    home = engine_home(ap, ns, "robustcore-pages-")
    try:
        import torch

        from robustcore.device import get_device

        names, ds, target, threads = open_engine(ap, ns)
        load_before = os.getloadavg()[0]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = (
            f"{stamp} — `{shlex.join(['python', 'bench/page_defaults.py', *sys.argv[1:]])}`"
            f" — {ds.name}, {target.describe()}, {get_device()} with {threads} threads, "
            f"torch {torch.__version__}, empty ROBUSTCORE_HOME"
        )
        print(f"# {header}", flush=True)
        rows = []
        for name in names:
            row = run_page(name, ds, target)
            rows.append(row)
            print(
                f"  {name}: cold {row.cold_s:.1f} s, warm {row.warm_s:.3f} s ({row.state})",
                file=sys.stderr,
                flush=True,
            )
        load_after = os.getloadavg()[0]
        print()
        for line in table(rows):
            print(line)
        print()
        done = [r for r in rows if r.state == "done"]
        print(f"- load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
        print(
            f"- cold under {COLD_GOAL_S:.0f} s: {sum(r.cold_ok for r in rows)} of {len(rows)}; "
            f"warm under {WARM_GOAL_S:.0f} s: {sum(r.warm_ok for r in rows)} of {len(rows)}"
        )
        ratios = [r.actual_over_estimate for r in done if r.actual_over_estimate]
        if ratios:
            print(
                f"- cold ÷ estimate: {len(ratios)} pages estimated, from {min(ratios):.2f} to "
                f"{max(ratios):.2f}; within ×1.5 either way: "
                f"{sum(1 / 1.5 <= x <= 1.5 for x in ratios)} of {len(ratios)}"
            )
        if done:
            print(
                f"- all cold runs: {sum(r.cold_s for r in done):.1f} s; slowest warm: "
                f"{max(r.warm_s for r in done):.3f} s"
            )
        if ns.json:
            import json

            ns.json.parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "header": header,
                "device": str(get_device()),
                "threads": threads,
                "torch": torch.__version__,
                "load_before": load_before,
                "load_after": load_after,
                "goals_s": {"cold": COLD_GOAL_S, "warm": WARM_GOAL_S},
                "rows": [
                    asdict(r)
                    | {
                        "cold_ok": r.cold_ok,
                        "warm_ok": r.warm_ok,
                        "actual_over_estimate": r.actual_over_estimate,
                    }
                    for r in rows
                ],
            }
            ns.json.write_text(json.dumps(payload, indent=2, default=str))
    finally:
        if ns.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
