"""The "White-box attacks" experiment: ε sweeps of FGSM and PGD, Carlini–Wagner's minimal
perturbations, the per-sample worst case, galleries and the sanity checks of Carlini et al.
(2019, "On Evaluating Adversarial Robustness").

``python -m robustcore whitebox --attacks pgd --pgd.steps 40 --eps 0.1,0.2,0.3``
"""

from __future__ import annotations

import dataclasses
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
    REACHES_CHANCE,
    SanityCheck,
    check_converged,
    check_iterative_beats_single_step,
    check_monotone,
    check_reaches_chance,
    checks_table,
)
from ..evaluation.sweeps import SWEEP_COLUMNS, attack_in_batches, epsilon_sweep
from ..params import nested, param
from ..progress import ProgressFn, scaled, split
from ..runs.cells import (
    Cell,
    CellCache,
    current_cells,
    get_or_compute,
    inputs_fingerprint,
    model_fingerprint,
)
from ..runs.store import RunResult
from .attack_work import cw_work, pgd_work
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key

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
REACH_STEPS = 20
"""Steps of the sanity check's unbounded attack."""
CELL_LAYOUT = 1
"""Version of what a white-box cell holds and how it is computed (the attacks' code, the
sanity checks' wording): bump it when either changes, so cells stored by older code are
never reused."""


def default_eps(dataset: Dataset, norm: str) -> tuple[float, ...]:
    """The ε grid that suits the data (images in [0, 1]; standardised tabular features)."""
    return DEFAULT_EPS["image" if dataset.modality == "image" else "tabular"][norm]


def cw_budget_curve(l2: np.ndarray, success: np.ndarray, points: int = 41) -> pd.DataFrame:
    """Fraction of inputs C&W fooled within each L2 budget (its success against budget)."""
    top = float(np.nanmax(l2[success])) if success.any() else 1.0
    budgets = np.linspace(0.0, max(top * 1.05, 1e-3), points)
    rates = [float(np.mean(success & (l2 <= b))) for b in budgets]
    return pd.DataFrame({"l2_budget": budgets, "success_rate": rates})


@dataclass
class _Outcome:
    """Per-input numbers of one attack at one budget, as numpy arrays (a cell keeps them)."""

    pred: np.ndarray
    success: np.ndarray
    confidence: np.ndarray
    l2: np.ndarray
    linf: np.ndarray

    @classmethod
    def of(cls, res: AttackResult) -> _Outcome:
        return cls(**{f.name: getattr(res, f.name).cpu().numpy() for f in dataclasses.fields(cls)})

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix + f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> _Outcome:
        return cls(**{f.name: arrays[prefix + f.name] for f in dataclasses.fields(cls)})


