"""The "White-box attacks" experiment: ε sweeps of FGSM and PGD, Carlini–Wagner's minimal
perturbations, the per-sample worst case, galleries and the sanity checks of Carlini et al.
(2019, "On Evaluating Adversarial Robustness").

``python -m robustcore whitebox --attacks pgd --pgd.steps 40 --eps 0.1,0.2,0.3``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import FGSM, PGD, CarliniWagnerL2, Goal
from ..attacks.evasion.base import AttackResult
from ..data import Dataset
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs, successes_first
from ..evaluation.sanity import (
    SanityCheck,
    check_converged,
    check_iterative_beats_single_step,
    check_monotone,
    check_reaches_chance,
    checks_table,
)
from ..evaluation.sweeps import attack_in_batches, epsilon_sweep, robust_accuracy
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register

DEFAULT_EPS = {
    "image": {
        "linf": (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
        "l2": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
    },
    "tabular": {
        "linf": (0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0),
        "l2": (0.0, 0.5, 1.0, 2.0, 3.0, 4.0),
    },
}
ATTACKS = {"fgsm": "FGSM", "pgd": "PGD", "cw": "Carlini–Wagner L2"}
SWEPT = ("fgsm", "pgd")
GALLERY_SIZE = 8
MAX_IMAGES = 5000
WORST_CASE = "Worst case"
CW = "C&W"


def default_eps(dataset: Dataset, norm: str) -> tuple[float, ...]:
    """The ε grid that suits the data (images in [0, 1]; standardised tabular features)."""
    return DEFAULT_EPS["image" if dataset.modality == "image" else "tabular"][norm]


def cw_budget_curve(l2: np.ndarray, success: np.ndarray, points: int = 41) -> pd.DataFrame:
    """Fraction of inputs C&W fooled within each L2 budget (its success against budget)."""
    top = float(np.nanmax(l2[success])) if success.any() else 1.0
    budgets = np.linspace(0.0, max(top * 1.05, 1e-3), points)
    rates = [float(np.mean(success & (l2 <= b))) for b in budgets]
    return pd.DataFrame({"l2_budget": budgets, "success_rate": rates})


def _gallery_rows(
    attack: str, eps: float, res: AttackResult, idx: torch.Tensor, names: list[str], y
) -> list[dict]:
    return [
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
        for slot, i in enumerate(idx.tolist())
    ]


class WhiteBoxResult(ExperimentResult):
    """Curves, C&W budgets, galleries, norms and sanity checks of one white-box run."""

    @property
    def clean_accuracy(self) -> float:
        return float(self._metric("clean_accuracy"))

    @property
    def n(self) -> int:
        """How many test inputs the sweeps used."""
        return int(self._metric("n"))

    @property
    def chance(self) -> float:
        return float(self._metric("chance"))

    @property
    def norm(self) -> str:
        return str(self._metric("norm"))

    @property
    def eps_max(self) -> float:
        return float(self._metric("eps_max"))

    def sweep(self) -> pd.DataFrame:
        """Every swept attack (and the worst case) at every ε: one row each."""
        return self._table("sweep")

    def curves(self, *, worst_case: bool = True) -> dict[str, pd.DataFrame]:
        """Accuracy against ε, one frame per attack title (and the per-sample worst case)."""
        sweep = self.sweep()
        if not len(sweep):
            return {}
        return {
            str(name): grp
            for name, grp in sweep.groupby("attack", sort=False)
            if worst_case or name != WORST_CASE
        }

    def accuracy_at_max(self) -> dict[str, float]:
        """Accuracy of each swept attack (and the worst case) at the largest ε."""
        sweep = self.sweep()
        if not len(sweep):
            return {}
        top = sweep[sweep["eps"] == sweep["eps"].max()]
        return {str(a): float(v) for a, v in zip(top["attack"], top["accuracy"], strict=True)}

    @property
    def has_cw(self) -> bool:
        return self._has_table("cw")

    def cw_summary(self) -> dict[str, float]:
        """success_rate, mean_l2, median_l2, seconds and n of C&W (empty if it did not run)."""
        if not self.has_cw:
            return {}
        keys = ("success_rate", "mean_l2", "median_l2", "seconds", "n")
        return {k: self._metric(f"cw_{k}") for k in keys}

    def cw_curve(self) -> pd.DataFrame:
        """C&W's success rate within each L2 budget."""
        return self._table("cw_curve")

    def cw_table(self) -> pd.DataFrame:
        """One row per C&W input: labels, success, norms, confidence."""
        return self._table("cw")

    def gallery_options(self) -> list[tuple[str, float | None]]:
        """(attack title, ε) pairs a gallery can show; C&W has no ε."""
        out: list[tuple[str, float | None]] = []
        if self._has_table("gallery"):
            gal = self._table("gallery")
            out += [(a, float(e)) for a, e in gal[["attack", "eps"]].drop_duplicates().to_numpy()]
        if self._has_table("cw_gallery"):
            out.append((CW, None))
        return out

    def gallery(
        self, attack: str, eps: float | None
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Originals, adversarial inputs and their table rows for one gallery option."""
        if attack == CW:
            return self._artifact("cw.clean"), self._artifact("cw.adv"), self._table("cw_gallery")
        gal = self._table("gallery")
        rows = gal[(gal["attack"] == attack) & (gal["eps"] == eps)]
        key = next(k for k, title in ATTACKS.items() if title == attack or k.upper() == attack)
        j = sorted(gal["eps"].unique()).index(eps)
        return self._artifact("clean"), self._artifact(f"adv.{key}.{j}"), rows

    def norm_eps_values(self) -> list[float]:
        """The ε values (> 0) whose perturbation norms were kept."""
        if not self._has_table("norms"):
            return []
        return sorted(float(e) for e in self._table("norms")["eps"].unique() if e > 0)

    def successful_l2(self, eps: float | None = None) -> dict[str, pd.Series]:
        """L2 norms of the successful perturbations: per swept attack at ``eps``, and C&W's."""
        groups: dict[str, pd.Series] = {}
        if eps is not None and self._has_table("norms"):
            norms = self._table("norms")
            sel = norms[(norms["eps"] == eps) & norms["success"]]
            for attack, grp in sel.groupby("attack"):
                groups[f"{attack} ε={eps:g} (successful)"] = grp["l2"]
        if self.has_cw:
            cw = self.cw_table()
            groups[f"{CW} (successful)"] = cw.loc[cw["success"], "l2"]
        return groups

    def sanity(self) -> list[SanityCheck] | None:
        """The checks of Carlini et al. (2019), or ``None`` when they were switched off."""
        if not self._has_table("sanity"):
            return None
        return [
            SanityCheck(r.check, r.status, r.message)
            for r in self._table("sanity").itertuples(index=False)
        ]

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        out = {"sweep": self.sweep()}
        if self.has_cw:
            out["cw_curve"] = self.cw_curve()
        if self._has_table("sanity"):
            out["sanity"] = self._table("sanity")
        return out


@register
@dataclass(frozen=True)
class WhiteBox(Experiment):
    """FGSM and PGD swept over ε, C&W's minimal L2 perturbations, worst case, sanity checks.

    The ε grid and its norm belong to the experiment (the attacks' own settings have
    neither), so one declaration of PGD is run at every budget of the grid.
    """

    name = "whitebox"
    title = "White-box attacks"
    paper = (
        "Goodfellow et al. 2015 (FGSM); Madry et al. 2018 (PGD); Carlini & Wagner 2017 (C&W); "
        "Carlini et al. 2019, On Evaluating Adversarial Robustness"
    )
    result_class = WhiteBoxResult

    attacks: tuple[str, ...] = param(
        ("fgsm", "pgd", "cw"),
        choices=tuple(ATTACKS),
        label="Attacks",
        help="FGSM and PGD are swept over the ε grid; C&W finds each input's smallest "
        "successful L2 change, so it has no ε.",
    )
    norm: str = param(
        "linf",
        choices=("linf", "l2"),
        label="Norm of the budget",
        help="linf: every feature moves by at most ε; l2: the whole change has length at most ε.",
    )
    eps: tuple[float, ...] = param(
        DEFAULT_EPS["image"]["linf"],
        low=0.0,
        label="ε grid",
        help="Budgets to sweep, separated by commas. Images live in [0, 1]: an L∞ ε of 0.1 "
        "lets every pixel move by a tenth of its range.",
    )
    n: int = param(500, low=1, high=MAX_IMAGES, step=10, label="Test images")
    n_cw: int = param(100, low=1, high=MAX_IMAGES, step=10, label="C&W test images")
    target_class: int | None = param(
        None,
        low=0,
        label="Target class",
        help="Push every input toward this class (targeted attack); empty: untargeted. "
        "Inputs already of that class are left out.",
    )
    sanity: bool = param(
        True,
        label="Sanity checks",
        help="Carlini et al. (2019): monotone in ε, unbounded attack reaches chance, PGD "
        "beats FGSM, more steps/restarts change little.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Input seed", help="Which test inputs.")
    pgd: PGD = nested(PGD, default=PGD(early_stop=True), label="PGD settings")
    cw: CarliniWagnerL2 = nested(CarliniWagnerL2, label="Carlini–Wagner settings")

    def check(self) -> None:
        if not self.attacks:
            raise ValidationError("Choose at least one attack.")

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        return {
            "eps": default_eps(dataset, "linf"),
            "n": min(500, dataset.n_test),
            "n_cw": min(100, dataset.n_test),
        }

    def check_data(self, dataset: Dataset) -> None:
        if self.target_class is not None and self.target_class >= dataset.num_classes:
            raise ValidationError(
                f"Target class must be below {dataset.num_classes} for {dataset.name}; got "
                f"{self.target_class}."
            )
        if dataset.modality != "image" and self.norm == "linf" and max(self.eps) > 10:
            raise ValidationError(
                "ε is in the data's units (standardised features); L∞ values above 10 make "
                "no sense here."
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # Settings of attacks that do not run do not change the result: keep them out of
        # the key so that, e.g., a PGD-only run is found again whatever C&W's settings.
        for key in ("pgd", "cw"):
            if key not in self.attacks:
                out.pop(key)
        if "cw" not in self.attacks:
            out.pop("n_cw")
        return out

    def _weights(self) -> dict[str, float]:
        k = len(self.eps)
        cost: dict[str, float] = {}
        if "fgsm" in self.attacks:
            cost["FGSM"] = k * 1.0
        if "pgd" in self.attacks:
            cost["PGD"] = k * self.pgd.steps * self.pgd.restarts
        if "cw" in self.attacks:
            cw = self.cw
            cost[CW] = cw.binary_search_steps * cw.max_iter * self.n_cw / max(self.n, 1)
        if self.sanity:
            cost["sanity"] = 20 + self.pgd.steps * 5
        return cost

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None
        eps_grid = sorted(set(self.eps))
        weights = self._weights()
        parts = dict(zip(weights, split(progress, weights), strict=True))
        device = model_device(model)
        idx = select_inputs(dataset, self.n, self.seed, exclude_class=self.target_class)
        if idx.numel() == 0:
            raise ValidationError(
                "No test inputs left to attack (every input is of the target class)."
            )
        x = dataset.x_test[idx].to(device)
        y = dataset.y_test[idx].to(device)
        goal = Goal(
            target=self.target_class,
            bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)),
        )
        names = [str(c) for c in dataset.class_names]
        with torch.inference_mode():
            clean_acc = float((model(x).argmax(1) == y).float().mean())

        sweeps: list[pd.DataFrame] = []
        per_eps: dict[str, dict[float, AttackResult]] = {}
        gallery_rows: list[dict] = []
        artifacts: dict[str, Any] = {}
        norms_rows: list[pd.DataFrame] = []
        gidx = None
        for key in SWEPT:
            if key not in self.attacks:
                continue
            atk = FGSM() if key == "fgsm" else self.pgd
            df, results = epsilon_sweep(
                model,
                x,
                y,
                atk,
                eps_grid,
                norm=self.norm,
                goal=goal,
                progress=parts[atk.title],
                keep_results=True,
            )
            sweeps.append(df)
            per_eps[atk.title] = results
            for j, (eps, res) in enumerate(results.items()):
                if gidx is None:
                    gidx = successes_first(results[max(results)].success, GALLERY_SIZE)
                gallery_rows += _gallery_rows(atk.title, eps, res, gidx, names, y)
                artifacts[f"adv.{key}.{j}"] = res.x_adv[gidx].cpu().numpy().astype(np.float32)
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
        if len(per_eps) > 1:  # per-sample worst case over the swept attacks at each ε
            worst_rows = []
            for eps in eps_grid:
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
            "norm": self.norm,
            "eps_max": float(max(eps_grid)),
            "target_class": self.target_class,
        }
        if len(sweep):
            at_max = sweep[sweep["eps"] == max(eps_grid)].set_index("attack")["accuracy"]
            metrics["robust_accuracy"] = float(at_max.min())

        tables: dict[str, pd.DataFrame] = {"sweep": sweep}
        if gidx is not None:
            artifacts["clean"] = x[gidx].cpu().numpy().astype(np.float32)
            tables["gallery"] = pd.DataFrame(gallery_rows)
            tables["norms"] = pd.concat(norms_rows, ignore_index=True)

        if "cw" in self.attacks:
            n_cw = min(self.n_cw, int(y.shape[0]))
            res = attack_in_batches(
                self.cw,
                model,
                x[:n_cw],
                y[:n_cw],
                goal=goal,
                batch_size=512,
                progress=parts[CW],
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
            won = success.any()
            metrics.update(
                {
                    "cw_success_rate": float(success.mean()),
                    "cw_mean_l2": float(l2[success].mean()) if won else float("nan"),
                    "cw_median_l2": float(np.median(l2[success])) if won else float("nan"),
                    "cw_seconds": float(res.seconds),
                    "cw_n": n_cw,
                }
            )
            cidx = successes_first(res.success, GALLERY_SIZE)
            artifacts["cw.clean"] = x[:n_cw][cidx].cpu().numpy().astype(np.float32)
            artifacts["cw.adv"] = res.x_adv[cidx].cpu().numpy().astype(np.float32)
            tables["cw_gallery"] = pd.DataFrame(_gallery_rows(CW, 0.0, res, cidx, names, y[:n_cw]))

        if self.sanity:
            checks = self._sanity(model, x, y, dataset, goal, sweep, eps_grid, parts["sanity"])
            tables["sanity"] = checks_table(checks)
            metrics["sanity_warnings"] = int(sum(c.status == "warn" for c in checks))
        return RunResult(metrics=metrics, tables=tables, artifacts=artifacts)

    def _sanity(self, model, x, y, dataset, goal, sweep, eps_grid, progress) -> list:
        checks: list[SanityCheck] = []
        swept = sweep[sweep["attack"] != WORST_CASE] if len(sweep) else sweep
        if len(swept):
            checks += check_monotone(swept)
            checks.append(check_iterative_beats_single_step(swept))
        n_check = min(200, int(y.shape[0]))
        xs, ys = x[:n_check], y[:n_check]
        reach, converge = split(progress, {"sanity: unbounded attack": 3, "sanity: convergence": 7})
        checks.append(
            check_reaches_chance(
                model, xs, ys, dataset.num_classes, norm=self.norm, goal=goal, progress=reach
            )
        )
        # Check convergence where it matters: the ε whose PGD accuracy is nearest 50 %.
        pgd_rows = swept[swept["attack"] == self.pgd.title] if len(swept) else swept
        if len(pgd_rows):
            eps = float(pgd_rows.iloc[(pgd_rows["accuracy"] - 0.5).abs().argmin()]["eps"])
        else:
            eps = float(np.median(eps_grid))
        if eps > 0:
            checks.append(
                check_converged(
                    model, xs, ys, self.pgd, eps=eps, norm=self.norm, goal=goal, progress=converge
                )
            )
        return checks
