"""The robustness scorecard on the Home page: one quick battery on the current model.

Each row is one question a stakeholder asks, answered on the current model with the
workbench's own engines (the pages go deeper):

* clean accuracy on the test images, next to chance;
* **general robustness**: accuracy under Gaussian noise of standard deviation σ;
* **white-box evasion**: accuracy under PGD (Madry et al. 2018) at a small and a large L∞ ε;
* **is that evaluation trustworthy?**: an unbounded PGD must reach chance (Carlini et al.
  2019); if it does not, gradients are masked and the PGD rows flatter the model;
* **black-box evasion**: SimBA's success within a query budget (Guo et al. 2019), through
  the counted query interface (DCT basis on images, one feature at a time otherwise);
* **privacy**: the loss-threshold membership-inference attack's AUC and TPR at 1 % FPR
  (Yeom et al. 2018) on balanced training members and test non-members.

The verdicts are presentation, not science: the thresholds are stated in
:data:`THRESHOLDS` and in the page, and every row links to the page that explains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, Goal, QueryModel, SimBA
from ..attacks.inference.membership import loss_scores, membership_split
from ..attacks.inference.metrics import membership_metrics
from ..data import Dataset
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import correct_inputs, select_inputs
from ..evaluation.sanity import SanityCheck, check_reaches_chance
from ..evaluation.sweeps import attack_in_batches
from ..models import predict_logits
from ..params import param
from ..progress import ProgressFn, scaled
from ..runs.store import RunResult
from .attack_work import pgd_work
from .base import Experiment, ExperimentResult, register
from .blackbox import query_work, selection_work
from .estimate import Work, model_key

THRESHOLDS = {
    "kept": (0.8, 0.3),  # share of clean accuracy kept: ≥ 0.8 good, ≥ 0.3 fair, else poor
    "noise": (0.95, 0.8),  # share of clean accuracy kept under random noise
    "query": (0.2, 0.6),  # black-box success: ≤ 0.2 good, ≤ 0.6 fair, else poor
    "auc": (0.55, 0.65),  # membership AUC: ≤ 0.55 good, ≤ 0.65 fair, else poor
}
"""Where a row turns from good to fair to poor (documented on the page)."""

VERDICTS = {"good": "good", "fair": "fair", "poor": "poor", "info": "—"}


def _grade(value: float, good: float, fair: float, *, higher_is_better: bool) -> str:
    if higher_is_better:
        return "good" if value >= good else "fair" if value >= fair else "poor"
    return "good" if value <= good else "fair" if value <= fair else "poor"


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_logits(model, x).argmax(1) == y.cpu()).float().mean())


class ScorecardResult(ExperimentResult):
    """The scorecard's rows and its headline numbers."""

    def table(self) -> pd.DataFrame:
        """One row per check: area, check, value, shown, verdict, meaning, page."""
        return self._table("scorecard")

    @property
    def clean_accuracy(self) -> float:
        return float(self._metric("clean_accuracy"))

    @property
    def pgd_large_accuracy(self) -> float:
        return float(self._metric("pgd_large_accuracy"))

    @property
    def simba_success(self) -> float:
        return float(self._metric("simba_success"))

    @property
    def membership_auc(self) -> float:
        return float(self._metric("membership_auc"))

    @property
    def chance(self) -> float:
        return float(self._metric("chance"))

    @property
    def n(self) -> int:
        """Test images of the accuracy rows."""
        return int(self._metric("n"))

    def failed_checks(self) -> list[SanityCheck]:
        """The sanity check of the evaluation when it failed: an unbounded attack that does
        not reach chance means masked gradients, and the PGD rows flatter the model."""
        if self._metric("reaches_chance", True):
            return []
        rows = self.table()
        row = rows[rows["area"] == "evaluation"].iloc[0]
        return [SanityCheck(str(row["check"]), "warn", str(row["meaning"]))]

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"scorecard": self.table()[["area", "check", "shown", "verdict"]]}


