"""The query-limitation evaluation behind the "Query limitation" page: black-box attacks
(SimBA pixel and DCT, ZOO) against a service with a per-client query budget and the stateful
detector of Chen, Carlini & Wagner (2020), false alarms on benign clients, and the accounts
an adaptive attacker needs (:func:`robustcore.defenses.query_limit.evaluate_query_limit`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..attacks.evasion import BLACKBOX_ATTACKS
from ..attacks.evasion.base import model_device
from ..data import Dataset
from ..defenses.query_limit import (
    ATTACK_TITLES,
    AdaptiveAttacker,
    BenignStreams,
    QueryLimit,
    evaluate_query_limit,
)
from ..errors import ValidationError
from .blackbox_job import correct_inputs
from .runner import JobContext
from .store import RunResult

MAX_IMAGES = 1000
ATTACK_KEYS = tuple(ATTACK_TITLES)


def make_attack(key: str, values: Mapping[str, Any] | None = None) -> Any:
    """The attack behind a key of :data:`ATTACK_KEYS` (``simba_pixel``, ``simba_dct``, ``zoo``)
    with the given parameter values."""
    values = dict(values or {})
    if key in ("simba_pixel", "simba_dct"):
        values["basis"] = key.split("_")[1]
        return BLACKBOX_ATTACKS["simba"].from_dict(values)
    if key == "zoo" and "zoo" in BLACKBOX_ATTACKS:
        return BLACKBOX_ATTACKS["zoo"].from_dict(values)
    raise ValidationError(
        f"Unknown attack {key!r}; expected one of {', '.join(available_attacks())}."
    )


def available_attacks() -> list[str]:
    """Attack keys whose attack is installed here."""
    return [k for k in ATTACK_KEYS if k.startswith("simba") or k in BLACKBOX_ATTACKS]


@dataclass
class QueryLimitPlan:
    """What to run against which limits.

    Attributes:
        limit: the service's budget and detector settings.
        attacks: key (``simba_pixel``, ``simba_dct``, ``zoo``) → configured attack. Each
            attack's own ``max_queries`` is set to the budget, so the budget is what ends it.
        adaptive: the adaptive attacker (queries per account, optional query blinding).
        benign: the benign clients of the false-alarm measurement.
        n: test images attacked, chosen at random among those the model classifies
            correctly.
        seed: chooses the images, the calibration order and the benign streams.
    """

    limit: QueryLimit
    attacks: dict[str, Any]
    adaptive: AdaptiveAttacker = field(default_factory=AdaptiveAttacker)
    benign: BenignStreams = field(default_factory=BenignStreams)
    n: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.limit, QueryLimit):
            raise ValidationError("limit must be a QueryLimit declaration.")
        if not self.attacks:
            raise ValidationError("Choose at least one attack.")
        unknown = set(self.attacks) - set(ATTACK_KEYS)
        if unknown:
            raise ValidationError(
                f"Unknown attack(s) {sorted(unknown)}; expected some of {list(ATTACK_KEYS)}."
            )
        fixed = {}
        for key, atk in self.attacks.items():
            if not callable(getattr(atk, "run", None)) or not hasattr(atk, "max_queries"):
                raise ValidationError(f"{key!r} must be a configured black-box attack.")
            if key.startswith("simba") and getattr(atk, "basis", None) != key.split("_")[1]:
                raise ValidationError(f"{key} needs SimBA with basis={key.split('_')[1]!r}.")
            fixed[key] = atk.replace(max_queries=self.limit.budget)
        self.attacks = fixed
        if isinstance(self.n, bool) or not 1 <= int(self.n) <= MAX_IMAGES:
            raise ValidationError(f"Attack between 1 and {MAX_IMAGES} test images; got {self.n}.")
        if isinstance(self.seed, bool) or int(self.seed) < 0:
            raise ValidationError(f"The seed must be a whole number ≥ 0; got {self.seed}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit.to_dict(),
            "attacks": {
                k: {"name": type(a).__name__, **a.to_dict()} for k, a in self.attacks.items()
            },
            "adaptive": self.adaptive.to_dict(),
            "benign": self.benign.to_dict(),
            "n": int(self.n),
            "seed": int(self.seed),
        }


def default_plan(**overrides: Any) -> QueryLimitPlan:
    """The page's default: SimBA (pixel and DCT) and ZOO where installed, 50 images, budget
    2,000, the paper's k = 50 at 0.1 % false positives."""
    values: dict[str, Any] = {
        "limit": QueryLimit(),
        "attacks": {k: make_attack(k) for k in available_attacks()},
    }
    values.update(overrides)
    return QueryLimitPlan(**values)


