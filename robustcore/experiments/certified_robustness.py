"""The "Certified robustness" experiment: randomized smoothing (Cohen, Rosenfeld & Kolter
2019) at several noise levels σ, each on a base model of the session model's architecture
and recipe trained with Gaussian noise of that σ through the zoo. Per σ it certifies the
test images (CERTIFY: ``n0`` selection and ``n`` estimation samples, the Clopper–Pearson
bound at 1 − α, the radius σ · Φ⁻¹(p_A)) and draws the certified accuracy against the L2
radius; next to it, what an attacker actually achieves: PGD-L2 on the soft smoothed
classifier (Salman et al. 2019: the log of the mean softmax over noise draws, so every step
takes the expectation over the noise) at a few radii, judged by PREDICT on the adversarial
inputs. The certificate is a lower bound on the accuracy under any attack within the
radius, so the empirical accuracy must not fall below it, up to PREDICT's abstentions and
the failure probability α of both procedures; a sanity check counts the images where it
did (a certified-correct image that PREDICT classifies wrong within its radius).

``python -m robustcore certified_robustness --sigmas 0.12,0.25,0.5 --n 1000 --images 100``
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, Goal
from ..data import Dataset
from ..defenses.smoothing import ABSTAIN, PRECISIONS, Certificate, Smoothing, certified_accuracy
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs
from ..evaluation.sanity import SanityCheck, checks_table
from ..models import train_entry
from ..models.training import TrainRecipe, predict_logits
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, in_zoo, training_work


def _key(sigma: float) -> str:
    return f"{float(sigma):g}"


class CertifiedResult(ExperimentResult):
    """Certified and empirical accuracy against the L2 radius per σ, and the sanity checks."""

    @property
    def sigmas(self) -> list[float]:
        return [float(s) for s in self.summary_table()["sigma"]]

    @property
    def radii(self) -> list[float]:
        """The radii PGD-L2 attacked at (the empirical curve's points besides 0)."""
        emp = self.empirical()
        return sorted({float(r) for r in emp["radius"] if r > 0})

    @property
    def images(self) -> int:
        return int(self._metric("images"))

    @property
    def attack_images(self) -> int:
        return int(self._metric("attack_images"))

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def n0(self) -> int:
        return int(self._metric("n0"))

    @property
    def alpha(self) -> float:
        return float(self._metric("alpha"))

    @property
    def reference_accuracy(self) -> float:
        """The session model's clean accuracy on the same test images (NaN: not measured)."""
        return float(self._metric("reference_accuracy", float("nan")))

    def summary_table(self) -> pd.DataFrame:
        """One row per σ: the base model's clean accuracy and its accuracy under noise,
        the smoothed classifier's (PREDICT) clean accuracy and abstentions, the certified
        accuracy at radius 0 and CERTIFY's abstentions, the average certified radius, the
        largest radius ``n`` samples can certify, and the base model's zoo key."""
        return self._table("summary")

    def row(self, sigma: float) -> dict[str, Any]:
        df = self.summary_table()
        return df[np.isclose(df["sigma"], sigma)].iloc[0].to_dict()

    def certificates(self) -> pd.DataFrame:
        """Per σ and test image: label, CERTIFY's class (−1: abstained), radius, p_A."""
        return self._table("certificates")

    def curve(self) -> pd.DataFrame:
        """Per σ, the certified accuracy as a step function of the radius: at each
        ``radius`` the share of images certified correct with a radius of at least it
        (``accuracy``, constant up to the next row's radius)."""
        return self._table("curve")

    def empirical(self) -> pd.DataFrame:
        """Per σ and radius (0 = clean): PREDICT's accuracy and abstentions on the PGD-L2
        examples of the first ``attack_images`` images, the certified accuracy of the same
        images at that radius, and the contradictions (certified correct, PREDICT wrong)."""
        return self._table("empirical")

    def certified_at(self, sigma: float, radius: float) -> float:
        """Certified accuracy of every certified image at ``radius``."""
        cert = self.certificates()
        c = cert[np.isclose(cert["sigma"], sigma)]
        ok = (c["pred"] == c["label"]) & (c["radius"] >= radius)
        return float(ok.mean()) if len(c) else 0.0

    def empirical_at(self, sigma: float, radius: float) -> float:
        emp = self.empirical()
        row = emp[np.isclose(emp["sigma"], sigma) & np.isclose(emp["radius"], radius)]
        return float(row["accuracy"].iloc[0])

    def sanity(self) -> list[SanityCheck]:
        return [
            SanityCheck(r.check, r.status, r.message)
            for r in self._table("sanity").itertuples(index=False)
        ]

    def failed_checks(self, sigma: float | None = None) -> list[SanityCheck]:
        """Failed checks (of one σ, or all)."""
        tag = None if sigma is None else f"σ={_key(sigma)}:"
        return [
            c for c in self.sanity() if not c.passed and (tag is None or c.name.startswith(tag))
        ]

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {
            "summary": self.summary_table(),
            "empirical": self.empirical(),
            "sanity": self._table("sanity"),
        }


@register
@dataclass(frozen=True)
class CertifiedRobustness(Experiment):
    """Randomized smoothing per σ: certify, attack the smoothed classifier, compare."""

    name = "certified_robustness"
    title = "Certified robustness"
    paper = (
        "Cohen, Rosenfeld & Kolter 2019, Certified Adversarial Robustness via Randomized "
        "Smoothing; Salman et al. 2019, Provably Robust Deep Learning via Adversarially "
        "Trained Smoothed Classifiers"
    )
    result_class = CertifiedResult
    headline = "acr.*"
    model_share = 0.05

    sigmas: tuple[float, ...] = param(
        (0.12, 0.25, 0.5),
        low=0.01,
        high=4.0,
        label="Noise levels σ",
        help="Gaussian noise levels, separated by commas. Each trains a base model with noise "
        "of that σ (the current model's architecture and recipe) and smooths it with the same "
        "σ: a larger σ certifies larger radii and costs clean accuracy.",
    )
    images: int = param(
        100,
        low=1,
        high=10_000,
        step=10,
        label="Test images",
        help="Seeded random test images to certify (the same for every σ).",
    )
    n0: int = param(
        100,
        low=1,
        high=100_000,
        step=10,
        label="Selection samples n0",
        help="Noisy copies per image that choose the class to certify.",
    )
    n: int = param(
        500,
        low=10,
        high=1_000_000,
        step=100,
        label="Estimation samples n",
        help="Noisy copies per image that CERTIFY and PREDICT count (Cohen et al.: 100,000). "
        "More certify larger radii (at most σ · Φ⁻¹(α^(1/n))); the cost grows linearly.",
    )
    alpha: float = param(
        0.001,
        low=1e-9,
        high=0.5,
        log=True,
        label="Failure probability α",
        help="The chance that a certificate or a PREDICT answer is wrong.",
    )
    attack_images: int = param(
        30,
        low=1,
        high=10_000,
        step=10,
        label="PGD test images",
        help="The first of the test images, attacked with PGD-L2 at every radius and judged "
        "by PREDICT (at most the test images).",
    )
    radii: tuple[float, ...] = param(
        (0.25, 0.5, 1.0),
        low=0.01,
        high=20.0,
        label="PGD-L2 radii",
        help="L2 budgets of the empirical attack, separated by commas.",
    )
    samples: int = param(
        8,
        low=1,
        high=256,
        step=1,
        label="Noise draws per PGD step",
        help="The attack's expectation over the noise: each step's gradient is of the mean "
        "softmax over this many noisy copies (Salman et al. 2019).",
    )
    pgd: PGD = nested(PGD, default=PGD(steps=10), label="PGD-L2 settings")
    batch_size: int = param(
        256,
        low=1,
        high=100_000,
        step=64,
        label="Batch size",
        help="Noisy copies per forward pass (speed and memory; the noise draws are the same "
        "for every batch size).",
    )
    precision: str = param(
        "float32",
        choices=PRECISIONS,
        label="Precision of the sampling passes",
        help="bfloat16 runs the sampling passes under autocast: faster on processors with "
        "bfloat16 units (see bench/certified_robustness.py), slower on others; the "
        "certificates are then about the bfloat16 model.",
    )
    seed: int = param(
        0, low=0, high=2**31 - 1, label="Seed", help="Which test images, and every noise draw."
    )

    def check(self) -> None:
        if self.attack_images > self.images:
            raise ValidationError(
                f"PGD test images ({self.attack_images}) cannot exceed the test images "
                f"({self.images}): the attacked images are the first of the certified ones."
            )

    def check_data(self, dataset: Dataset) -> None:
        if self.target is None or self.target.arch is None:
            raise ValidationError(
                "Certified robustness trains base models with Gaussian noise, so it needs a "
                "built-in architecture: train a model in the sidebar, or upload weights of a "
                "built-in architecture."
            )

    def recipes(self) -> dict[float, TrainRecipe]:
        """The base models' recipes: the target's, trained with Gaussian noise of each σ."""
        assert self.target is not None
        _, recipe = self.target.training
        return {
            float(s): recipe.replace(method="noise", noise_std=float(s))
            for s in sorted(self.sigmas)
        }

    def smoothing(self, sigma: float) -> Smoothing:
        """The smoothing settings at ``sigma``."""
        return Smoothing(
            sigma=sigma,
            n0=self.n0,
            n=self.n,
            alpha=self.alpha,
            batch_size=self.batch_size,
            samples=self.samples,
            precision=self.precision,
            seed=self.seed,
        )

    def work(self, dataset: Dataset) -> Work:
        """Training through the zoo: a base model per σ that the zoo lacks; per σ,
        CERTIFY's ``images × (n0 + n)`` noisy forward passes and the base model's clean
        pass; PGD-L2 on the first ``attack_images`` at each radius (``steps × restarts``
        input gradients of ``samples`` noisy copies each) and PREDICT's ``n`` passes per
        adversarial image; the session model's clean pass. Priced at float32 (bfloat16
        sampling runs faster on processors with bfloat16 units)."""
        assert self.target is not None and self.target.arch is not None
        arch = self.target.arch
        n_img = min(self.images, dataset.n_test)
        k = min(self.attack_images, n_img)
        work = Work.of(arch, forward=n_img)
        radii = len(self.radii)
        steps = self.pgd.steps * self.pgd.restarts
        for recipe in self.recipes().values():
            work = work + training_work(arch, dataset, recipe)
            work = work + Work.of(
                arch,
                forward=n_img * (self.n0 + self.n + 1) + k * self.n * radii,
                gradient=k * steps * self.samples * radii,
            )
        return work

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert self.target is not None and self.target.arch is not None
        arch = self.target.arch
        recipes = self.recipes()
        idx = select_inputs(dataset, self.images, self.seed)
        x, y = dataset.x_test[idx], dataset.y_test[idx]
        n_img = int(y.shape[0])
        k = min(self.attack_images, n_img)
        xa, ya = x[:k], y[:k]
        goal = Goal(bounds=dataset.bounds)
        bounds = dataset.bounds

        # Progress: training (when the zoo lacks the model), CERTIFY, then the attack.
        cert_cost = n_img * (self.n0 + self.n) / 1e4
        attack_cost = (k * self.n * len(self.radii) + 3 * k * self.pgd.steps * self.samples) / 1e4
        weights: list[float] = []
        for recipe in recipes.values():
            weights.append(0.05 if in_zoo(arch, dataset, recipe) else float(recipe.epochs))
        weights += [cert_cost, attack_cost] * len(recipes)
        parts = split(progress, weights)

        reference = float("nan")
        if model is not None:
            ref_pred = predict_logits(model, x).argmax(1)
            reference = float((ref_pred == y).double().mean())

        summary, cert_rows, curve_rows, emp_rows, checks = [], [], [], [], []
        metrics: dict[str, Any] = {}
        for i, (sigma, recipe) in enumerate(recipes.items()):
            entry = train_entry(arch, dataset, recipe, progress=parts[i])
            base = entry.model
            sm = self.smoothing(sigma)
            cert_p, attack_p = parts[len(recipes) + 2 * i], parts[len(recipes) + 2 * i + 1]
            base_pred = predict_logits(base, x).argmax(1)
            cert = sm.certify(base, x, bounds=bounds, progress=cert_p)
            noisy = float(cert.counts.gather(1, y.view(-1, 1)).sum()) / (n_img * self.n)
            clean = sm.test_counts(cert.counts)  # PREDICT on CERTIFY's estimation samples
            acr = float((cert.radius * cert.correct(y)).mean())
            summary.append(
                {
                    "sigma": sigma,
                    "base_clean_accuracy": float((base_pred == y).double().mean()),
                    "base_noisy_accuracy": noisy,
                    "smoothed_accuracy": clean.accuracy(y),
                    "predict_abstain_rate": clean.abstain_rate,
                    "certified_accuracy": float(certified_accuracy(cert, y, [0.0])[0]),
                    "certify_abstain_rate": cert.abstain_rate,
                    "acr": acr,
                    "max_radius": cert.max_radius,
                    "zoo_key": entry.key,
                    "train_seconds": float(entry.metrics.get("train_seconds", 0.0)),
                }
            )
            metrics[f"acr.{_key(sigma)}"] = acr
            metrics[f"certified.{_key(sigma)}"] = summary[-1]["certified_accuracy"]
            metrics[f"abstain.{_key(sigma)}"] = cert.abstain_rate
            cert_rows.append(
                pd.DataFrame(
                    {
                        "sigma": sigma,
                        "image": idx.numpy(),
                        "label": y.numpy(),
                        "top": cert.top.numpy(),
                        "pred": cert.pred.numpy(),
                        "radius": cert.radius.numpy(),
                        "p_lower": cert.p_lower.numpy(),
                    }
                )
            )
            curve_rows.append(_curve(sigma, cert, y))
            rows, check = self._empirical(sm, base, cert, xa, ya, clean, goal, bounds, attack_p)
            emp_rows += rows
            checks.append(check)
        metrics.update(
            {
                "images": n_img,
                "attack_images": k,
                "n": self.n,
                "n0": self.n0,
                "alpha": self.alpha,
                "sanity_warnings": int(sum(c.status == "warn" for c in checks)),
            }
        )
        if math.isfinite(reference):
            metrics["reference_accuracy"] = reference
        return RunResult(
            metrics=metrics,
            tables={
                "summary": pd.DataFrame(summary),
                "certificates": pd.concat(cert_rows, ignore_index=True),
                "curve": pd.concat(curve_rows, ignore_index=True),
                "empirical": pd.DataFrame(emp_rows),
                "sanity": checks_table(checks),
            },
            label=f"{self.title}: {arch}, σ = {', '.join(f'{s:g}' for s in recipes)}, "
            f"n = {self.n:,} on {dataset.name}",
        )

    def _empirical(
        self,
        sm: Smoothing,
        base: nn.Module,
        cert: Certificate,
        xa: torch.Tensor,
        ya: torch.Tensor,
        clean: Any,
        goal: Goal,
        bounds: Any,
        progress: ProgressFn | None,
    ) -> tuple[list[dict[str, Any]], SanityCheck]:
        """PGD-L2 on the soft smoothed classifier at each radius, judged by PREDICT; the
        check that no certified-correct image is classified wrong within its radius."""
        k = int(ya.shape[0])
        sigma = sm.sigma
        correct = cert.pred[:k] == ya.cpu()
        radius = cert.radius[:k]
        clean_pred = clean.pred[:k]
        rows = [
            {
                "sigma": sigma,
                "radius": 0.0,
                "images": k,
                "accuracy": float((clean_pred == ya).double().mean()),
                "abstain_rate": float((clean_pred == ABSTAIN).double().mean()),
                "certified_same_images": float(correct.double().mean()),
                "contradictions": int(
                    (correct & (clean_pred != ya) & (clean_pred != ABSTAIN)).sum()
                ),
            }
        ]
        soft = sm.wrap(base, bounds=bounds)
        weights = [self.pgd.steps * self.samples * 3 + self.n for _ in self.radii]
        parts = split(progress, weights)
        for r, part in zip(sorted(self.radii), parts, strict=True):
            attack_p, predict_p = split(part, [self.pgd.steps * self.samples * 3, self.n])
            x_adv = self.pgd.perturb(soft, xa, ya, eps=r, norm="l2", goal=goal, progress=attack_p)
            pred = sm.predict(base, x_adv, bounds=bounds, progress=predict_p).pred
            covered = correct & (radius >= r)
            rows.append(
                {
                    "sigma": sigma,
                    "radius": float(r),
                    "images": k,
                    "accuracy": float((pred == ya).double().mean()),
                    "abstain_rate": float((pred == ABSTAIN).double().mean()),
                    "certified_same_images": float(covered.double().mean()),
                    "contradictions": int((covered & (pred != ya) & (pred != ABSTAIN)).sum()),
                }
            )
        return rows, _check_certified_bound(sigma, rows, sm.alpha)


def _curve(sigma: float, cert: Certificate, y: torch.Tensor) -> pd.DataFrame:
    """The certified accuracy as a step function: (0, acc(0)), then at each distinct radius
    of a certified-correct image the accuracy just beyond it."""
    ok = cert.correct(y).numpy()
    radii = np.sort(cert.radius.numpy()[ok])
    n = max(1, int(y.shape[0]))
    points = [(0.0, float(ok.sum()) / n)]
    for r in np.unique(radii):
        points.append((float(r), float((radii > r).sum()) / n))
    radius, accuracy = zip(*points, strict=True)
    return pd.DataFrame({"sigma": sigma, "radius": radius, "accuracy": accuracy})


def _check_certified_bound(sigma: float, rows: list[dict[str, Any]], alpha: float) -> SanityCheck:
    """The certificate is a lower bound: a certified-correct image that PREDICT classifies
    wrong (not abstaining) within its certified radius contradicts it. Each certificate and
    each PREDICT answer is wrong with probability at most α, so up to ⌈2α · pairs⌉ such
    images are allowed before the check warns."""
    attacked = [r for r in rows if r["radius"] > 0]  # radius 0 shares CERTIFY's samples
    pairs = sum(r["images"] for r in attacked)
    found = sum(r["contradictions"] for r in attacked)
    allowed = math.ceil(2 * alpha * pairs)
    name = f"σ={_key(sigma)}: empirical accuracy at least the certified"
    below = [
        r["radius"]
        for r in attacked
        if r["accuracy"] + r["abstain_rate"] < r["certified_same_images"] - 1e-12
    ]
    if found > allowed:
        return SanityCheck(
            name,
            "warn",
            f"{found} certified-correct image{'s' * (found != 1)} classified wrong by PREDICT "
            f"within the certified radius (at most {allowed} expected at α = {alpha:g} over "
            f"{pairs} image-radius pairs): the certificate or the prediction is broken.",
        )
    note = (
        f" Empirical accuracy plus abstentions is below the certified accuracy at r = "
        f"{', '.join(f'{r:g}' for r in below)}: only PREDICT's sampling error explains it."
        if below
        else ""
    )
    return SanityCheck(
        name,
        "pass",
        f"No certified-correct image is classified wrong by PREDICT on the PGD-L2 examples "
        f"within its radius beyond what α = {alpha:g} allows ({found} of {pairs} "
        f"image-radius pairs, {allowed} allowed).{note}",
    )
