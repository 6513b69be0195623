"""Command line: ``python -m robustcore <command>``.

Commands:
  datasets              list the datasets (offline built-ins first)
  train                 train (or load from the zoo) a model; flags come from TrainRecipe
  zoo                   list the models stored in the zoo
  runs                  list the stored runs
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import RobustcoreError
from .params import add_arguments, from_namespace


def _cmd_datasets(_: argparse.Namespace) -> int:
    from .data import list_datasets

    for info in list_datasets():
        where = "offline" if info.offline else "download"
        print(f"{info.name:15s} {info.modality:8s} {where:9s} {info.title}")
    return 0


def _cmd_train(ns: argparse.Namespace) -> int:
    from .data import load
    from .models import TrainRecipe
    from .runs import get_runner
    from .runs.train_job import train_job, train_spec

    recipe = from_namespace(TrainRecipe, ns)
    ds = load(ns.dataset)

    def progress_print(job):
        last = -1
        while not job.done:
            pct = int(job.progress * 100)
            if pct != last:
                print(f"\r{job.message or job.state}: {pct:3d}%", end="", file=sys.stderr)
                last = pct
            job.wait(0.2)
        print(file=sys.stderr)

    job = get_runner().submit(train_spec(ns.arch, ds, recipe), train_job(ns.arch, ds, recipe))
    progress_print(job)
    if job.state != "done":
        print(f"error: run {job.state}: {job.error}", file=sys.stderr)
        return 1
    rec = job.result
    out = {"run_key": rec.key, "from_store": job.from_store, **rec.metrics}
    print(json.dumps(out, indent=2))
    return 0


def _cmd_zoo(_: argparse.Namespace) -> int:
    from .models import list_zoo

    df = list_zoo()
    print(df.to_string(index=False) if len(df) else "The zoo is empty.")
    return 0


def _cmd_runs(ns: argparse.Namespace) -> int:
    from .runs import get_runner

    df = get_runner().store.list_runs(kind=ns.kind)
    print(df.to_string(index=False) if len(df) else "No stored runs.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .models import ARCHITECTURES, TrainRecipe

    parser = argparse.ArgumentParser(
        prog="python -m robustcore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list datasets").set_defaults(fn=_cmd_datasets)
    p = sub.add_parser("train", help="train or load a model")
    p.add_argument("--arch", default="small_cnn", choices=list(ARCHITECTURES))
    p.add_argument("--dataset", default="mnist5k")
    add_arguments(p, TrainRecipe)
    p.set_defaults(fn=_cmd_train)
    sub.add_parser("zoo", help="list stored models").set_defaults(fn=_cmd_zoo)
    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("--kind", default=None)
    p.set_defaults(fn=_cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.fn(ns)
    except RobustcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
