"""The "Defensive distillation" experiment: distil the session model's architecture at
several temperatures T (Papernot et al. 2016) and show what the defense buys: the naive
gradient attack stalls as T grows, because the deployed student's softmax saturates and
its gradients vanish; the adaptive attacks of Carlini & Wagner (2016), PGD on the logits
divided by T and C&W on the logits, succeed as before. The sanity checks of Carlini et al.
(2019) flag the masking on their own: the unbounded naive attack does not reach chance,
and a black-box transfer attack beats the white-box one.

``python -m robustcore defensive_distillation --temperatures 1,10,100 --eps 0.3``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, CarliniWagnerL2, Goal
from ..data import Dataset
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs
from ..evaluation.metrics import fooled_rate
from ..evaluation.sanity import (
    SanityCheck,
    check_reaches_chance,
    check_whitebox_beats_blackbox,
    checks_table,
)
from ..evaluation.sweeps import attack_in_batches
from ..models import train_entry
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .attack_work import cw_work, pgd_work
from .base import Experiment, ExperimentResult, register
from .estimate import Work, in_zoo, training_work

NAIVE = "PGD on the softmax (naive)"
ADAPTIVE = "PGD on logits ÷ T (adaptive)"
CW = "C&W on the logits (adaptive)"


class DistillationResult(ExperimentResult):
    """Attack success and gradient norms per temperature, and the sanity checks."""

    @property
    def eps(self) -> float:
        return float(self._metric("eps"))

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def top_temperature(self) -> float:
        return float(self._metric("top_temperature"))

    @property
    def undefended_success(self) -> float:
        """Naive PGD's success on the undefended model (standard training) at ε."""
        return float(self._metric("undefended_success"))

    def success(self) -> pd.DataFrame:
        """One row per temperature and attack: success rate (and clean accuracy)."""
        return self._table("success")

    def success_at(self, attack: str, temperature: float) -> float:
        df = self.success()
        row = df[(df["attack"] == attack) & (df["temperature"] == temperature)]
        return float(row["success_rate"].iloc[0])

    def models(self) -> pd.DataFrame:
        """One row per temperature: clean accuracy, zoo key, share of zero gradients."""
        return self._table("models")

    def gradient_norms(self) -> pd.DataFrame:
        """Per temperature (and the undefended model): each input's gradient L2 norm."""
        return self._table("grad_norms")

    def sanity(self) -> list[SanityCheck]:
        return [
            SanityCheck(r.check, r.status, r.message)
            for r in self._table("sanity").itertuples(index=False)
        ]

    @property
    def masked(self) -> bool:
        """Did a sanity check flag gradient masking on the highest temperature?"""
        return any(c.status == "warn" for c in self.sanity())

    def failed_checks(self, attack: str) -> list[SanityCheck]:
        """The failed checks that put ``attack``'s success at the highest temperature in
        doubt: for the naive PGD its unbounded attack and the comparison with the transfer
        attack, for the adaptive PGD its own unbounded attack."""
        if attack == NAIVE:
            concern: tuple[str, ...] = ("naive attack", "white-box at least as strong")
        elif attack == ADAPTIVE:
            concern = ("adaptive attack",)
        else:
            return []
        return [c for c in self.sanity() if not c.passed and any(k in c.name for k in concern)]

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"success": self.success(), "models": self.models(), "sanity": self._table("sanity")}


