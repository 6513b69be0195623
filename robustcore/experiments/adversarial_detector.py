"""The "Adversarial detector" experiment: train a detector of adversarial examples in front
of the session model, see how well it separates clean from adversarial inputs of several
attacks and budgets, what it costs on clean data, and how the attack that knows it gets
through anyway.

1. **Training** (:mod:`robustcore.defenses.detector`): the chosen attack (PGD, FGSM or C&W)
   crafts adversarial versions of ``n_train`` training images at ``train_eps``; the
   detector (Metzen et al. 2017's MLP on the penultimate features, or an input-space
   classifier as ART's BinaryInputDetector) learns to tell them from the originals.
2. **Threshold**: set on ``n_cal`` other, clean training images so that a share ``fpr`` of
   them is flagged; the guarded model abstains above it.
3. **Detection**: on ``n`` test images, the ROC curve, AUC and TPR at 1 % and 5 % FPR
   (clean test images against the adversarial examples that fool the model), per attack
   (FGSM, PGD over the ε grid, C&W L2), including the attacks and ε the detector never saw.
4. **Abstention cost**: clean accuracy of the model and of the guarded model (an
   abstention is an error), and the trade-off of threshold against detection.
5. **Adaptive attack** (Carlini & Wagner 2017, "Adversarial Examples Are Not Easily
   Detected"): PGD on the joint system at ``train_eps``; its detection rate and its
   success (misclassified *and* not flagged) against the naive PGD's.

``python -m robustcore adversarial_detector --detector.kind features --train-eps 0.3``
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import FGSM, PGD, CarliniWagnerL2, Goal
from ..attacks.inference.metrics import auc, roc_curve, roc_table, tpr_at_fpr
from ..data import Dataset
from ..defenses.detector import (
    AdaptiveAttack,
    AdaptiveResult,
    DetectorConfig,
    GuardedModel,
    detection_rate,
    judge,
    threshold_for_fpr,
)
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs
from ..evaluation.sanity import SanityCheck, checks_table, noise_tolerance
from ..evaluation.sweeps import attack_in_batches
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .attack_work import cw_work, pgd_work
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key

ATTACKS = {"fgsm": "FGSM", "pgd": "PGD", "cw": "C&W L2"}
"""Attack name → its label in tables and charts."""
NAIVE = "Naive PGD (the classifier only)"
ADAPTIVE = "Adaptive PGD (classifier + detector)"
FPR_LEVELS = (0.01, 0.05)
"""The false-positive rates at which the TPR is reported."""
TRADEOFF_FPRS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
"""Target FPRs of the abstention-cost trade-off (the run's own ``fpr`` is added)."""
DETECTOR_PRICE = {"image": "small_cnn", "tabular": "mlp"}
"""The architecture whose measured prices stand for the input detector's (same layers)."""
BATCH = 1024
"""Inputs per attack batch."""
DEFAULT_EPS = {"image": (0.05, 0.1, 0.2, 0.3), "tabular": (0.1, 0.25, 0.5, 1.0)}
DEFAULT_TRAIN_EPS = {"image": 0.3, "tabular": 0.5}


def _share(mask: torch.Tensor) -> float:
    """The share of True in a boolean tensor, counted exactly (0 when it is empty)."""
    return int(mask.sum()) / mask.numel() if mask.numel() else 0.0


def _tpr_key(level: float) -> str:
    return f"tpr@{level * 100:g}%fpr"


class DetectorResult(ExperimentResult):
    """Detection per attack and ε, the abstention cost, the adaptive attack."""

    @property
    def kind(self) -> str:
        return str(self.params()["detector"]["kind"])

    @property
    def train_attack(self) -> str:
        return str(self._metric("train_attack"))

    @property
    def train_eps(self) -> float:
        return float(self._metric("train_eps"))

    @property
    def fpr(self) -> float:
        """The target false-positive rate the threshold was set for."""
        return float(self._metric("fpr"))

    @property
    def threshold(self) -> float:
        return float(self._metric("threshold"))

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def n_correct(self) -> int:
        """Test images the model classifies right (the naive and adaptive attacks' inputs)."""
        return int(self._metric("n_correct"))

    @property
    def clean_accuracy(self) -> float:
        """The model's accuracy on the clean test images."""
        return float(self._metric("clean_accuracy"))

    @property
    def guarded_accuracy(self) -> float:
        """The guarded model's clean accuracy (an abstention counts as an error)."""
        return float(self._metric("guarded_accuracy"))

    @property
    def clean_abstention(self) -> float:
        """Share of the clean test images the guarded model abstains on (the test FPR)."""
        return float(self._metric("clean_abstention"))

    @property
    def abstained_correct(self) -> float:
        """Share of the clean test images the model had right that the guard rejects."""
        return float(self._metric("abstained_correct"))

    @property
    def calibration_fpr(self) -> float:
        """The flagged share of the calibration images (at most :attr:`fpr`)."""
        return float(self._metric("calibration_fpr"))

    @property
    def naive_detection(self) -> float:
        return float(self._metric("naive_detection"))

    @property
    def naive_success(self) -> float:
        return float(self._metric("naive_success"))

    @property
    def adaptive_detection(self) -> float:
        return float(self._metric("adaptive_detection"))

    @property
    def adaptive_success(self) -> float:
        return float(self._metric("adaptive_success"))

    def detection(self) -> pd.DataFrame:
        """One row per attack and ε: AUC, TPR at 1 % / 5 % FPR, detection at the guard's
        threshold, the attack's success on the model, and whether the detector was
        trained on it."""
        return self._table("detection")

    def detection_at(self, attack: str, eps: float | None = None) -> pd.Series:
        """The detection row of ``attack`` ("fgsm", "pgd", "cw") at ``eps`` (C&W: none)."""
        df = self.detection()
        rows = df[df["attack"] == ATTACKS[attack]]
        if eps is not None:
            rows = rows[np.isclose(rows["eps"].astype(float), eps)]
        if rows.empty:
            raise ValidationError(f"This run has no {attack} detection at ε = {eps}.")
        return rows.iloc[0]

    def roc(self) -> pd.DataFrame:
        """ROC curves (attack, eps, fpr, tpr), one per row of :meth:`detection`."""
        return self._table("roc")

    def tradeoff(self) -> pd.DataFrame:
        """Per target FPR: the threshold, the clean test images' abstention and the
        guarded accuracy, detection of the naive and the adaptive examples."""
        return self._table("tradeoff")

    def adaptive(self) -> pd.DataFrame:
        """Naive against adaptive PGD at the training ε: fooled, detected, success."""
        return self._table("adaptive")

    def training(self) -> pd.DataFrame:
        """The detector's loss and accuracy per epoch on its training pairs."""
        return self._table("training")

    def sanity(self) -> list[SanityCheck]:
        return [
            SanityCheck(r.check, r.status, r.message)
            for r in self._table("sanity").itertuples(index=False)
        ]

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {
            "detection": self.detection(),
            "adaptive": self.adaptive(),
            "tradeoff": self.tradeoff(),
            "sanity": self._table("sanity"),
        }


@register
@dataclass(frozen=True)
class AdversarialDetector(Experiment):
    """Train a detector, measure detection per attack and ε, attack it adaptively."""

    name = "adversarial_detector"
    title = "Adversarial detector"
    paper = (
        "Metzen et al. 2017, On Detecting Adversarial Perturbations; Carlini & Wagner "
        "2017, Adversarial Examples Are Not Easily Detected: Bypassing Ten Detection Methods"
    )
    result_class = DetectorResult
    headline = "adaptive_success"

    detector: DetectorConfig = nested(DetectorConfig, label="Detector")
    train_attack: str = param(
        "pgd",
        choices=tuple(ATTACKS),
        label="Trained on",
        help="The attack whose examples the detector learns to see (on training images).",
    )
    train_eps: float = param(
        0.3,
        low=0.0,
        high=10.0,
        step=0.01,
        label="Training ε (L∞)",
        help="The budget of the training attack (FGSM, PGD), and of the adaptive attack "
        "and its naive counterpart.",
    )
    n_train: int = param(
        1000,
        low=20,
        high=50000,
        step=10,
        label="Training images",
        help="Training images attacked for the detector: each gives a clean and an "
        "adversarial example.",
    )
    n_cal: int = param(
        1000,
        low=20,
        high=50000,
        step=10,
        label="Calibration images",
        help="Other clean training images on which the threshold is set.",
    )
    fpr: float = param(
        0.05,
        low=0.001,
        high=0.5,
        step=0.001,
        label="Target false-positive rate",
        help="Share of clean inputs the guarded model may reject (abstain on).",
    )
    attacks: tuple[str, ...] = param(
        ("fgsm", "pgd", "cw"),
        choices=tuple(ATTACKS),
        label="Attacks to detect",
        help="FGSM and PGD over the ε grid, C&W L2 (no ε), on the test images.",
    )
    eps: tuple[float, ...] = param(
        (0.05, 0.1, 0.2, 0.3),
        low=0.0,
        high=10.0,
        label="ε grid (L∞)",
        help="Budgets of FGSM and PGD on the test images, separated by commas.",
    )
    n: int = param(200, low=10, high=5000, step=10, label="Test images")
    n_cw: int = param(
        50,
        low=10,
        high=1000,
        step=10,
        label="C&W test images",
        help="C&W L2 runs on the first of the test images (its costliest part).",
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        label="Input seed",
        help="Which training, calibration and test images.",
    )
    pgd: PGD = nested(PGD, default=PGD(steps=20), label="PGD settings")
    adaptive: AdaptiveAttack = nested(
        AdaptiveAttack, default=AdaptiveAttack(steps=50), label="Adaptive attack"
    )

    def check(self) -> None:
        if min(self.eps) <= 0:
            raise ValidationError(
                f"ε grid: every value must be above 0 (at ε = 0 there is nothing to detect); "
                f"got {list(self.eps)}."
            )
        if self.train_eps <= 0:
            raise ValidationError(
                "Training ε must be above 0: it is the budget of the training attack and of "
                f"the adaptive attack; got {self.train_eps}."
            )

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        modality = "image" if dataset.modality == "image" else "tabular"
        n_train = min(1000, dataset.n_train // 2)
        return {
            "eps": DEFAULT_EPS[modality],
            "train_eps": DEFAULT_TRAIN_EPS[modality],
            "n_train": n_train,
            "n_cal": min(1000, dataset.n_train - n_train),
            "n": min(200, dataset.n_test),
            "n_cw": min(50, dataset.n_test),
        }

    def check_data(self, dataset: Dataset) -> None:
        if self.n_train + self.n_cal > dataset.n_train:
            raise ValidationError(
                f"Training ({self.n_train}) and calibration ({self.n_cal}) images must come "
                f"from the {dataset.n_train} training images of {dataset.name}: lower them."
            )
        if self.detector.kind == "features" and self.target is not None:
            if self.target.arch is None or self.target.inference is not None:
                raise ValidationError(
                    "The feature detector reads the model's penultimate layer, which only "
                    "a built-in architecture without an inference-time defense has: choose "
                    "the input detector, or a built-in model."
                )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if "cw" not in self.attacks:
            out.pop("n_cw")
        return out

    def grid(self) -> list[float]:
        """The ε values FGSM and PGD are measured at: the grid and the training ε."""
        return sorted({float(e) for e in self.eps} | {float(self.train_eps)})

    def work(self, dataset: Dataset) -> Work:
        """The training attack on ``n_train`` images (PGD counted as :mod:`.attack_work`
        does); the detector's training (the feature detector: one forward pass of the
        model's body per pair, its MLP is negligible; the input detector: ``epochs``
        training steps per pair, priced as the architecture with the same layers); the
        calibration and test scores; FGSM and PGD over the grid on ``n`` images and C&W on
        ``n_cw``, each scored by the detector; the adaptive attack's steps through model
        and detector, and its judging pass."""
        m = model_key(self.target)
        n = min(self.n, dataset.n_test)
        modality = "image" if dataset.modality == "image" else "tabular"
        features = self.detector.kind == "features"
        d = m if features else DETECTOR_PRICE[modality]
        grid = self.grid()
        work = self._attack_work(m, self.train_attack, self.n_train, self.train_eps)
        if features:
            work = work + Work.of(m, forward=2 * self.n_train)
        else:
            work = work + Work.of(d, train=2 * self.n_train * self.detector.epochs)
        scored = self.n_cal + n  # clean images the detector scores
        work = work + Work.of(m, forward=n)
        for attack in self._attacks():
            for eps in grid if attack != "cw" else [None]:
                size = min(self.n_cw, n) if attack == "cw" else n
                work = work + self._attack_work(m, attack, size, eps)
                scored += size
        work = work + Work.of(d, forward=scored)
        steps = self.adaptive.steps
        work = work + Work.of(m, gradient=n * steps, forward=n)
        if not features:
            work = work + Work.of(d, gradient=n * steps, forward=n)
        return work

    def _attacks(self) -> list[str]:
        """The attacks measured (PGD always: it is the adaptive attack's naive twin)."""
        return [a for a in ATTACKS if a in self.attacks or a == "pgd"]

    def _attack_work(self, m: str, attack: str, n: int, eps: float | None) -> Work:
        if attack == "pgd":
            return pgd_work(m, self.pgd, n, [float(eps or 0.0)])
        if attack == "fgsm":
            return Work.of(m, gradient=n, forward=n)
        return cw_work(m, CarliniWagnerL2(), n)

    def _craft(
        self,
        attack: str,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float | None,
        goal: Goal,
        progress: ProgressFn | None,
    ) -> torch.Tensor:
        if attack == "cw":
            res = attack_in_batches(
                CarliniWagnerL2(), model, x, y, goal=goal, batch_size=BATCH, progress=progress
            )
        else:
            att = self.pgd if attack == "pgd" else FGSM()
            res = attack_in_batches(
                att, model, x, y, eps=eps, norm="linf", goal=goal, batch_size=BATCH,
                progress=progress,
            )  # fmt: skip
        return res.x_adv

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None
        model.eval()
        device = model_device(model)
        goal = Goal(bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)))
        n = min(self.n, dataset.n_test)
        n_cw = min(self.n_cw, n)
        grid = self.grid()
        attacks = self._attacks()
        # Progress weights: gradient steps per image of each part, roughly.
        steps = {"pgd": self.pgd.steps * self.pgd.restarts, "fgsm": 1, "cw": 500}
        w_train = steps[self.train_attack] * self.n_train
        w_fit = (
            self.detector.epochs * self.n_train * (0.05 if self.detector.kind == "features" else 2)
        )
        w_eval = sum(steps[a] * (n_cw if a == "cw" else n * len(grid)) for a in attacks)
        w_adapt = 2 * self.adaptive.steps * n
        p_craft, p_fit, p_eval, p_adapt = split(progress, [w_train, w_fit, w_eval, w_adapt])

        # 1. training pairs and the detector
        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(dataset.n_train, generator=gen)
        tr, cal = order[: self.n_train], order[self.n_train : self.n_train + self.n_cal]
        x_tr, y_tr = dataset.x_train[tr].to(device), dataset.y_train[tr].to(device)
        train_eps = None if self.train_attack == "cw" else self.train_eps
        x_tr_adv = self._craft(self.train_attack, model, x_tr, y_tr, train_eps, goal, p_craft)
        det = self.detector.fit(model, x_tr, x_tr_adv, bounds=goal.bounds, progress=p_fit)
        train_scores = det.scores(torch.cat([x_tr, x_tr_adv]))
        pair_labels = torch.cat([torch.zeros(len(tr)), torch.ones(len(tr))]).to(device)
        train_acc = _share((train_scores > 0).float() == pair_labels)
        del x_tr_adv

        # 2. the threshold, on clean calibration images
        cal_scores = det.scores(dataset.x_train[cal])
        threshold = threshold_for_fpr(cal_scores, self.fpr)
        guarded = GuardedModel(model, det, threshold)

        # 3. clean test images: accuracy, abstention
        idx = select_inputs(dataset, n, self.seed)
        x, y = dataset.x_test[idx].to(device), dataset.y_test[idx].to(device)
        with torch.inference_mode():
            pred = torch.cat([model(x[i : i + BATCH]).argmax(1) for i in range(0, n, BATCH)])
        correct = pred == y
        clean_scores = det.scores(x)
        flagged = clean_scores > threshold

        # 4. detection per attack and ε (positives: the adversarial examples that turn a
        # right answer wrong; negatives: the clean test images)
        rows, roc_frames = [], []
        naive_adv: torch.Tensor | None = None
        jobs = [(a, e) for a in attacks for e in (grid if a != "cw" else [None])]
        parts = split(p_eval, [steps[a] * (n_cw if a == "cw" else n) for a, _ in jobs])
        for (attack, eps), part in zip(jobs, parts, strict=True):
            size = n_cw if attack == "cw" else n
            xa = self._craft(attack, model, x[:size], y[:size], eps, goal, part)
            with torch.inference_mode():
                adv_pred = torch.cat(
                    [model(xa[i : i + BATCH]).argmax(1) for i in range(0, size, BATCH)]
                )
            won = correct[:size] & (adv_pred != y[:size])
            scores = det.scores(xa)
            if attack == "pgd" and math.isclose(eps or 0.0, self.train_eps):
                naive_adv = xa
            row, roc = self._detection_row(attack, eps, clean_scores, scores[won], threshold)
            base = int(correct[:size].sum())
            delta = (xa - x[:size]).flatten(1)
            row |= {
                "attack_success": float(won.sum()) / base if base else 0.0,
                "mean_linf": float(delta.abs().amax(1)[won].mean()) if bool(won.any()) else 0.0,
                "mean_l2": float(delta.norm(dim=1)[won].mean()) if bool(won.any()) else 0.0,
            }
            rows.append(row)
            if roc is not None:
                roc_frames.append(
                    roc.assign(attack=ATTACKS[attack], eps=float("nan") if eps is None else eps)
                )
        assert naive_adv is not None

        # 5. the adaptive attack against the naive one, at the training ε
        ok = correct.nonzero().flatten()
        fooled_n, flagged_n = judge(guarded, naive_adv[ok], y[ok])
        naive = AdaptiveResult(naive_adv[ok], fooled_n, flagged_n, fooled_n & ~flagged_n)
        adaptive = self._adaptive(guarded, x[ok], y[ok], goal, p_adapt)
        adapt_rows = [
            self._adaptive_row(NAIVE, naive, ok.numel()),
            self._adaptive_row(ADAPTIVE, adaptive, ok.numel()),
        ]
        with torch.inference_mode():
            naive_scores = det.scores(naive.x_adv[naive.fooled])
            adaptive_scores = det.scores(adaptive.x_adv[adaptive.fooled])

        # 6. the abstention cost against detection, over thresholds
        trade = []
        for level in sorted(set(TRADEOFF_FPRS) | {float(self.fpr)}):
            t = threshold_for_fpr(cal_scores, level)
            flag = clean_scores > t
            trade.append(
                {
                    "target_fpr": level,
                    "threshold": t,
                    "clean_abstention": _share(flag),
                    "guarded_accuracy": _share(correct & ~flag),
                    "naive_detected": detection_rate(naive_scores, t),
                    "adaptive_detected": detection_rate(adaptive_scores, t),
                    "chosen": bool(math.isclose(level, self.fpr)),
                }
            )

        checks = [self._check_adaptive(adapt_rows, ok.numel())]
        history = pd.DataFrame(det.history)
        metrics = {
            "kind": self.detector.kind,
            "train_attack": self.train_attack,
            "train_eps": float(self.train_eps),
            "fpr": float(self.fpr),
            "threshold": threshold,
            "n": n,
            "n_correct": int(ok.numel()),
            "detector_train_accuracy": train_acc,
            "calibration_fpr": detection_rate(cal_scores, threshold),
            "clean_accuracy": _share(correct),
            "guarded_accuracy": _share(correct & ~flagged),
            "clean_abstention": _share(flagged),
            "abstained_correct": float((correct & flagged).sum()) / max(1, int(correct.sum())),
            "naive_detection": adapt_rows[0]["detected"],
            "naive_success": adapt_rows[0]["success"],
            "adaptive_detection": adapt_rows[1]["detected"],
            "adaptive_success": adapt_rows[1]["success"],
            "sanity_warnings": int(sum(c.status == "warn" for c in checks)),
        }
        trained = ATTACKS[self.train_attack]
        return RunResult(
            metrics=metrics,
            tables={
                "detection": pd.DataFrame(rows),
                "roc": pd.concat(roc_frames, ignore_index=True)
                if roc_frames
                else pd.DataFrame(columns=["fpr", "tpr", "attack", "eps"]),
                "tradeoff": pd.DataFrame(trade),
                "adaptive": pd.DataFrame(adapt_rows),
                "training": history,
                "sanity": checks_table(checks),
            },
            label=f"{self.title}: {self.detector.describe()} trained on {trained}"
            + (f" at ε={self.train_eps:g}" if self.train_attack != "cw" else "")
            + f" on {dataset.name}",
        )

    def _detection_row(
        self,
        attack: str,
        eps: float | None,
        clean: torch.Tensor,
        adv: torch.Tensor,
        threshold: float,
    ) -> tuple[dict[str, Any], pd.DataFrame | None]:
        trained = attack == self.train_attack and (
            attack == "cw" or math.isclose(eps or 0.0, self.train_eps)
        )
        row: dict[str, Any] = {
            "attack": ATTACKS[attack],
            "eps": float("nan") if eps is None else float(eps),
            "trained_on": trained,
            "n_adv": int(adv.numel()),
            "n_clean": int(clean.numel()),
        }
        if adv.numel() == 0:  # the attack fooled nothing: nothing to detect
            row |= {"auc": float("nan"), "detected": float("nan")}
            row |= {_tpr_key(level): float("nan") for level in FPR_LEVELS}
            return row, None
        scores = torch.cat([clean, adv]).cpu()
        truth = torch.cat([torch.zeros(clean.numel()), torch.ones(adv.numel())]).bool()
        fpr, tpr, _ = roc_curve(scores, truth)
        row["auc"] = auc(fpr, tpr)
        for level in FPR_LEVELS:
            row[_tpr_key(level)] = tpr_at_fpr(fpr, tpr, level)
        row["detected"] = detection_rate(adv, threshold)
        return row, roc_table(scores, truth, max_points=400)

    def _adaptive(
        self,
        guarded: GuardedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        goal: Goal,
        progress: ProgressFn | None,
    ) -> AdaptiveResult:
        parts = []
        chunks = list(range(0, x.shape[0], BATCH)) or [0]
        for start, part in zip(chunks, split(progress, [1] * len(chunks)), strict=True):
            sl = slice(start, start + BATCH)
            parts.append(
                self.adaptive.run(
                    guarded, x[sl], y[sl], eps=self.train_eps, bounds=goal.bounds, progress=part
                )
            )
        if len(parts) == 1:
            return parts[0]
        return AdaptiveResult(
            x_adv=torch.cat([p.x_adv for p in parts]),
            fooled=torch.cat([p.fooled for p in parts]),
            flagged=torch.cat([p.flagged for p in parts]),
            success=torch.cat([p.success for p in parts]),
            seconds=sum(p.seconds for p in parts),
            steps=sum(p.steps for p in parts),
        )

    def _adaptive_row(self, attack: str, res: AdaptiveResult, n: int) -> dict[str, Any]:
        fooled = int(res.fooled.sum())
        return {
            "attack": attack,
            "eps": float(self.train_eps),
            "n": n,
            "fooled": fooled / n if n else 0.0,
            "detected": float((res.fooled & res.flagged).sum()) / fooled if fooled else 0.0,
            "flagged": _share(res.flagged),
            "success": _share(res.success),
        }

    def _check_adaptive(self, rows: list[dict[str, Any]], n: int) -> SanityCheck:
        """Carlini et al. (2019): an adaptive attack must do at least as well as the
        non-adaptive one, otherwise it is broken (too few steps, a bad loss)."""
        naive, adaptive = rows[0]["success"], rows[1]["success"]
        name = "Adaptive attack at least as strong as the naive one"
        tol = noise_tolerance(max(naive, adaptive), max(1, n))
        if adaptive + tol < naive:
            return SanityCheck(
                name,
                "warn",
                f"The adaptive attack gets past the guarded model on {adaptive:.1%} of the "
                f"inputs, the naive one on {naive:.1%}: the adaptive attack is broken (more "
                "steps, another loss or λ), and the detector's numbers against it are not an "
                "upper bound.",
            )
        return SanityCheck(
            name,
            "pass",
            f"The adaptive attack gets past the guarded model on {adaptive:.1%} of the inputs "
            f"the model had right, the naive one on {naive:.1%}.",
        )