@register
@dataclass(frozen=True)
class Scorecard(Experiment):
    """The robustness scorecard: one quick battery on the current model (defaults fit
    images in [0, 1]; :meth:`defaults` suggests larger ε and σ for tabular data)."""

    name = "scorecard"
    title = "Robustness scorecard"
    paper = "Carlini et al. 2019, On Evaluating Adversarial Robustness"
    result_class = ScorecardResult
    headline = "pgd_large_accuracy"
    model_share = 0.05

    n: int = param(
        200, low=20, high=1000, step=10, label="Test images", help="Images for the accuracy rows."
    )
    noise_std: float = param(
        0.1,
        low=0.0,
        high=5.0,
        step=0.01,
        label="Noise σ",
        help="Standard deviation of the Gaussian noise added to every input (data units).",
    )
    eps_small: float = param(
        0.1, low=0.0, high=10.0, step=0.01, label="Small ε (L∞)", help="A barely visible change."
    )
    eps_large: float = param(
        0.3, low=0.0, high=10.0, step=0.01, label="Large ε (L∞)", help="A clearly visible change."
    )
    pgd_steps: int = param(20, low=1, high=100, step=1, label="PGD steps")
    simba_eps: float = param(
        0.2,
        low=0.001,
        high=10.0,
        step=0.01,
        label="SimBA step ε",
        help="Length of each SimBA step (Guo et al. 2019 use 0.2 on images in [0, 1]).",
    )
    query_budget: int = param(
        1000,
        low=10,
        high=100_000,
        step=100,
        label="Query budget (black box)",
        help="Queries SimBA may send per image.",
    )
    n_query: int = param(
        50, low=5, high=500, step=5, label="Images for SimBA", help="Correctly classified ones."
    )
    members: int = param(
        500,
        low=20,
        high=2000,
        step=10,
        label="Members per side",
        help="Training members and test non-members for membership inference.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Seed", help="Chooses images and noise.")

    def check(self) -> None:
        if self.eps_large < self.eps_small:
            raise ValidationError(
                f"The large ε ({self.eps_large:g}) must be at least the small one "
                f"({self.eps_small:g})."
            )

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        """ε and σ in image units, or larger for tabular features (which span several
        units)."""
        if dataset.modality == "image":
            return {}
        return {"noise_std": 0.25, "eps_small": 0.25, "eps_large": 1.0}

    def _train_size(self) -> int:
        """How many of the first training examples the model saw (0: all), so that the
        membership candidates are real members."""
        recipe = self.target.recipe if self.target is not None else None
        return int(recipe.train_size) if recipe is not None else 0

    def work(self, dataset: Dataset) -> Work:
        """The test images clean and noisy; PGD at the small and the large ε (early stop,
        :func:`~.attack_work.pgd_work`) and the sanity check's unbounded PGD (every step);
        choosing SimBA's images and its queries at their upper bound, as on the Black-box
        page (every image spends the whole budget; the half they spend on the default run
        costs as much again in the overhead of its small batches); the membership
        candidates' answers."""
        key, n = model_key(self.target), min(self.n, dataset.n_test)
        pgd = PGD(steps=self.pgd_steps, early_stop=True)
        unbounded = PGD(steps=self.pgd_steps, random_start=False)
        train = min(self._train_size() or dataset.n_train, dataset.n_train)
        members = 2 * min(train, dataset.n_test, self.members)
        return (
            Work.of(key, forward=2 * n + members)
            + pgd_work(key, pgd, n, (self.eps_small, self.eps_large))
            + pgd_work(key, unbounded, n, (1.0,))
            + selection_work(key, self.n_query, dataset)
            + query_work(key, self.n_query, self.query_budget)
        )

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        """Run the battery and return one table row per check (see the module docstring)."""
        assert model is not None

        def report(f: float, m: str) -> None:
            if progress:
                progress(f, m)

        device = model_device(model)
        chance = 1.0 / dataset.num_classes
        bounds = (dataset.bounds[0].to(device), dataset.bounds[1].to(device))
        goal = Goal(bounds=bounds)
        idx = select_inputs(dataset, self.n, self.seed)
        x, y = dataset.x_test[idx].to(device), dataset.y_test[idx].to(device)
        rows: list[dict[str, Any]] = []

        def add(area, check, value, shown, verdict, meaning, page) -> None:
            rows.append(
                {
                    "area": area,
                    "check": check,
                    "value": float(value),
                    "shown": shown,
                    "verdict": VERDICTS[verdict],
                    "meaning": meaning,
                    "page": page,
                }
            )

        report(0.02, "clean accuracy")
        clean = _accuracy(model, x, y)
        add(
            "accuracy",
            "Clean accuracy",
            clean,
            f"{clean:.1%}",
            "info",
            f"On {len(y)} test images; chance is {chance:.1%}.",
            "Home",
        )
        kept_good, kept_fair = THRESHOLDS["kept"]

        report(0.05, "Gaussian noise")
        gen = torch.Generator(device=device).manual_seed(self.seed)
        noisy = x + self.noise_std * torch.randn(x.shape, generator=gen, device=device)
        noisy = torch.maximum(torch.minimum(noisy, bounds[1]), bounds[0])
        acc_noise = _accuracy(model, noisy, y)
        ratio = acc_noise / clean if clean > 0 else 0.0
        add(
            "general robustness",
            f"Accuracy under Gaussian noise σ = {self.noise_std:g}",
            acc_noise,
            f"{acc_noise:.1%}",
            _grade(ratio, *THRESHOLDS["noise"], higher_is_better=True),
            f"Random noise, not an attacker: keeps {ratio:.0%} of the clean accuracy.",
            "White-box attacks",
        )

        accs = {}
        for j, (size, eps) in enumerate((("small", self.eps_small), ("large", self.eps_large))):
            report(0.1 + 0.15 * j, f"PGD at ε = {eps:g}")
            pgd = PGD(steps=self.pgd_steps, seed=self.seed, early_stop=True)
            res = attack_in_batches(pgd, model, x, y, eps=eps, goal=goal, batch_size=512)
            acc = float((res.pred == y).float().mean())
            accs[size] = acc
            kept = acc / clean if clean > 0 else 0.0
            add(
                "white-box evasion",
                f"Accuracy under PGD-{self.pgd_steps}, {size} ε = {eps:g} (L∞)",
                acc,
                f"{acc:.1%}",
                _grade(kept, kept_good, kept_fair, higher_is_better=True),
                f"An attacker with the model's gradients; keeps {kept:.0%} of the clean accuracy.",
                "White-box attacks",
            )

        report(0.4, "is the evaluation trustworthy?")
        check = check_reaches_chance(
            model, x, y, dataset.num_classes, goal=goal, steps=self.pgd_steps
        )
        add(
            "evaluation",
            "Unbounded PGD reaches chance",
            1.0 if check.passed else 0.0,
            "yes" if check.passed else "no",
            "good" if check.passed else "poor",
            check.message,
            "White-box attacks",
        )

        report(0.5, "SimBA within the query budget")
        qidx, _ = correct_inputs(model, dataset, self.n_query, self.seed)
        xq, yq = dataset.x_test[qidx].to(device), dataset.y_test[qidx].to(device)
        basis = "dct" if len(dataset.input_shape) == 3 else "pixel"
        simba = SimBA(basis=basis, seed=self.seed)
        api = QueryModel(model, budget=self.query_budget)
        res = simba.run(
            api, xq, yq, eps=self.simba_eps, goal=goal, progress=scaled(report, 0.5, 0.85)
        )
        won = res.queries[res.success].float()
        median = float(won.median()) if won.numel() else float("nan")
        add(
            "black-box evasion",
            f"SimBA ({'DCT' if basis == 'dct' else 'one feature at a time'}) success within "
            f"{self.query_budget:,} queries",
            res.success_rate,
            f"{res.success_rate:.1%}",
            _grade(res.success_rate, *THRESHOLDS["query"], higher_is_better=False),
            f"An attacker who only reads probabilities, on {len(yq)} correctly classified "
            "images"
            + (f"; median {median:,.0f} queries when it succeeds." if won.numel() else "."),
            "Black-box attacks",
        )

        report(0.88, "membership inference")
        split = membership_split(
            dataset, train_size=self._train_size(), max_per_side=self.members, seed=self.seed
        )
        answers = torch.softmax(predict_logits(model, split.x), dim=1)
        mi = membership_metrics(loss_scores(answers, split.y).numpy(), split.is_member.numpy())
        add(
            "privacy",
            "Membership inference AUC (loss threshold)",
            mi["auc"],
            f"{mi['auc']:.3f}",
            _grade(mi["auc"], *THRESHOLDS["auc"], higher_is_better=False),
            f"0.5 = the attacker guesses. TPR at 1 % FPR: {mi['tpr@1%fpr']:.1%} "
            f"({split.per_side} members and non-members).",
            "Membership inference",
        )
        report(1.0, "done")
        metrics = {
            "clean_accuracy": clean,
            "noise_accuracy": acc_noise,
            "pgd_small_accuracy": accs["small"],
            "pgd_large_accuracy": accs["large"],
            "reaches_chance": bool(check.passed),
            "simba_success": res.success_rate,
            "simba_median_queries": median,
            "membership_auc": mi["auc"],
            "chance": chance,
            "n": int(len(y)),
        }
        return RunResult(metrics=metrics, tables={"scorecard": pd.DataFrame(rows)})