def query_limit_spec(
    dataset: Dataset, model_id: str | Mapping[str, Any], plan: QueryLimitPlan
) -> dict[str, Any]:
    """The run spec: dataset (with its content fingerprint), model identity and the plan."""
    return {
        "kind": "query_limit",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model_id,
        **plan.to_dict(),
    }


def run_query_limit(
    model: nn.Module,
    dataset: Dataset,
    plan: QueryLimitPlan,
    progress: Callable[[float, str], None] | None = None,
    *,
    label: str = "",
) -> RunResult:
    """Attack ``plan.n`` correctly classified test images through the limited service."""
    report = progress or (lambda f, m: None)
    device = model_device(model)
    idx, pool_acc = correct_inputs(model, dataset, plan.n, plan.seed)
    x = dataset.x_test[idx].to(device)
    y = dataset.y_test[idx].to(device)
    bounds = (dataset.bounds[0].to(device), dataset.bounds[1].to(device))
    metrics, tables = evaluate_query_limit(
        model,
        x,
        y,
        config=plan.limit,
        attacks=plan.attacks,
        calibration_images=dataset.x_train,
        benign_images=dataset.x_test,
        benign=plan.benign,
        adaptive=plan.adaptive,
        bounds=bounds,
        seed=plan.seed,
        progress=report,
    )
    tables["per_image"].insert(1, "test_index", torch.cat([idx] * len(plan.attacks)).numpy())
    metrics.update(
        {
            "clean_accuracy": pool_acc,
            "attacks": [ATTACK_TITLES[k] for k in plan.attacks],
            "keys": list(plan.attacks),
            "dataset": dataset.name,
        }
    )
    report(1.0, "done")
    return RunResult(metrics=metrics, tables=tables, label=label)


def query_limit_job(
    dataset: Dataset, plan: QueryLimitPlan, *, model: nn.Module, label: str = ""
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` that runs :func:`run_query_limit`."""

    def job(ctx: JobContext) -> RunResult:
        return run_query_limit(model, dataset, plan, ctx.progress, label=label)

    return job


def _markdown(df: Any) -> str:
    """A DataFrame as a Markdown table (numbers to 3 significant digits)."""

    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m robustcore query-limit``: the page's measurement from a shell.

    Trains (or loads from the zoo) the architecture with the default recipe, runs the plan
    and prints the per-attack summary and the false-alarm metrics.
    """
    import argparse
    import json

    from ..data import load
    from ..device import configure_threads
    from ..models import TrainRecipe, train_entry
    from ..params import add_arguments, from_namespace

    parser = argparse.ArgumentParser(prog="python -m robustcore query-limit", description=__doc__)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--n", type=int, default=50, help="test images attacked")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attacks", default=",".join(available_attacks()))
    add_arguments(parser, QueryLimit)
    add_arguments(parser, AdaptiveAttacker)
    add_arguments(parser, BenignStreams)
    args = parser.parse_args(argv)
    configure_threads()
    ds = load(args.dataset)
    model = train_entry(args.arch, ds, TrainRecipe()).model
    plan = QueryLimitPlan(
        limit=from_namespace(QueryLimit, args),
        attacks={k: make_attack(k) for k in args.attacks.split(",") if k},
        adaptive=from_namespace(AdaptiveAttacker, args),
        benign=from_namespace(BenignStreams, args),
        n=args.n,
        seed=args.seed,
    )
    res = run_query_limit(model, ds, plan)
    cols = [
        "attack",
        "n",
        "success_no_defense",
        "success_before_detection",
        "detected",
        "delay_median",
        "delay_max",
        "queries_median",
        "accounts_resume_mean",
        "accounts_rotate_mean",
        "accounts_rotate_max",
        "rotate_bans",
        "seconds",
    ]
    print(_markdown(res.tables["summary"][cols]))
    if "blinding" in res.tables:
        print()
        print(_markdown(res.tables["blinding"]))
    keys = ("threshold", "calibration_fpr", "benign_queries", "benign_judged", "benign_fpr")
    shown = {k: res.metrics[k] for k in (*keys, "benign_clients_caught", "seconds")}
    print(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
