"""The white-box evaluation behind the "White-box attacks" page and ``python -m robustcore
attack``: ε sweeps of FGSM and PGD, Carlini–Wagner's minimal perturbations, the per-sample
worst case, galleries and the sanity checks of Carlini et al. (2019)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import FGSM, PGD, WHITEBOX_ATTACKS, CarliniWagnerL2, EvasionAttack
from ..attacks.evasion.base import AttackResult, model_device
from ..data import Dataset
from ..errors import ValidationError
from ..evaluation.sanity import (
    check_converged,
    check_iterative_beats_single_step,
    check_monotone,
    check_reaches_chance,
    checks_table,
)
from ..evaluation.sweeps import (
    attack_in_batches,
    check_eps_values,
    epsilon_sweep,
    robust_accuracy,
)
from .runner import JobContext
from .store import RunResult

DEFAULT_EPS = {
    "linf": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
    "l2": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
}
GALLERY_SIZE = 8
MAX_IMAGES = 5000
WORST_CASE = "Worst case"


@dataclass
class WhiteBoxPlan:
    """What to run: which attacks with which settings, on how many test inputs.

    Attributes:
        attacks: attack name (``fgsm``, ``pgd``, ``cw``) → its configuration. FGSM and PGD
            are swept over ``eps`` in ``norm``; C&W finds each input's minimal L2 change.
        norm: ``linf`` or ``l2`` for the sweeps.
        eps: the ε grid.
        n: test inputs for the sweeps; ``n_cw``: test inputs for C&W (it is slower).
        targeted, target: push every input toward class ``target``; inputs already of that
            class are left out.
        sanity: run the Carlini et al. (2019) checks (costs one unbounded PGD, one PGD with
            twice the steps and one with two more restarts).
        seed: chooses the test inputs (a seeded random subset).
    """

    attacks: dict[str, EvasionAttack]
    norm: str = "linf"
    eps: list[float] = field(default_factory=lambda: list(DEFAULT_EPS["linf"]))
    n: int = 500
    n_cw: int = 100
    targeted: bool = False
    target: int | None = None
    sanity: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.attacks:
            raise ValidationError("Choose at least one attack.")
        unknown = set(self.attacks) - set(WHITEBOX_ATTACKS)
        if unknown:
            raise ValidationError(
                f"Unknown attack(s) {sorted(unknown)}; expected some of {list(WHITEBOX_ATTACKS)}."
            )
        if self.norm not in ("linf", "l2"):
            raise ValidationError(f"Norm must be 'linf' or 'l2', got {self.norm!r}.")
        self.eps = check_eps_values(self.eps)
        if not 1 <= int(self.n) <= MAX_IMAGES:
            raise ValidationError(f"Number of test images must be 1..{MAX_IMAGES}, got {self.n}.")
        if "cw" in self.attacks and not 1 <= int(self.n_cw) <= MAX_IMAGES:
            raise ValidationError(f"C&W images must be 1..{MAX_IMAGES}, got {self.n_cw}.")
        if self.targeted and self.target is None:
            raise ValidationError("A targeted attack needs a target class.")
        for name, atk in self.attacks.items():
            if not isinstance(atk, WHITEBOX_ATTACKS[name]):
                raise ValidationError(f"{name} must be configured with {WHITEBOX_ATTACKS[name]}.")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> WhiteBoxPlan:
        attacks = {
            name: WHITEBOX_ATTACKS[name].from_dict(values)
            for name, values in dict(spec.get("attacks", {})).items()
            if name in WHITEBOX_ATTACKS
        }
        return cls(
            attacks=attacks,
            norm=spec.get("norm", "linf"),
            eps=list(spec.get("eps", DEFAULT_EPS["linf"])),
            n=int(spec.get("n", 500)),
            n_cw=int(spec.get("n_cw", 100)),
            targeted=bool(spec.get("targeted", False)),
            target=spec.get("target"),
            sanity=bool(spec.get("sanity", True)),
            seed=int(spec.get("seed", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "attacks": {name: atk.to_dict() for name, atk in self.attacks.items()},
            "norm": self.norm,
            "eps": list(self.eps),
            "n": int(self.n),
            "n_cw": int(self.n_cw) if "cw" in self.attacks else 0,
            "targeted": bool(self.targeted),
            "target": int(self.target) if self.targeted else None,
            "sanity": bool(self.sanity),
            "seed": int(self.seed),
        }


def whitebox_spec(
    dataset: Dataset, model_id: str | Mapping[str, Any], plan: WhiteBoxPlan
) -> dict[str, Any]:
    """The run spec: dataset (with its content fingerprint), model identity and the plan.

    ``model_id`` is the stored run key of the model (``ModelRef.run_key``) or a dict such as
    ``{"arch": "lenet5", "recipe": {...}}`` for a model the job trains from the zoo.
    """
    return {
        "kind": "whitebox",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model_id,
        **plan.to_dict(),
    }


def select_inputs(
    dataset: Dataset, n: int, seed: int, *, exclude_class: int | None = None
) -> torch.Tensor:
    """Indices of ``n`` test inputs: a seeded random subset (optionally without one class)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(dataset.n_test, generator=gen)
    if exclude_class is not None:
        order = order[dataset.y_test[order] != exclude_class]
    return order[:n]