@register
@dataclass(frozen=True)
class DefensiveDistillation(Experiment):
    """Distil at each temperature, attack naively and adaptively, check the evaluation."""

    name = "defensive_distillation"
    title = "Defensive distillation"
    paper = (
        "Papernot et al. 2016, Distillation as a Defense to Adversarial Perturbations; "
        "Carlini & Wagner 2016, Defensive Distillation is Not Robust to Adversarial Examples"
    )
    result_class = DistillationResult
    headline = "sanity_warnings"
    needs_model = False  # the students are trained here from the target's recipe

    temperatures: tuple[float, ...] = param(
        (1.0, 10.0, 100.0),
        low=1.0,
        high=100.0,
        label="Temperatures T",
        help="Distillation temperatures to train at, separated by commas (1 to 100). "
        "Each trains a teacher and a student.",
    )
    eps: float = param(
        0.3, low=0.0, high=1.0, step=0.01, label="ε (L∞)", help="The attacks' budget."
    )
    n: int = param(200, low=10, high=5000, step=10, label="Test images")
    cw: bool = param(True, label="Carlini–Wagner", help="Also run C&W L2 on the logits.")
    n_cw: int = param(
        50,
        low=10,
        high=1000,
        step=10,
        label="C&W test images",
        help="C&W L2 runs on the first of the test images, at every temperature (the "
        "costliest part of the default run: 50 images take about 6 s per temperature on "
        "one CPU core).",
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Input seed", help="Which test inputs.")
    pgd: PGD = nested(PGD, default=PGD(steps=40, early_stop=True), label="PGD settings")

    def check_data(self, dataset: Dataset) -> None:
        if self.target is None or self.target.arch is None:
            raise ValidationError(
                "Distillation needs a built-in architecture: train a model in the sidebar, "
                "or upload weights of a built-in architecture."
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.cw:
            out.pop("n_cw")
        return out

    def recipes(self) -> dict[float, Any]:
        """The students' recipes: the target's, distilled at each temperature."""
        assert self.target is not None
        _, recipe = self.target.training
        base = recipe.undefended()
        return {
            float(t): base.replace(method="distillation", temperature=float(t))
            for t in sorted(self.temperatures)
        }

    def work(self, dataset: Dataset) -> Work:
        """Training through the zoo: every student is the one at T = 1 scaled, so when the
        zoo lacks a student that one is trained (with its teacher, the undefended model,
        when that is missing too), else only the undefended model may be; the transfer PGD
        on the undefended model (every step); per temperature, naive and adaptive PGD, C&W
        on the first ``n_cw`` images and the success rates' passes; everyone's input
        gradients; the sanity checks' two unbounded PGD-20 runs at the top temperature."""
        assert self.target is not None and self.target.arch is not None
        arch, n = self.target.arch, min(self.n, dataset.n_test)
        recipes = list(self.recipes().values())
        at_1 = recipes[0].replace(temperature=1.0)
        missing = not all(in_zoo(arch, dataset, r) for r in recipes)
        trains_at_1 = missing and not in_zoo(arch, dataset, at_1)
        work = training_work(arch, dataset, at_1 if trains_at_1 else recipes[0].undefended())
        transfer = self.pgd.replace(early_stop=False)
        work = work + pgd_work(arch, transfer, n, (self.eps,)) + Work.of(arch, forward=2 * n)
        per_t = (
            Work.of(arch, forward=7 * n, gradient=n) + pgd_work(arch, self.pgd, n, (self.eps,)) * 2
        )
        if self.cw:
            n_cw = min(self.n_cw, n)
            per_t = per_t + cw_work(arch, CarliniWagnerL2(), n_cw) + Work.of(arch, forward=2 * n_cw)
        unbounded = PGD(steps=20, random_start=False)
        checks = pgd_work(arch, unbounded, min(200, n), (1.0,)) * 2
        return work + Work.of(arch, gradient=n) + per_t * len(recipes) + checks

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert self.target is not None and self.target.arch is not None
        arch = self.target.arch
        recipes = self.recipes()
        epochs = next(iter(recipes.values())).epochs
        n_t = len(recipes)
        attack_cost = self.pgd.steps * self.pgd.restarts * self.n / 1000
        cw_cost = 3.0 * self.n_cw / 100 if self.cw else 0.0
        # The zoo trains one student for all temperatures (the teacher is the undefended
        # model, and the student at T is the one at T = 1 scaled): the first is the cost.
        train_w = [float(epochs)] + [0.02 * epochs] * (n_t - 1)
        weights = [epochs] + train_w + [2 * attack_cost + cw_cost] * n_t + [8]
        parts = split(progress, weights)
        undefended = train_entry(
            arch, dataset, recipes[min(recipes)].undefended(), progress=parts[0]
        )
        device = model_device(undefended.model)
        idx = select_inputs(dataset, self.n, self.seed)
        x, y = dataset.x_test[idx].to(device), dataset.y_test[idx].to(device)
        goal = Goal(bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)))
        from ..defenses.training import LogitsDividedBy, input_gradient_norms

        # Black-box reference: PGD on the undefended model, transferred. It takes every
        # step (no early stop): examples that stopped at their first success on the
        # surrogate would transfer worse.
        transfer = self.pgd.replace(early_stop=False)
        surrogate = transfer.run(undefended.model, x, y, eps=self.eps, norm="linf", goal=goal)
        undef_success = fooled_rate(undefended.model, x, y, surrogate.x_adv)

        success_rows, model_rows, grad_rows = [], [], []
        g = input_gradient_norms(undefended.model, x, y)
        grad_rows.append(pd.DataFrame({"model": "undefended", "temperature": np.nan, "norm": g}))
        students: dict[float, nn.Module] = {}
        for i, (t, recipe) in enumerate(recipes.items()):
            entry = train_entry(arch, dataset, recipe, progress=parts[1 + i])
            m = entry.model
            students[t] = m
            p_naive, p_adapt, p_cw = split(parts[1 + n_t + i], [attack_cost, attack_cost, cw_cost])
            with torch.inference_mode():
                clean = float((m(x).argmax(1) == y).float().mean())
            naive = self.pgd.run(m, x, y, eps=self.eps, norm="linf", goal=goal, progress=p_naive)
            adaptive = self.pgd.run(
                LogitsDividedBy(m, t), x, y, eps=self.eps, norm="linf", goal=goal,
                progress=p_adapt,
            )  # fmt: skip
            rows = [
                (NAIVE, fooled_rate(m, x, y, naive.x_adv)),
                (ADAPTIVE, fooled_rate(m, x, y, adaptive.x_adv)),
                (
                    "Transfer from the undefended model (black-box)",
                    fooled_rate(m, x, y, surrogate.x_adv),
                ),
            ]
            if self.cw:
                n_cw = min(self.n_cw, int(y.shape[0]))
                res = attack_in_batches(
                    CarliniWagnerL2(), m, x[:n_cw], y[:n_cw], goal=goal, batch_size=512,
                    progress=p_cw,
                )  # fmt: skip
                rows.append((CW, fooled_rate(m, x[:n_cw], y[:n_cw], res.x_adv)))
            for attack, rate in rows:
                success_rows.append(
                    {
                        "temperature": t,
                        "attack": attack,
                        "success_rate": rate,
                        "clean_accuracy": clean,
                    }
                )
            g = input_gradient_norms(m, x, y)
            grad_rows.append(pd.DataFrame({"model": f"T={t:g}", "temperature": t, "norm": g}))
            model_rows.append(
                {
                    "temperature": t,
                    "clean_accuracy": clean,
                    "zero_gradients": float((g == 0).float().mean()),
                    "median_gradient_norm": float(g.median()),
                    "zoo_key": entry.key,
                    "train_seconds": float(entry.metrics["train_seconds"]),
                }
            )
        top = max(recipes)
        checks = self._sanity(students[top], top, x, y, dataset, goal, success_rows, parts[-1])
        metrics = {
            "eps": self.eps,
            "n": int(y.shape[0]),
            "top_temperature": top,
            "undefended_success": undef_success,
            "sanity_warnings": int(sum(c.status == "warn" for c in checks)),
        }
        return RunResult(
            metrics=metrics,
            tables={
                "success": pd.DataFrame(success_rows),
                "models": pd.DataFrame(model_rows),
                "grad_norms": pd.concat(grad_rows, ignore_index=True),
                "sanity": checks_table(checks),
            },
            label=f"{self.title}: {arch}, T = {', '.join(f'{t:g}' for t in recipes)} on "
            f"{dataset.name}",
        )

    def _sanity(self, model, t, x, y, dataset, goal, rows, progress) -> list[SanityCheck]:
        at_top = {r["attack"]: r["success_rate"] for r in rows if r["temperature"] == t}
        n_check = min(200, int(y.shape[0]))
        naive_p, adaptive_p = split(progress, [1, 1])
        naive = check_reaches_chance(
            model, x[:n_check], y[:n_check], dataset.num_classes, goal=goal, progress=naive_p
        )
        naive.name = f"T={t:g}, naive attack: {naive.name.lower()}"
        from ..defenses.training import LogitsDividedBy

        adaptive = check_reaches_chance(
            LogitsDividedBy(model, t), x[:n_check], y[:n_check], dataset.num_classes,
            goal=goal, progress=adaptive_p,
        )  # fmt: skip
        adaptive.name = f"T={t:g}, adaptive attack: {adaptive.name.lower()}"
        transfer = next(a for a in at_top if a.startswith("Transfer"))
        bb = check_whitebox_beats_blackbox(
            at_top[NAIVE],
            at_top[transfer],
            int(y.shape[0]),
            whitebox="naive white-box PGD",
            blackbox="a transfer attack from the undefended model",
            eps=self.eps,
        )
        bb.name = f"T={t:g}: {bb.name.lower()}"
        return [naive, bb, adaptive]
