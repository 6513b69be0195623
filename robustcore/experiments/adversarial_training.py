"""The "Adversarial training" experiment: build a defended model (FGSM-RS, PGD-AT or
TRADES) from the session model's recipe, and measure what it buys against the undefended
model with the same attacks: accuracy against ε under PGD with restarts, C&W's success
within an L2 budget, the clean-accuracy cost and the training-time cost. The defended
model is a zoo model like any other, so every page can attack it afterwards.

``python -m robustcore adversarial_training --defense.method pgd_at --defense.adv_eps 0.3``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, CarliniWagnerL2, Goal
from ..data import Dataset
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs
from ..evaluation.sweeps import attack_in_batches, epsilon_sweep
from ..models import TrainRecipe, train_entry
from ..models.training import ADVERSARIAL, METHOD_TITLES
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .attack_work import cw_work, pgd_work
from .base import Experiment, ExperimentResult, Target, register
from .estimate import Work, training_work
from .whitebox import cw_budget_curve

DEFENDED = "defended"
UNDEFENDED = "undefended"
DEFAULT_DEFENSE = TrainRecipe(method="fgsm_rs", adv_eps=0.1)
"""The page's default: FGSM-RS at ε = 0.1 (two passes per batch: the cheapest method)."""


class AdversarialTrainingResult(ExperimentResult):
    """Training curves and both models' robustness."""

    @property
    def method(self) -> str:
        return str(self._metric("method"))

    @property
    def method_title(self) -> str:
        return METHOD_TITLES.get(self.method, self.method)

    @property
    def train_eps(self) -> float:
        return float(self._metric("train_eps"))

    @property
    def defended_recipe(self) -> dict[str, Any]:
        """The defended model's recipe (what the sidebar needs to make it current)."""
        return dict(self.spec["params"]["defense"])

    @property
    def defended_label(self) -> str:
        return str(self._metric("defended_label"))

    @property
    def arch(self) -> str:
        return str(self._metric("arch"))

    @property
    def zoo_key(self) -> str:
        return str(self._metric("defended_zoo_key"))

    def clean_accuracy(self, model: str = DEFENDED) -> float:
        return float(self._metric(f"{model}_clean_accuracy"))

    def robust_accuracy(self, model: str = DEFENDED) -> float:
        """PGD accuracy at the training ε (with the run's steps and restarts)."""
        return float(self._metric(f"{model}_robust_accuracy"))

    def train_seconds(self, model: str = DEFENDED) -> float:
        return float(self._metric(f"{model}_train_seconds"))

    @property
    def watchdog(self) -> str:
        """The watchdog's decision ("" when it did not stop training)."""
        return str(self._metric("watchdog", ""))

    @property
    def kept_epoch(self) -> int:
        return int(self._metric("kept_epoch"))

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def chance(self) -> float:
        return float(self._metric("chance"))

    def history(self) -> pd.DataFrame:
        """The defended model's epochs: clean and robust accuracy, ε, watchdog."""
        return self._table("history")

    def sweep(self) -> pd.DataFrame:
        """PGD accuracy against ε, one row per model and ε (column ``model``)."""
        return self._table("sweep")

    def curves(self) -> dict[str, pd.DataFrame]:
        sweep = self.sweep()
        return {str(m): g for m, g in sweep.groupby("label", sort=False)}

    @property
    def has_cw(self) -> bool:
        return self._has_table("cw_curve")

    def cw_curves(self) -> dict[str, pd.DataFrame]:
        if not self.has_cw:
            return {}
        cw = self._table("cw_curve")
        return {str(m): g for m, g in cw.groupby("label", sort=False)}

    def cw_success(self, model: str = DEFENDED) -> float:
        return float(self._metric(f"{model}_cw_success_rate"))

    def cw_median_l2(self, model: str = DEFENDED) -> float:
        return float(self._metric(f"{model}_cw_median_l2"))

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        cols = ["epoch", "eps", "test_acc", "robust_acc", "watch_acc", "seconds", "kept"]
        hist = self.history()
        return {
            "history": hist[[c for c in cols if c in hist]],
            "sweep": self.sweep()[["label", "eps", "accuracy", "n"]],
        }


