"""Command line: ``python -m robustcore <command>``.

Commands:
  datasets              list the datasets (offline built-ins first)
  train                 train (or load from the zoo) a model; flags come from TrainRecipe
  zoo                   list the models stored in the zoo
  runs                  list the stored runs
  attack fgsm|pgd|cw    run a white-box evaluation of a zoo model; flags come from the
                        attack's declaration (e.g. attack pgd --steps 40 --eps-grid 0,0.1,0.3)
  blackbox simba|zoo    run a query-only attack on a zoo model through a QueryModel; flags
                        come from the attack's declaration (e.g. blackbox simba --basis pixel)
  threats               white-, gray-, black-box and label-only attackers on one model and
                        budget (the Threat models page; flags from ThreatPlan, e.g. --eps 0.3)
  query-limit           the Query limitation page's measurement: budget, stateful detector,
                        adaptive attackers, benign false alarms (flags from QueryLimit …)
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


def _cmd_train(ns: argparse.Namespace) -> int:
    from .data import load
    from .models import TrainRecipe
    from .runs import get_runner
    from .runs.train_job import train_job, train_spec

    recipe = from_namespace(TrainRecipe, ns)
    ds = load(ns.dataset)

    job = get_runner().submit(train_spec(ns.arch, ds, recipe), train_job(ns.arch, ds, recipe))
    _wait(job)
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


def _cmd_attack(ns: argparse.Namespace) -> int:
    from .attacks.evasion import WHITEBOX_ATTACKS
    from .data import load
    from .models import TrainRecipe, train_entry
    from .runs import get_runner
    from .runs.whitebox_job import DEFAULT_EPS, WhiteBoxPlan, whitebox_job, whitebox_spec

    cls = WHITEBOX_ATTACKS[ns.attack]
    attack = from_namespace(cls, ns)
    ds = load(ns.dataset)
    recipe = TrainRecipe()
    entry = train_entry(ns.arch, ds, recipe)
    norm = getattr(attack, "norm", "linf")
    if ns.eps_grid:
        try:
            eps = [float(v) for v in ns.eps_grid.split(",") if v.strip()]
        except ValueError:
            print(
                f"error: --eps-grid must be numbers separated by commas, got {ns.eps_grid!r}",
                file=sys.stderr,
            )
            return 2
    elif getattr(ns, "eps", None) is not None:
        eps = [attack.eps]  # a single budget given with --eps
    else:
        eps = DEFAULT_EPS[norm]
    plan = WhiteBoxPlan(
        attacks={ns.attack: attack},
        norm=norm,
        eps=eps,
        n=ns.n,
        n_cw=ns.n,
        targeted=ns.target is not None,
        target=ns.target,
        sanity=not ns.no_sanity,
        seed=ns.sample_seed,
    )
    model_id = {"arch": ns.arch, "recipe": recipe.to_dict(), "zoo_key": entry.key}
    job = get_runner().submit(
        whitebox_spec(ds, model_id, plan),
        whitebox_job(ds, plan, model=entry.model, label=f"{ns.attack} on {ns.arch}"),
    )
    _wait(job)
    if job.state != "done":
        print(f"error: run {job.state}: {job.error}", file=sys.stderr)
        return 1
    rec = job.result
    for name in ("sweep", "cw_curve", "sanity"):
        if name in rec.table_names:
            print(f"\n# {name}")
            print(rec.table(name).to_string(index=False))
    print(json.dumps({"run_key": rec.key, "from_store": job.from_store, **rec.metrics}, indent=2))
    return 0


def _cmd_blackbox(ns: argparse.Namespace) -> int:
    import torch

    from .attacks.evasion import BLACKBOX_ATTACKS, QueryModel
    from .data import load
    from .device import configure_threads
    from .evaluation.queries import success_vs_queries
    from .models import TrainRecipe, train_entry
    from .runs.whitebox_job import select_inputs

    attack = from_namespace(BLACKBOX_ATTACKS[ns.attack], ns)
    if ns.n < 1:
        print(f"error: --n must be at least 1, got {ns.n}", file=sys.stderr)
        return 2
    configure_threads()  # ROBUSTCORE_THREADS, else all cores up to 8 (minus one)
    ds = load(ns.dataset)
    entry = train_entry(ns.arch, ds, TrainRecipe())
    idx = select_inputs(ds, ns.n, ns.sample_seed)
    x, y = ds.x_test[idx], ds.y_test[idx]
    api = QueryModel(entry.model, budget=ns.budget)
    lo, hi = ds.bounds

    def progress(frac: float, msg: str) -> None:
        print(f"\r{msg}: {int(100 * frac):3d}%", end="", file=sys.stderr)

    res = attack.run(
        api,
        x,
        y,
        targeted=ns.target is not None,
        target=ns.target,
        bounds=(lo, hi),
        progress=progress,
    )
    print(file=sys.stderr)
    with torch.inference_mode():  # the evaluator's view (not the attacker's): clean accuracy
        was_right = entry.model(x.to(api.device)).argmax(dim=1).cpu() == y
    was_right = was_right.to(res.success.device)
    curve = success_vs_queries(res.success, res.queries, label=ns.attack)
    print(curve.to_string(index=False))
    won = res.success & was_right
    out = {
        "attack": ns.attack,
        "params": attack.to_dict(),
        "arch": ns.arch,
        "dataset": ds.name,
        "zoo_key": entry.key,
        "images": int(res.success.numel()),
        "success_rate": res.success_rate,
        "success_rate_on_correct": float(won.sum()) / max(1, int(was_right.sum())),
        "mean_queries": float(res.queries.float().mean()),
        "median_queries_successful": float(res.queries[won].float().median())
        if won.any()
        else None,
        "mean_l2_successful": float(res.l2[won].mean()) if won.any() else None,
        "total_queries": int(api.queries.sum()),
        "seconds": res.seconds,
    }
    print(json.dumps(out, indent=2))
    return 0


def _cmd_threats(ns: argparse.Namespace) -> int:
    from .runs.threat_job import main as threats_main

    threats_main(ns.rest)
    return 0


def _cmd_query_limit(ns: argparse.Namespace) -> int:
    from .runs.query_limit_job import main as query_limit_main

    return int(query_limit_main(ns.rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    from .attacks.evasion import BLACKBOX_ATTACKS, WHITEBOX_ATTACKS
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
    p = sub.add_parser("attack", help="white-box evaluation of a zoo model (default recipe)")
    attacks = p.add_subparsers(dest="attack", required=True)
    for name, cls in WHITEBOX_ATTACKS.items():
        a = attacks.add_parser(name, help=f"{cls.title} ({cls.paper})")
        a.add_argument("--arch", default="small_cnn", choices=list(ARCHITECTURES))
        a.add_argument("--dataset", default="mnist5k")
        a.add_argument("--eps-grid", default=None, help="comma-separated ε values to sweep")
        a.add_argument("--n", type=int, default=500, help="number of test inputs")
        a.add_argument("--target", type=int, default=None, help="target class (targeted)")
        a.add_argument("--sample-seed", type=int, default=0, help="seed of the test-input subset")
        a.add_argument("--no-sanity", action="store_true", help="skip the sanity checks")
        add_arguments(a, cls)
        a.set_defaults(fn=_cmd_attack)
    p = sub.add_parser("blackbox", help="query-only attack on a zoo model (default recipe)")
    attacks = p.add_subparsers(dest="attack", required=True)
    for name, cls in BLACKBOX_ATTACKS.items():
        a = attacks.add_parser(name, help=f"{cls.title} ({cls.paper})")
        a.add_argument("--arch", default="small_cnn", choices=list(ARCHITECTURES))
        a.add_argument("--dataset", default="mnist5k")
        a.add_argument("--n", type=int, default=100, help="number of test inputs")
        a.add_argument("--target", type=int, default=None, help="target class (targeted)")
        a.add_argument("--budget", type=int, default=None, help="the service's query budget")
        a.add_argument("--sample-seed", type=int, default=0, help="seed of the test-input subset")
        add_arguments(a, cls)
        a.set_defaults(fn=_cmd_blackbox)
    p = sub.add_parser(
        "threats",
        help="threat models side by side (flags: python -m robustcore threats -h)",
        add_help=False,
    )
    p.set_defaults(fn=_cmd_threats)
    p = sub.add_parser(
        "query-limit",
        help="query limitation measurement (flags: python -m robustcore query-limit -h)",
        add_help=False,
    )
    p.set_defaults(fn=_cmd_query_limit)
    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("--kind", default=None)
    p.set_defaults(fn=_cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns, rest = parser.parse_known_args(argv)
    if ns.command not in ("threats", "query-limit") and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    ns.rest = rest
    try:
        return ns.fn(ns)
    except RobustcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