def _gallery_rows(
    attack: str, eps: float, res: _Outcome, idx: torch.Tensor, names: list[str], y
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

    def failed_checks(self, attack: str | None = None) -> list[SanityCheck]:
        """The sanity checks that failed; with ``attack`` (FGSM, PGD, C&W or the worst
        case), those that put its number in doubt: its own (monotone in ε; for PGD also
        "at least as strong as FGSM" and convergence), the unbounded attack's (masked
        gradients flatter every gradient attack), and for the worst case all of them."""
        failed = [c for c in self.sanity() or [] if not c.passed]
        if attack is None or attack == WORST_CASE:
            return failed
        return [
            c
            for c in failed
            if c.name == REACHES_CHANCE or c.name.startswith((f"{attack}:", f"{attack} "))
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

    A run is assembled from cells (:mod:`robustcore.runs.cells`): the clean accuracy, each
    swept attack, C&W, and the two sanity checks that attack again (the unbounded attack;
    PGD's convergence), each keyed by the model (target spec and weights), the data's
    fingerprint, the exact inputs and that part's own settings. Only the cells not stored
    yet are computed: a what-if that changes PGD's steps reuses FGSM, C&W and the unbounded
    attack. A cell's numbers do not depend on what ran before it in the job: PGD seeds its
    own generator from its ``seed`` at every call, FGSM and C&W draw nothing at random,
    and the checks on the sweep only read it.
    """

    name = "whitebox"
    title = "White-box attacks"
    paper = (
        "Goodfellow et al. 2015 (FGSM); Madry et al. 2018 (PGD); Carlini & Wagner 2017 (C&W); "
        "Carlini et al. 2019, On Evaluating Adversarial Robustness"
    )
    result_class = WhiteBoxResult
    headline = "robust_accuracy"

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

    def work(self, dataset: Dataset) -> Work:
        """What a run computes on the target, counted as :mod:`.attack_work` counts the
        attacks (early-stopped PGD at half its steps, every C&W step): one forward pass of
        the inputs; the FGSM and PGD sweeps over the ε grid; C&W on its inputs; the sanity
        checks' unbounded attack and PGD's convergence check (PGD as set, with doubled
        steps, and with two more restarts) on up to 200 inputs. Parts stored by earlier
        runs (cells) are counted too, so a what-if's estimate is an upper bound."""
        m = model_key(self.target)
        n = min(self.n, dataset.n_test)
        grid = sorted(set(self.eps))
        work = Work.of(m, forward=n)
        if "fgsm" in self.attacks:
            budgets = sum(e > 0 for e in grid)
            work = work + Work.of(m, gradient=n * budgets, forward=n * len(grid))
        if "pgd" in self.attacks:
            work = work + pgd_work(m, self.pgd, n, grid)
        if "cw" in self.attacks:
            work = work + cw_work(m, self.cw, min(self.n_cw, n))
        if self.sanity:
            n_check = min(200, n)
            work = work + pgd_work(m, PGD(steps=REACH_STEPS, random_start=False), n_check, [1.0])
            if any(e > 0 for e in grid):
                p = self.pgd
                more = (p.replace(steps=p.steps * 2), p.replace(restarts=p.restarts + 2))
                for variant in (p, *more):
                    work = work + pgd_work(m, variant, n_check, [1.0])
        return work

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
        self,
        dataset: Dataset,
        model: nn.Module | None,
        progress: ProgressFn | None = None,
        *,
        cells: CellCache | None = None,
    ) -> RunResult:
        """Assemble the run from its cells (clean accuracy, one sweep per attack, C&W, the
        sanity checks), computing only those not stored yet (see :mod:`robustcore.runs.cells`;
        ``cells`` defaults to the job runner's, none outside a job)."""
        assert model is not None
        cells = cells if cells is not None else current_cells()
        eps_grid = sorted(set(self.eps))
        weights = self._weights()
        parts = dict(zip(weights, split(progress, weights), strict=True))
        # The same shares without labels, for messages that name their part themselves.
        plain = dict(zip(weights, split(progress, list(weights.values())), strict=True))
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
        base = {
            "layout": [self.layout, CELL_LAYOUT],
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "target": self.target.spec() if self.target is not None else None,
            "model": model_fingerprint(model) if cells is not None else None,
        }

        def cell(part: str, title: str, k: int, params: dict, compute, report) -> Cell:
            spec = {
                "kind": f"whitebox.{part}",
                **base,
                "inputs": inputs_fingerprint(idx[:k]),
                "params": params,
            }

            def waiting() -> None:
                if report is not None:
                    report(0.0, f"{title}: waiting for another run computing the same part")

            out = get_or_compute(cells, spec, compute, waiting=waiting)
            if out.reused and report is not None:
                report(1.0, f"{title}: reused from an earlier run")
            return out

        n = int(y.shape[0])

        def clean_cell():
            with torch.inference_mode():
                correct = model(x).argmax(1) == y
            return {"accuracy": float(correct.float().mean())}, {"correct": correct.cpu().numpy()}

        # One forward pass: no share of the bar (its messages stay at the start).
        clean = cell("clean", "Clean accuracy", n, {}, clean_cell, scaled(progress, 0.0, 0.0))
        clean_acc = float(clean.metrics["accuracy"])

        sweeps: list[pd.DataFrame] = []
        per_eps: dict[str, list[_Outcome]] = {}
        gallery_rows: list[dict] = []
        artifacts: dict[str, Any] = {}
        norms_rows: list[pd.DataFrame] = []
        gidx: torch.Tensor | None = None
        for key in SWEPT:
            if key not in self.attacks:
                continue
            atk = FGSM() if key == "fgsm" else self.pgd
            # The gallery shows the same inputs for every attack: those the first swept
            # attack fooled at the largest ε. A later attack's cell keeps its images there.
            shown = None if gidx is None else gidx.tolist()

            def sweep_cell(atk=atk, shown=shown):
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
                at_max = results[max(results)].success
                g = successes_first(at_max, GALLERY_SIZE) if shown is None else torch.tensor(shown)
                arrays = {"gallery": g.numpy()}
                for j, res in enumerate(results.values()):
                    arrays.update(_Outcome.of(res).arrays(f"{j}."))
                    arrays[f"{j}.adv"] = res.x_adv[g].cpu().numpy().astype(np.float32)
                return {"rows": df.to_dict("records")}, arrays

            params = {
                "attack": atk.to_dict(),
                "eps": [float(e) for e in eps_grid],
                "norm": self.norm,
                "target_class": self.target_class,
                "gallery": shown,
            }
            swept = cell(key, atk.title, n, params, sweep_cell, plain[atk.title])
            sweeps.append(pd.DataFrame(swept.metrics["rows"], columns=SWEEP_COLUMNS))
            if gidx is None:
                gidx = torch.from_numpy(swept.arrays["gallery"])
            outcomes = [_Outcome.from_arrays(swept.arrays, f"{j}.") for j in range(len(eps_grid))]
            per_eps[atk.title] = outcomes
            for j, (eps, out) in enumerate(zip(eps_grid, outcomes, strict=True)):
                gallery_rows += _gallery_rows(atk.title, eps, out, gidx, names, y)
                artifacts[f"adv.{key}.{j}"] = swept.arrays[f"{j}.adv"]
                norms_rows.append(
                    pd.DataFrame(
                        {
                            "attack": atk.title,
                            "eps": float(eps),
                            "l2": out.l2,
                            "linf": out.linf,
                            "success": out.success,
                        }
                    )
                )

        sweep = pd.concat(sweeps, ignore_index=True) if sweeps else pd.DataFrame()
        if len(per_eps) > 1:  # per-sample worst case over the swept attacks at each ε
            correct = torch.from_numpy(clean.arrays["correct"])
            y_cpu = y.cpu()
            worst_rows = []
            for j, eps in enumerate(eps_grid):
                robust = correct.clone()
                for outcomes in per_eps.values():
                    robust &= torch.from_numpy(outcomes[j].pred) == y_cpu
                worst_rows.append(
                    {
                        "attack": WORST_CASE,
                        "eps": float(eps),
                        "accuracy": float(robust.float().mean()),
                        "success_rate": float("nan"),
                        "mean_l2": float("nan"),
                        "mean_linf": float("nan"),
                        "seconds": 0.0,
                        "n": n,
                        "steps": 0,
                    }
                )
            sweep = pd.concat([sweep, pd.DataFrame(worst_rows)], ignore_index=True)

        metrics: dict[str, Any] = {
            "clean_accuracy": clean_acc,
            "n": n,
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
            n_cw = min(self.n_cw, n)

            def cw_cell():
                res = attack_in_batches(
                    self.cw,
                    model,
                    x[:n_cw],
                    y[:n_cw],
                    goal=goal,
                    batch_size=512,
                    progress=parts[CW],
                )
                cidx = successes_first(res.success, GALLERY_SIZE)
                arrays = _Outcome.of(res).arrays("")
                arrays["gallery"] = cidx.numpy()
                arrays["adv"] = res.x_adv[cidx].cpu().numpy().astype(np.float32)
                return {"seconds": float(res.seconds)}, arrays

            params = {"attack": self.cw.to_dict(), "target_class": self.target_class}
            done = cell("cw", CW, n_cw, params, cw_cell, plain[CW])
            res = _Outcome.from_arrays(done.arrays, "")
            l2, success = res.l2, res.success
            tables["cw"] = pd.DataFrame(
                {
                    "true": [names[int(v)] for v in y[:n_cw].tolist()],
                    "predicted": [names[int(v)] for v in res.pred.tolist()],
                    "success": success,
                    "l2": l2,
                    "linf": res.linf,
                    "confidence": res.confidence,
                }
            )
            tables["cw_curve"] = cw_budget_curve(l2, success)
            won = success.any()
            metrics.update(
                {
                    "cw_success_rate": float(success.mean()),
                    "cw_mean_l2": float(l2[success].mean()) if won else float("nan"),
                    "cw_median_l2": float(np.median(l2[success])) if won else float("nan"),
                    "cw_seconds": float(done.metrics["seconds"]),
                    "cw_n": n_cw,
                }
            )
            cidx = torch.from_numpy(done.arrays["gallery"])
            artifacts["cw.clean"] = x[:n_cw][cidx].cpu().numpy().astype(np.float32)
            artifacts["cw.adv"] = done.arrays["adv"]
            tables["cw_gallery"] = pd.DataFrame(_gallery_rows(CW, 0.0, res, cidx, names, y[:n_cw]))

        if self.sanity:
            checks = self._sanity(
                model, x, y, dataset, goal, sweep, eps_grid, parts["sanity"], plain["sanity"], cell
            )
            tables["sanity"] = checks_table(checks)
            metrics["sanity_warnings"] = int(sum(c.status == "warn" for c in checks))
        return RunResult(metrics=metrics, tables=tables, artifacts=artifacts)

    def _sanity(
        self, model, x, y, dataset, goal, sweep, eps_grid, progress, plain, cell
    ) -> list[SanityCheck]:
        # The checks on the sweep read numbers already there; the two that attack again
        # are cells of their own (the unbounded attack does not depend on PGD's settings).
        checks: list[SanityCheck] = []
        swept = sweep[sweep["attack"] != WORST_CASE] if len(sweep) else sweep
        if len(swept):
            checks += check_monotone(swept)
            checks.append(check_iterative_beats_single_step(swept))
        n_check = min(200, int(y.shape[0]))
        xs, ys = x[:n_check], y[:n_check]
        shares = {"sanity: unbounded attack": 3, "sanity: convergence": 7}
        reach, converge = split(progress, shares)
        reach_msg, converge_msg = split(plain, list(shares.values()))

        def reach_cell():
            check = check_reaches_chance(
                model,
                xs,
                ys,
                dataset.num_classes,
                norm=self.norm,
                goal=goal,
                steps=REACH_STEPS,
                progress=reach,
            )
            return {"check": dataclasses.asdict(check)}, {}

        params = {"steps": REACH_STEPS, "norm": self.norm, "num_classes": dataset.num_classes}
        done = cell(
            "sanity.reaches_chance",
            "Sanity check (unbounded attack)",
            n_check,
            params,
            reach_cell,
            reach_msg,
        )
        checks.append(SanityCheck(**done.metrics["check"]))
        # Check convergence where it matters: the budget (ε > 0: at ε = 0 there is nothing
        # to converge) whose PGD accuracy is nearest 50 %.
        pgd_rows = (
            swept[(swept["attack"] == self.pgd.title) & (swept["eps"] > 0)] if len(swept) else swept
        )
        if len(pgd_rows):
            eps = float(pgd_rows.iloc[(pgd_rows["accuracy"] - 0.5).abs().argmin()]["eps"])
        else:
            eps = float(np.median([e for e in eps_grid if e > 0] or [0.0]))
        if eps > 0:

            def converge_cell():
                check = check_converged(
                    model, xs, ys, self.pgd, eps=eps, norm=self.norm, goal=goal, progress=converge
                )
                return {"check": dataclasses.asdict(check)}, {}

            params = {"pgd": self.pgd.to_dict(), "eps": eps, "norm": self.norm}
            done = cell(
                "sanity.converged",
                "Sanity check (PGD convergence)",
                n_check,
                params,
                converge_cell,
                converge_msg,
            )
            checks.append(SanityCheck(**done.metrics["check"]))
        return checks