def _gallery_rows(
    attack: str, eps: float, res: AttackResult, idx: torch.Tensor, names: list[str], y
) -> list[dict]:
    rows = []
    for slot, i in enumerate(idx.tolist()):
        rows.append(
            {
                "attack": attack,
                "eps": float(eps),
                "slot": slot,
                "true": names[int(y[i])],
                "predicted": names[int(res.pred[i])],
                "confidence": float(res.confidence[i]),
                "success": bool(res.success[i]),
                "l2": float(res.l2[i]),
                "linf": float(res.linf[i]),
            }
        )
    return rows


def _gallery_pick(res: AttackResult, k: int) -> torch.Tensor:
    """Up to ``k`` inputs, successful attacks first (in input order)."""
    won = torch.nonzero(res.success.cpu()).flatten()
    lost = torch.nonzero(~res.success.cpu()).flatten()
    return torch.cat([won, lost])[:k]


def cw_budget_curve(l2: np.ndarray, success: np.ndarray, points: int = 41) -> pd.DataFrame:
    """Fraction of inputs C&W fooled within each L2 budget (its success against budget)."""
    top = float(np.nanmax(l2[success])) if success.any() else 1.0
    budgets = np.linspace(0.0, max(top * 1.05, 1e-3), points)
    rates = [float(np.mean(success & (l2 <= b))) for b in budgets]
    return pd.DataFrame({"l2_budget": budgets, "success_rate": rates})


