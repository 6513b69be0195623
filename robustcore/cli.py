"""Command line: ``python -m robustcore <command>``, generated from the experiment registry.

Every experiment of the workbench is a command with the flags of its declaration; each run
goes through the job runner and the result store like a page's (a repeated command is
served from the store at once). Besides them:

  datasets      list the datasets (offline built-ins first)
  zoo           list the models stored in the zoo
  runs          the stored runs as a table (``--json`` for machines)
  report        a report of stored runs: ``--runs KEY... --out report.html|.pdf|.zip``
                (keys as ``runs`` prints them; a unique prefix of 6+ characters will do)

The model an experiment works on is chosen with ``--dataset``, ``--arch`` and the training
recipe's ``--recipe.<setting>`` flags (trained through the zoo, or loaded from it), or with
``--weights FILE`` (a state_dict or safetensors file of a built-in architecture, read as
tensors only, or an ``.onnx`` file of an own architecture from a fixed operator set).
Examples::

  python -m robustcore train --arch lenet5 --recipe.epochs 3
  python -m robustcore whitebox --attacks pgd --pgd.steps 40 --eps 0,0.1,0.3
  python -m robustcore whitebox --help
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from .errors import RobustcoreError
from .params import add_arguments, namespace_values

UTILITIES = ("datasets", "zoo", "runs", "report")


def _cmd_datasets(_: argparse.Namespace) -> int:
    from .data import list_datasets

    for info in list_datasets():
        where = "offline" if info.offline else "download"
        print(f"{info.name:15s} {info.modality:8s} {where:9s} {info.title}")
    return 0


def _cmd_zoo(_: argparse.Namespace) -> int:
    from .models import list_zoo

    df = list_zoo()
    print(df.to_string(index=False) if len(df) else "The zoo is empty.")
    return 0


def runs_table(kind: str | None = None, limit: int = 200):
    """The stored runs as a readable table: key, kind, label, dataset, status, headline, date."""
    import pandas as pd

    from .reports.history import headline
    from .runs import get_runner

    df = get_runner().store.list_runs(kind=kind, limit=limit)
    rows = []
    for rec in df.to_dict("records"):
        rows.append(
            {
                "key": rec["key"],
                "kind": rec["kind"],
                "label": (rec.get("label") or "")[:60],
                "dataset": rec.get("dataset") or "",
                "status": rec["status"],
                "headline": headline(rec),
                "date": datetime.datetime.fromtimestamp(rec["created"]).strftime("%Y-%m-%d %H:%M"),
                "seconds": round(float(rec["seconds"]), 1),
            }
        )
    return pd.DataFrame(rows), df


def _cmd_runs(ns: argparse.Namespace) -> int:
    table, raw = runs_table(ns.kind, ns.limit)
    if ns.json:
        print(raw.to_json(orient="records", indent=2))
    else:
        print(table.to_string(index=False) if len(table) else "No stored runs.")
    return 0


def _cmd_report(ns: argparse.Namespace) -> int:
    import time

    from .reports import build_report, write_report
    from .reports.document import resolve_keys
    from .runs import get_runner

    store = get_runner().store
    keys = resolve_keys(store, [k for arg in ns.runs for k in arg.split(",") if k.strip()])
    started = time.perf_counter()
    report = build_report(store, keys, title=ns.title, summary=ns.summary)
    path = write_report(report, ns.out)
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    print(
        f"Wrote {path} ({size / 1e6:.2f} MB, {len(report.sections)} run"
        f"{'s' * (len(report.sections) != 1)}) in {seconds:.1f} s.",
        file=sys.stderr,
    )
    for key in report.missing:
        print(f"warning: run {key} is no longer stored; left out", file=sys.stderr)
    return 0


def _wait(job) -> None:
    """Print the job's progress on stderr until it is done."""
    last = -1
    while not job.done:
        pct = int(job.progress * 100)
        if pct != last:
            print(f"\r{job.message or job.state}: {pct:3d}%", end="", file=sys.stderr)
            last = pct
        job.wait(0.2)
    print(file=sys.stderr)


def _target(ns: argparse.Namespace, ds: Any):
    from .experiments import Target
    from .models import TrainRecipe, default_architecture, load_user_weights

    if ns.weights:
        path = Path(ns.weights)
        if not path.is_file():
            raise RobustcoreError(f"No such weights file: {ns.weights}.")
        import hashlib

        data = path.read_bytes()
        if path.suffix.lower() == ".onnx":  # an own architecture, from the fixed operator set
            from .models import load_onnx
            from .models.zoo import MAX_UPLOAD_BYTES

            model = load_onnx(data, ds, max_bytes=MAX_UPLOAD_BYTES)
            arch = None
        else:
            model = load_user_weights(ns.arch or "auto", ds, data)
            arch = getattr(model, "robustcore_arch", ns.arch)
        digest = hashlib.sha256(data).hexdigest()[:16]
        return Target.upload(model, digest, arch=arch, label=path.name)
    recipe = TrainRecipe.from_dict(namespace_values(TrainRecipe, ns, prefix="recipe."))
    return Target.zoo(ns.arch or default_architecture(ds), recipe)