@register
@dataclass(frozen=True)
class AdversarialTraining(Experiment):
    """Train a defended model and attack it and the undefended one with the same attacks.

    ``defense`` is the defended model's whole recipe (the page starts it from the session
    model's optimiser, epochs and seed); the undefended model is the same recipe with
    standard training. Both come from the model zoo, so a second run costs nothing.
    """

    name = "adversarial_training"
    title = "Adversarial training"
    paper = (
        "Wong, Rice & Kolter 2020 (FGSM-RS); Madry et al. 2018 (PGD-AT); Zhang et al. 2019 "
        "(TRADES); Carlini & Wagner 2017 (C&W)"
    )
    result_class = AdversarialTrainingResult
    headline = "defended_robust_accuracy"
    needs_model = False  # both models are trained here (the target names the architecture)

    defense: TrainRecipe = nested(
        TrainRecipe, default=DEFAULT_DEFENSE, label="Defended model's training recipe"
    )
    eps: tuple[float, ...] = param(
        (0.0, 0.05, 0.1, 0.2, 0.3),
        low=0.0,
        label="Evaluation ε grid (L∞)",
        help="Budgets at which both models are attacked with PGD, separated by commas.",
    )
    n: int = param(100, low=10, high=5000, step=10, label="Test images")
    cw: bool = param(
        True, label="Carlini–Wagner", help="Also run C&W L2 (no ε) on the first test images."
    )
    n_cw: int = param(50, low=10, high=1000, step=10, label="C&W test images")
    seed: int = param(0, low=0, high=2**31 - 1, label="Input seed", help="Which test inputs.")
    pgd: PGD = nested(
        PGD, default=PGD(steps=40, restarts=2, early_stop=True), label="Evaluation PGD"
    )

    def check(self) -> None:
        if self.defense.method not in ADVERSARIAL:
            raise ValidationError(
                "Choose an adversarial training method (fgsm_rs, pgd_at or trades); got "
                f"{self.defense.method!r}. Distillation has its own page."
            )

    def check_data(self, dataset: Dataset) -> None:
        if self.target is None or self.target.arch is None:
            raise ValidationError(
                "Adversarial training needs a built-in architecture: train a model in the "
                "sidebar, or upload weights of a built-in architecture."
            )

    @classmethod
    def for_target(cls, target: Target, **values: Any) -> AdversarialTraining:
        """Defaults drawn from the session model: its optimiser, epochs, batch and seed."""
        _, recipe = target.training
        general = {k: v for k, v in recipe.undefended().to_dict().items() if k != "noise_std"}
        defense = {**DEFAULT_DEFENSE.to_dict(), **general, **values.pop("defense", {})}
        return cls.from_dict({"defense": defense, **values}).on(target)

    @classmethod
    def page_default(cls, dataset: Dataset, session: Target | None) -> AdversarialTraining:
        """The page's form starts from the session model's recipe (:meth:`for_target`)."""
        if session is None:
            return super().page_default(dataset, session)
        return cls.for_target(session)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.cw:
            out.pop("n_cw")
        return out

    def models(self) -> tuple[Target, Target]:
        """The defended and the undefended zoo targets."""
        assert self.target is not None and self.target.arch is not None
        defended = Target.zoo(self.target.arch, self.defense)
        return defended, defended.undefended()

    def work(self, dataset: Dataset) -> Work:
        """Training the defended and the undefended model through the zoo (nothing for
        those it holds), then on each: two clean passes, PGD at every ε of the grid and at
        the training ε (:func:`~.attack_work.pgd_work`) and C&W on the first ``n_cw``
        images."""
        defended, undefended = self.models()
        arch, n = str(defended.arch), min(self.n, dataset.n_test)
        grid = sorted({*self.eps, self.defense.adv_eps})
        attacks = Work.of(arch, forward=2 * n) + pgd_work(arch, self.pgd, n, grid)
        if self.cw:
            attacks = attacks + cw_work(arch, CarliniWagnerL2(), min(self.n_cw, n))
        training = training_work(arch, dataset, self.defense)
        return training + training_work(arch, dataset, undefended.recipe) + attacks * 2

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        defended_t, undefended_t = self.models()
        k = len(self.eps) * self.pgd.steps * self.pgd.restarts * self.n / 2000
        epochs = self.defense.epochs
        cost_def = epochs * (2 if self.defense.method == "fgsm_rs" else self.defense.adv_steps + 1)
        cw_cost = 5.0 * self.n_cw / 100 if self.cw else 0.0
        p_def, p_und, p_eval_d, p_eval_u = split(
            progress, [cost_def, epochs, k + cw_cost, k + cw_cost]
        )
        entry_d = train_entry(defended_t.arch, dataset, defended_t.recipe, progress=p_def)
        entry_u = train_entry(undefended_t.arch, dataset, undefended_t.recipe, progress=p_und)

        idx = select_inputs(dataset, self.n, self.seed)
        metrics: dict[str, Any] = {
            "method": self.defense.method,
            "train_eps": self.defense.adv_eps,
            "arch": defended_t.arch,
            "defended_label": defended_t.describe(),
            "defended_zoo_key": entry_d.key,
            "undefended_zoo_key": entry_u.key,
            "watchdog": entry_d.metrics.get("watchdog", ""),
            "kept_epoch": entry_d.metrics.get("kept_epoch", epochs),
            "n": int(idx.numel()),
            "chance": 1.0 / dataset.num_classes,
        }
        sweeps, cw_curves = [], []
        for name, entry, part in (
            (DEFENDED, entry_d, p_eval_d),
            (UNDEFENDED, entry_u, p_eval_u),
        ):
            label = (
                f"{self.defense.describe_method()} (defended)"
                if name == DEFENDED
                else "standard training (undefended)"
            )
            sw, cw_part = split(part, [k, cw_cost])
            df, cw_df, m = self._evaluate(entry.model, dataset, idx, sw, cw_part)
            df.insert(0, "model", name)
            df.insert(1, "label", label)
            sweeps.append(df)
            if cw_df is not None:
                cw_df.insert(0, "model", name)
                cw_df.insert(1, "label", label)
                cw_curves.append(cw_df)
            metrics.update({f"{name}_{key}": v for key, v in m.items()})
            metrics[f"{name}_train_seconds"] = float(entry.metrics["train_seconds"])
        tables = {
            "history": entry_d.history,
            "sweep": pd.concat(sweeps, ignore_index=True),
        }
        if cw_curves:
            tables["cw_curve"] = pd.concat(cw_curves, ignore_index=True)
        metrics["clean_cost"] = (
            metrics["undefended_clean_accuracy"] - metrics["defended_clean_accuracy"]
        )
        metrics["time_ratio"] = metrics["defended_train_seconds"] / max(
            metrics["undefended_train_seconds"], 1e-9
        )
        return RunResult(
            metrics=metrics,
            tables=tables,
            label=f"{self.title}: {defended_t.describe()} on {dataset.name}",
        )

    def _evaluate(
        self,
        model: nn.Module,
        dataset: Dataset,
        idx: torch.Tensor,
        sweep_progress: ProgressFn | None,
        cw_progress: ProgressFn | None,
    ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, float]]:
        device = model_device(model)
        x, y = dataset.x_test[idx].to(device), dataset.y_test[idx].to(device)
        goal = Goal(bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)))
        grid = sorted({*self.eps, self.defense.adv_eps})  # always the training ε too
        df = epsilon_sweep(
            model, x, y, self.pgd, grid, norm="linf", goal=goal,
            progress=sweep_progress,
        )  # fmt: skip
        with torch.inference_mode():
            clean = float((model(x).argmax(1) == y).float().mean())
        at_train = df[df["eps"] == self.defense.adv_eps]
        m = {"clean_accuracy": clean, "robust_accuracy": float(at_train["accuracy"].iloc[0])}
        cw_df = None
        if self.cw:
            n_cw = min(self.n_cw, int(y.shape[0]))
            res = attack_in_batches(
                CarliniWagnerL2(), model, x[:n_cw], y[:n_cw], goal=goal, batch_size=512,
                progress=cw_progress,
            )  # fmt: skip
            success = res.success.cpu().numpy()
            l2 = res.l2.cpu().numpy()
            cw_df = cw_budget_curve(l2, success)
            m["cw_success_rate"] = float(success.mean())
            m["cw_median_l2"] = float(pd.Series(l2[success]).median()) if success.any() else 0.0
        return df, cw_df, m