def whitebox_job(
    dataset: Dataset,
    plan: WhiteBoxPlan,
    *,
    model: nn.Module | None = None,
    build_model: Callable[[Callable[[float, str], None]], nn.Module] | None = None,
    label: str = "",
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` that evaluates ``model`` (or the model
    ``build_model(progress)`` returns, e.g. trained from the zoo inside the job)."""
    if (model is None) == (build_model is None):
        raise ValidationError("Give exactly one of model or build_model.")
    if dataset.modality != "image" and plan.norm == "linf" and max(plan.eps) > 10:
        raise ValidationError("ε is in the data's units; values above 10 make no sense here.")

    def job(ctx: JobContext) -> RunResult:
        net = model
        stages = _stage_weights(plan)
        cursor = [0.0]

        def stage(weight: float) -> Callable[[float, str], None]:
            start = cursor[0]
            cursor[0] += weight

            def report(frac: float, msg: str) -> None:
                ctx.progress(min(0.999, start + weight * max(0.0, min(1.0, frac))), msg)

            return report

        if net is None:
            net = build_model(stage(stages["model"]))
        return run_whitebox(net, dataset, plan, stage, label=label)

    return job


def _stage_weights(plan: WhiteBoxPlan) -> dict[str, float]:
    cost = {"model": 0.0}
    k = len(plan.eps)
    if "fgsm" in plan.attacks:
        cost["fgsm"] = k * 1.0
    if "pgd" in plan.attacks:
        pgd = plan.attacks["pgd"]
        cost["pgd"] = k * pgd.steps * pgd.restarts
    if "cw" in plan.attacks:
        cw = plan.attacks["cw"]
        cost["cw"] = cw.binary_search_steps * cw.max_iter * plan.n_cw / max(plan.n, 1)
    if plan.sanity:
        steps = plan.attacks["pgd"].steps if "pgd" in plan.attacks else 10
        cost["sanity"] = 20 + steps * 2 + steps * 3
    total = sum(cost.values()) or 1.0
    weights = {k: 0.85 * v / total for k, v in cost.items()}
    weights["model"] = 0.1
    return weights


def run_whitebox(
    model: nn.Module,
    dataset: Dataset,
    plan: WhiteBoxPlan,
    stage: Callable[[float], Callable[[float, str], None]] | None = None,
    *,
    label: str = "",
) -> RunResult:
    """Run the plan on ``model`` and return the tables the page and reports draw."""
    weights = _stage_weights(plan)
    if stage is None:

        def stage(_w: float) -> Callable[[float, str], None]:
            return lambda f, m: None

    device = model_device(model)
    exclude = plan.target if plan.targeted else None
    idx = select_inputs(dataset, plan.n, plan.seed, exclude_class=exclude)
    if idx.numel() == 0:
        raise ValidationError("No test inputs left to attack (every input is of the target class).")
    x = dataset.x_test[idx].to(device)
    y = dataset.y_test[idx].to(device)
    bounds = (dataset.bounds[0].to(device), dataset.bounds[1].to(device))
    names = [str(c) for c in dataset.class_names]
    tkw: dict[str, Any] = {"targeted": plan.targeted, "target": plan.target}
    with torch.inference_mode():
        clean_pred = model(x).argmax(1)
    clean_acc = float((clean_pred == y).float().mean())

    sweeps: list[pd.DataFrame] = []
    per_eps: dict[str, dict[float, AttackResult]] = {}
    gallery_rows: list[dict] = []
    artifacts: dict[str, Any] = {}
    norms_rows: list[pd.DataFrame] = []
    gidx = None
    for name in ("fgsm", "pgd"):
        if name not in plan.attacks:
            continue
        atk = plan.attacks[name].replace(norm=plan.norm)
        df, results = epsilon_sweep(
            model,
            x,
            y,
            atk,
            plan.eps,
            bounds=bounds,
            progress=stage(weights[name]),
            keep_results=True,
            **tkw,
        )
        sweeps.append(df)
        per_eps[atk.title] = results
        for j, (eps, res) in enumerate(results.items()):
            if gidx is None:
                gidx = _gallery_pick(results[max(results)], GALLERY_SIZE)
            gallery_rows += _gallery_rows(atk.title, eps, res, gidx, names, y)
            artifacts[f"adv.{name}.{j}"] = res.x_adv[gidx].cpu().numpy().astype(np.float32)
            norms_rows.append(
                pd.DataFrame(
                    {
                        "attack": atk.title,
                        "eps": float(eps),
                        "l2": res.l2.cpu().numpy(),
                        "linf": res.linf.cpu().numpy(),
                        "success": res.success.cpu().numpy(),
                    }
                )
            )

    sweep = pd.concat(sweeps, ignore_index=True) if sweeps else pd.DataFrame()
    # Per-sample worst case over the swept attacks at each ε.
    if len(per_eps) > 1:
        worst_rows = []
        for eps in plan.eps:
            ra = robust_accuracy(model, x, y, results=[(n, r[eps]) for n, r in per_eps.items()])
            worst_rows.append(
                {
                    "attack": WORST_CASE,
                    "eps": float(eps),
                    "accuracy": ra.accuracy,
                    "success_rate": float("nan"),
                    "mean_l2": float("nan"),
                    "mean_linf": float("nan"),
                    "seconds": 0.0,
                    "n": int(y.shape[0]),
                    "steps": 0,
                }
            )
        sweep = pd.concat([sweep, pd.DataFrame(worst_rows)], ignore_index=True)

    metrics: dict[str, Any] = {
        "clean_accuracy": clean_acc,
        "n": int(y.shape[0]),
        "chance": 1.0 / dataset.num_classes,
        "norm": plan.norm,
        "eps_max": float(max(plan.eps)),
        "targeted": plan.targeted,
        "target": plan.target,
    }
    if len(sweep):
        at_max = sweep[sweep["eps"] == max(plan.eps)].set_index("attack")["accuracy"]
        for attack_name, acc in at_max.items():
            metrics[f"accuracy_at_max.{attack_name}"] = float(acc)
        metrics["robust_accuracy"] = float(at_max.min())

    tables: dict[str, pd.DataFrame] = {"sweep": sweep}
    if gidx is not None:
        artifacts["clean"] = x[gidx].cpu().numpy().astype(np.float32)
        tables["gallery"] = pd.DataFrame(gallery_rows)
        tables["norms"] = pd.concat(norms_rows, ignore_index=True)

    if "cw" in plan.attacks:
        cw: CarliniWagnerL2 = plan.attacks["cw"]
        n_cw = min(plan.n_cw, int(y.shape[0]))
        res = attack_in_batches(
            cw,
            model,
            x[:n_cw],
            y[:n_cw],
            bounds=bounds,
            batch_size=512,
            progress=stage(weights["cw"]),
            **tkw,
        )
        l2 = res.l2.cpu().numpy()
        success = res.success.cpu().numpy()
        tables["cw"] = pd.DataFrame(
            {
                "true": [names[int(v)] for v in y[:n_cw].tolist()],
                "predicted": [names[int(v)] for v in res.pred.tolist()],
                "success": success,
                "l2": l2,
                "linf": res.linf.cpu().numpy(),
                "confidence": res.confidence.cpu().numpy(),
            }
        )
        tables["cw_curve"] = cw_budget_curve(l2, success)
        metrics.update(
            {
                "cw_success_rate": float(success.mean()),
                "cw_mean_l2": float(l2[success].mean()) if success.any() else float("nan"),
                "cw_median_l2": float(np.median(l2[success])) if success.any() else float("nan"),
                "cw_seconds": float(res.seconds),
                "cw_n": n_cw,
            }
        )
        cidx = _gallery_pick(res, GALLERY_SIZE)
        artifacts["cw.clean"] = x[:n_cw][cidx].cpu().numpy().astype(np.float32)
        artifacts["cw.adv"] = res.x_adv[cidx].cpu().numpy().astype(np.float32)
        tables["cw_gallery"] = pd.DataFrame(_gallery_rows("C&W", 0.0, res, cidx, names, y[:n_cw]))

    if plan.sanity:
        checks = _sanity(model, x, y, dataset, plan, sweep, stage(weights["sanity"]))
        tables["sanity"] = checks_table(checks)
        metrics["sanity_warnings"] = int(sum(c.status == "warn" for c in checks))

    return RunResult(metrics=metrics, tables=tables, artifacts=artifacts, label=label)


def _sanity(model, x, y, dataset, plan, sweep, progress) -> list:
    checks = []
    swept = sweep[sweep["attack"] != WORST_CASE] if len(sweep) else sweep
    if len(swept):
        checks += check_monotone(swept)
        checks.append(check_iterative_beats_single_step(swept))
    n_check = min(200, int(y.shape[0]))
    xs, ys = x[:n_check], y[:n_check]
    bounds = (dataset.bounds[0].to(x.device), dataset.bounds[1].to(x.device))
    checks.append(
        check_reaches_chance(
            model,
            xs,
            ys,
            dataset.num_classes,
            norm=plan.norm,
            bounds=bounds,
            progress=lambda f, m: progress(0.3 * f, f"sanity: unbounded attack · {m}"),
        )
    )
    pgd: PGD = plan.attacks.get("pgd") or PGD()
    pgd = pgd.replace(norm=plan.norm)
    # Check convergence where it matters: the ε whose PGD accuracy is nearest 50 %.
    pgd_rows = swept[swept["attack"] == pgd.title] if len(swept) else swept
    if len(pgd_rows):
        eps = float(pgd_rows.iloc[(pgd_rows["accuracy"] - 0.5).abs().argmin()]["eps"])
    else:
        eps = float(np.median(plan.eps))
    if eps > 0:
        checks.append(
            check_converged(
                model,
                xs,
                ys,
                pgd.with_eps(eps),
                bounds=bounds,
                progress=lambda f, m: progress(0.3 + 0.7 * f, f"sanity: convergence · {m}"),
            )
        )
    return checks


def default_plan(norm: str = "linf", **overrides: Any) -> WhiteBoxPlan:
    """FGSM and PGD-10 swept over the default grid, C&W on 100 inputs, sanity checks on."""
    attacks = {"fgsm": FGSM(norm=norm), "pgd": PGD(norm=norm), "cw": CarliniWagnerL2()}
    values = {"attacks": attacks, "norm": norm, "eps": list(DEFAULT_EPS[norm])}
    values.update(overrides)
    return WhiteBoxPlan(**values)