def _cmd_experiment(ns: argparse.Namespace) -> int:
    from .data import load
    from .device import configure_threads
    from .experiments import get
    from .runs import get_runner, spec_key

    cls = get(ns.command)
    configure_threads(ns.threads)
    ds = load(ns.dataset)
    exp = cls.from_dict({**cls.defaults(ds), **namespace_values(cls, ns)}).on(_target(ns, ds))
    runner = get_runner()
    if ns.force or runner.store.get(spec_key(exp.spec(ds))) is None:
        est = exp.estimate(ds)  # before the job starts, so the timing does not compete
        if est is not None:
            print(
                f"Estimated time on this machine: {est.describe()} (priced by timing its "
                "models here).",
                file=sys.stderr,
            )
    job = runner.submit(exp, ds, force=ns.force)
    _wait(job)
    if job.state != "done":
        print(f"error: run {job.state}: {job.error}", file=sys.stderr)
        return 1
    result = cls.result(job.result)
    if ns.json:
        print(json.dumps(result.as_json(), indent=2, default=str))
        return 0
    for name, table in result.cli_tables().items():
        print(f"\n# {name}")
        print(table.to_string(index=False))
    out = {"run_key": result.key, "from_store": job.from_store, **result.summary()}
    print(json.dumps(out, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .experiments import load_all
    from .models import ARCHITECTURES, TrainRecipe

    experiments = load_all()
    width = max(len(n) for n in experiments) + 2
    listing = "\n".join(
        f"  {n.replace('_', '-'):{width}s}{c.title}" for n, c in experiments.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m robustcore",
        description=__doc__ + "\nExperiments:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("datasets", help="list datasets").set_defaults(fn=_cmd_datasets)
    sub.add_parser("zoo", help="list stored models").set_defaults(fn=_cmd_zoo)
    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("--kind", default=None, help="only runs of this experiment")
    p.add_argument("--limit", type=int, default=200, help="at most this many (newest first)")
    p.add_argument("--json", action="store_true", help="every column, as JSON")
    p.set_defaults(fn=_cmd_runs)
    p = sub.add_parser(
        "report",
        help="write a report of stored runs (HTML, PDF or ZIP)",
        description="A report of stored runs, in the given order: each run's charts and "
        "numbers as its page shows them, what the evaluation does not show, and an appendix "
        "with every run's spec, seed and library versions. The format follows --out: .html "
        "(one self-contained file), .pdf (printed by Chromium) or .zip (CSV/JSON per run).",
    )
    p.add_argument("--runs", nargs="+", required=True, metavar="KEY", help="run keys (see `runs`)")
    p.add_argument("--out", required=True, help="report.html, report.pdf or report.zip")
    p.add_argument("--title", default="Robustness evaluation", help="the report's title")
    p.add_argument("--summary", default="", help="a summary paragraph (Markdown)")
    p.set_defaults(fn=_cmd_report)
    for name, cls in experiments.items():
        p = sub.add_parser(
            name.replace("_", "-"),
            aliases=[name] if "_" in name else [],
            help=cls.title,
            description=f"{cls.title}. {cls.paper}".strip(". ") + ".",
        )
        g = p.add_argument_group("data and model")
        g.add_argument("--dataset", default="mnist5k", help="dataset name (see `datasets`)")
        g.add_argument(
            "--arch",
            default=None,
            choices=list(ARCHITECTURES),
            help="built-in architecture (default: small_cnn for images, mlp for tables)",
        )
        g.add_argument(
            "--weights",
            default=None,
            help="a state_dict / .safetensors file of a built-in architecture, or an .onnx "
            "file of your own, to evaluate instead",
        )
        add_arguments(g, TrainRecipe, prefix="recipe.")
        add_arguments(p.add_argument_group(f"{cls.title} settings"), cls)
        g = p.add_argument_group("run")
        g.add_argument("--force", action="store_true", help="compute again even if stored")
        g.add_argument("--json", action="store_true", help="print the whole run as JSON")
        g.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
        p.set_defaults(fn=_cmd_experiment, command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        return ns.fn(ns)
    except RobustcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
