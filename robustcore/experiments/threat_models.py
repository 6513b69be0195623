"""The "Threat models" experiment: one model, one budget, four attackers who know more or less.

The same images of the same model are attacked by

* **white-box**: PGD (Madry et al. 2018) with the model's own gradients, L∞ budget ε;
* **gray-box**: PGD with the same ε on a *surrogate* of another architecture trained on the
  same training data, sent to the model once (transfer; Papernot et al. 2016);
* **black-box (scores)**: SimBA-DCT (Guo et al. 2019) and ZOO (Chen et al. 2017) through
  the prediction API, at most ``query_budget`` queries per image;
* **label-only**: PGD on a surrogate trained on the labels the API returned for
  ``label_budget`` training images (Papernot et al. 2017), then transfer; those queries
  are part of its cost.

Success is always measured on images the model classified correctly, so a success means
the attack changed a right answer into a wrong one. SimBA's and ZOO's perturbations are not
confined to the L∞ ε-ball (SimBA takes steps of length ε in the chosen basis; ZOO
minimises an L2 penalty), so next to their success the table gives their L∞ and L2 norms
and the success *within the same L∞ ε*, the number that is comparable with the others.

``python -m robustcore threat-models --eps 0.3 --n 100 --simba-pixel true``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, ZOO, BlackBoxAttack, Goal, QueryModel, SimBA
from ..attacks.evasion.transfer import surrogate_entry, transfer_attack
from ..data import Dataset
from ..device import model_device
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures, predict_logits
from ..params import param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .blackbox import query_work
from .estimate import Work, model_key, training_work
from .model_extraction import student_work
from .transfer import crafting_work

AUTO = "auto"
MAX_IMAGES = 1000
GALLERY_SIZE = 6
EPS_TOLERANCE = 1e-5
"""Float slack when checking that a perturbation stays within the L∞ ε-ball."""

BLACK_BOX = {"simba": "SimBA-DCT", "simba_pixel": "SimBA-pixel", "zoo": "ZOO"}
"""The score-based black-box attacks the plan may run: key → name in tables."""

BLACK_BOX_BUDGET = {
    "simba": lambda eps: f"steps of length ε = {eps:g} along DCT directions, no L∞ bound",
    "simba_pixel": lambda eps: f"each pixel moves by ±ε = {eps:g}, within one pass",
    "zoo": lambda eps: "L2-penalised (Carlini–Wagner loss), no L∞ bound",
}

THREAT_MODELS: tuple[str, ...] = ("white-box", "gray-box", "black-box", "label-only")
"""From most to least attacker knowledge."""

KNOWLEDGE = {
    "white-box": "the model itself: architecture, weights and gradients",
    "gray-box": "the training data, not the model: it trains a surrogate of its own",
    "black-box": "only the prediction API's class probabilities, one query at a time",
    "label-only": "only the prediction API's top-1 labels; it trains a surrogate on them",
}


GALLERY_ORDER = ("white", "gray", "simba", "simba_pixel", "zoo", "label")
"""The gallery's rows, from most to least attacker knowledge."""

CLI_COLUMNS = [
    "threat_model",
    "attack",
    "success_rate",
    "success_within_eps",
    "queries_per_image",
    "seconds",
    "setup_seconds",
    "mean_linf",
    "mean_l2",
]


def select_correct(
    model: nn.Module, dataset: Dataset, n: int, seed: int
) -> tuple[torch.Tensor, float]:
    """The first ``n`` test indices, in a seeded random order, that the model classifies
    correctly, and the model's accuracy on the whole test split."""
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(dataset.n_test, generator=gen)
    pred = predict_logits(model, dataset.x_test).argmax(dim=1)
    correct = pred == dataset.y_test.cpu()
    picked = order[correct[order]][:n]
    if picked.numel() < n:
        raise ValidationError(
            f"The model classifies only {picked.numel()} test images correctly; ask for at "
            f"most that many."
        )
    return picked, float(correct.float().mean())


def _row(
    key: str,
    threat: str,
    attack: str,
    success: torch.Tensor,
    l2: torch.Tensor,
    linf: torch.Tensor,
    eps: float,
    *,
    queries_total: float,
    seconds: float,
    setup_seconds: float = 0.0,
    setup_queries: int = 0,
    budget: str,
) -> dict[str, Any]:
    s = success.detach().cpu().bool()
    l2 = l2.detach().cpu().float()
    linf = linf.detach().cpu().float()
    n = int(s.numel())
    within = s & (linf <= eps + EPS_TOLERANCE)
    return {
        "key": key,
        "threat_model": threat,
        "attack": attack,
        "knowledge": KNOWLEDGE[threat],
        "success_rate": float(s.float().mean()) if n else 0.0,
        "success_within_eps": float(within.float().mean()) if n else 0.0,
        "n": n,
        "queries_per_image": float(queries_total) / max(n, 1),
        "queries_total": float(queries_total),
        "setup_queries": int(setup_queries),
        "seconds": float(seconds),
        "setup_seconds": float(setup_seconds),
        "mean_l2": float(l2[s].mean()) if bool(s.any()) else float("nan"),
        "mean_linf": float(linf[s].mean()) if bool(s.any()) else float("nan"),
        "max_linf": float(linf[s].max()) if bool(s.any()) else float("nan"),
        "budget": budget,
    }


class ThreatModelsResult(ExperimentResult):
    """One row per attack (success, cost, norms), the explanation's numbers and a gallery."""

    @property
    def eps(self) -> float:
        return float(self._metric("eps"))

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def clean_accuracy(self) -> float:
        """The model's accuracy on the whole test split."""
        return float(self._metric("clean_accuracy"))

    @property
    def surrogate_arch(self) -> str:
        return str(self._metric("surrogate_arch"))

    @property
    def query_budget(self) -> int:
        return int(self._metric("query_budget"))

    @property
    def label_budget(self) -> int:
        return int(self._metric("label_budget"))

    @property
    def gray_surrogate_accuracy(self) -> float:
        """Test accuracy of the gray-box attacker's surrogate (trained on the data)."""
        return float(self._metric("gray.surrogate_accuracy"))

    @property
    def label_surrogate_accuracy(self) -> float:
        return float(self._metric("label.surrogate_accuracy"))

    @property
    def label_fidelity(self) -> float:
        """Agreement of the label-only surrogate with the model on the test split."""
        return float(self._metric("label.fidelity"))

    @property
    def whitebox_beats_all(self) -> bool:
        """Does white-box PGD fool at least as many images as every other attacker within ε?"""
        return bool(self._metric("whitebox_beats_all"))

    @property
    def beats_whitebox(self) -> list[str]:
        """The attacks that beat white-box PGD within the same ε (a broken evaluation)."""
        return list(self._metric("beats_whitebox", []))

    def threats(self) -> pd.DataFrame:
        """One row per attack, from most to least attacker knowledge: threat model, attack,
        success (any size and within ε), queries, seconds, norms, budget."""
        return self._table("threats")

    def row(self, threat_model: str) -> pd.Series | None:
        """The first row of one threat model (``white-box``, ``gray-box``, ``label-only``)."""
        t = self.threats()
        rows = t[t["threat_model"] == threat_model]
        return rows.iloc[0] if len(rows) else None

    def best_black_box(self) -> pd.Series | None:
        """The black-box attack with the highest success within ε, if any ran."""
        t = self.threats()
        bb = t[t["threat_model"] == "black-box"]
        return bb.loc[bb["success_within_eps"].idxmax()] if len(bb) else None

    def gallery(self) -> tuple[np.ndarray, dict[str, np.ndarray], pd.DataFrame, list[str]]:
        """The clean images, each attack's versions of them (by key), the gallery rows and
        the attack keys in display order."""
        advs = {
            name[4:]: self._artifact(name)
            for name in self.record.artifact_names
            if name.startswith("adv.")
        }
        order = [k for k in GALLERY_ORDER if k in advs]
        return self._artifact("clean"), advs, self._table("gallery"), order

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"threats": self.threats()[CLI_COLUMNS]}


@register
@dataclass(frozen=True)
class ThreatModels(Experiment):
    """One model, one budget, four threat models side by side (see the module doc).

    The surrogates are trained with the target's recipe (for an upload: the default one),
    so the gray-box attacker trains "the same way on the same data".
    """

    name = "threat_models"
    title = "Threat models"
    paper = (
        "Papernot et al. 2016, Transferability in Machine Learning; Papernot et al. 2017, "
        "Practical Black-Box Attacks against Machine Learning; Madry et al. 2018; "
        "Guo et al. 2019 (SimBA); Chen et al. 2017 (ZOO)"
    )
    result_class = ThreatModelsResult
    headline = "success.white"

    eps: float = param(
        0.2,
        low=0.01,
        high=1.0,
        step=0.01,
        label="ε (L∞ budget)",
        help="How far each pixel may move, for PGD and the transfer attacks; also SimBA's "
        "step length. 0.3 is the usual MNIST budget, 0.2 separates the threat models more.",
    )
    n: int = param(
        30,
        low=10,
        high=MAX_IMAGES,
        step=10,
        label="Test images",
        help="Images attacked (all classified correctly by the model before the attack).",
    )
    pgd_steps: int = param(
        20, low=1, high=200, step=1, label="PGD steps", help="Gradient steps of every PGD attack."
    )
    surrogate_arch: str = param(
        AUTO,
        choices=(AUTO, *ARCHITECTURES),
        label="Surrogate architecture",
        help="The attacker's own network (gray box and label-only). auto: LeNet-5, or "
        "another cheap architecture when the model is a LeNet-5.",
    )
    query_budget: int = param(
        1000,
        low=10,
        high=50_000,
        step=100,
        label="Query budget per image (black box)",
        help="The most queries SimBA and ZOO may send for each image.",
    )
    simba: bool = param(True, label="SimBA-DCT", help="Run SimBA with the DCT basis.")
    simba_pixel: bool = param(
        False,
        label="SimBA-pixel",
        help="Also run SimBA with the pixel basis: each pixel moves at most once by ε, so "
        "(within one pass over the pixels) it stays inside the L∞ ε-ball like PGD.",
    )
    zoo: bool = param(True, label="ZOO", help="Run ZOO (coordinate-wise finite differences).")
    label_budget: int = param(
        1000,
        low=10,
        high=100_000,
        step=100,
        label="Label queries for the surrogate",
        help="Training images the label-only attacker sends to the API; it trains its "
        "surrogate on the labels that come back.",
    )
    label_epochs: int = param(
        20,
        low=1,
        high=200,
        step=1,
        label="Label surrogate epochs",
        help="Training passes over the queried images (few images need more passes).",
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        step=1,
        label="Seed",
        help="Chooses the images, PGD's random starts, SimBA's and ZOO's random orders and "
        "the label-only attacker's queries.",
    )

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        image = len(dataset.input_shape) == 3
        return {
            "n": min(30, dataset.n_test),
            "label_budget": min(1000, dataset.n_train),
            "simba": image,
            "simba_pixel": not image,
        }

    def check_data(self, dataset: Dataset) -> None:
        self.surrogate(dataset)
        if self.simba and len(dataset.input_shape) != 3:
            raise ValidationError(
                f"SimBA-DCT needs images; {dataset.name} is {dataset.modality} data. Untick "
                "SimBA-DCT and use SimBA-pixel (one feature at a time) instead."
            )
        if self.n > dataset.n_test:
            raise ValidationError(
                f"{dataset.name} has {dataset.n_test:,} test images; choose at most that many."
            )
        if self.label_budget > dataset.n_train:
            raise ValidationError(
                f"The label-only attacker can query at most the {dataset.n_train:,} training "
                f"images of {dataset.name}; got a budget of {self.label_budget:,}."
            )

    def surrogate(self, dataset: Dataset) -> str:
        """The surrogate architecture: the choice, or for ``auto`` a cheap one other than
        the target's (LeNet-5, then a small CNN, an MLP, logistic regression)."""
        allowed = compatible_architectures(dataset.modality, dataset.input_shape)
        if self.surrogate_arch != AUTO:
            if self.surrogate_arch not in allowed:
                raise ValidationError(
                    f"Surrogate architecture {self.surrogate_arch!r} does not fit "
                    f"{dataset.name}; choose one of {', '.join(allowed)}."
                )
            return self.surrogate_arch
        target_arch = self.target.arch if self.target is not None else None
        for a in ("lenet5", "small_cnn", "mlp", "logreg"):
            if a in allowed and a != target_arch:
                return a
        return allowed[0]

    def surrogate_recipe(self) -> TrainRecipe:
        """The surrogates' recipe: the target's own (for an upload: the default)."""
        return self.target.training[1] if self.target is not None else TrainRecipe()

    def pgd(self) -> PGD:
        """The PGD of the white-box, gray-box and label-only attackers (budget: ε, L∞)."""
        return PGD(steps=self.pgd_steps, seed=self.seed)

    def black_box_attacks(self) -> dict[str, BlackBoxAttack]:
        """The score-based attacks that run, by key (their budget: ε, ``query_budget``)."""
        out: dict[str, BlackBoxAttack] = {}
        if self.simba:
            out["simba"] = SimBA(basis="dct", seed=self.seed)
        if self.simba_pixel:
            out["simba_pixel"] = SimBA(basis="pixel", seed=self.seed)
        if self.zoo:
            out["zoo"] = ZOO(seed=self.seed)
        return out

    def work(self, dataset: Dataset) -> Work:
        """Scoring the test split; white-box PGD; the gray-box surrogate (through the zoo)
        and its transfer; SimBA and ZOO at their upper bound (every image spends the whole
        ``query_budget``); the label-only surrogate (its labels, its training, which is
        always counted: its zoo key depends on the answers) and its transfer."""
        key, sur, recipe = model_key(self.target), self.surrogate(dataset), self.surrogate_recipe()
        n, pgd, t = self.n, self.pgd(), self.target
        # A transfer: the target's clean and adversarial labels, crafting on the surrogate.
        transfer = Work.of(key, forward=2 * n) + crafting_work(pgd, sur, n)
        work = Work.of(key, forward=dataset.n_test) + crafting_work(pgd, key, n) + transfer
        if t is None or (sur, recipe) != (t.arch, t.recipe):  # else it is the target itself
            work = work + training_work(sur, dataset, recipe)
        for _ in self.black_box_attacks():
            work = work + query_work(key, n, self.query_budget)
        labels = Work.of(key, forward=dataset.n_test + self.label_budget)
        student = student_work(sur, self.label_epochs, self.label_budget, dataset)
        return work + labels + student + transfer

    def _weights(self) -> dict[str, float]:
        return {
            "choosing images the model classifies correctly": 0.02,
            "white-box PGD": 0.08,
            "training the gray-box surrogate": 0.12,
            "gray-box transfer": 0.05,
            "SimBA-DCT": 0.3 if self.simba else 0.0,
            "SimBA-pixel": 0.3 if self.simba_pixel else 0.0,
            "ZOO": 0.3 if self.zoo else 0.0,
            "label-only surrogate": 0.13,
        }

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        """Attack ``model`` under each threat model with this budget (see the module doc).

        Tables ``threats`` (one row per attack, with success, cost and norms) and
        ``gallery``; metrics per attack; artifacts ``clean`` and ``adv.<key>``.
        """
        assert model is not None
        parts = dict(zip(self._weights(), split(progress, self._weights()), strict=True))
        sur_arch = self.surrogate(dataset)
        recipe = self.surrogate_recipe()
        pgd = self.pgd()
        device = model_device(model)
        goal = Goal(bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)))
        eps = float(self.eps)

        select = parts["choosing images the model classifies correctly"]
        if select:
            select(0.0, "choosing images the model classifies correctly")
        idx, clean_acc = select_correct(model, dataset, self.n, self.seed)
        x = dataset.x_test[idx].to(device)
        y = dataset.y_test[idx].to(device)
        n = int(y.shape[0])
        rows: list[dict[str, Any]] = []
        advs: dict[str, torch.Tensor] = {}
        preds: dict[str, torch.Tensor] = {}

        # White box: PGD with the model's gradients.
        white = pgd.run(
            model, x, y, eps=eps, norm="linf", goal=goal, progress=parts["white-box PGD"]
        )
        rows.append(
            _row(
                "white",
                "white-box",
                f"PGD-{pgd.steps}",
                white.success,
                white.l2,
                white.linf,
                eps,
                queries_total=0,
                seconds=white.seconds,
                budget=f"L∞ ε = {eps:g}, {pgd.steps} gradient steps",
            )
        )
        advs["white"], preds["white"] = white.x_adv, white.pred

        # Gray box: a surrogate trained on the same data, then transfer.
        entry = surrogate_entry(
            dataset,
            sur_arch,
            recipe,
            source="data",
            progress=parts["training the gray-box surrogate"],
        )
        gray = transfer_attack(
            entry,
            model,
            x,
            y,
            pgd,
            eps=eps,
            norm="linf",
            goal=goal,
            progress=parts["gray-box transfer"],
        )
        rows.append(
            _row(
                "gray",
                "gray-box",
                f"transfer from {sur_arch} (same data)",
                gray.target_success,
                gray.l2,
                gray.linf,
                eps,
                queries_total=float(gray.target_queries.sum()),
                seconds=gray.seconds,
                setup_seconds=float(entry.metrics.get("train_seconds", 0.0)),
                budget=f"L∞ ε = {eps:g}; 1 query per image to check",
            )
        )
        advs["gray"], preds["gray"] = gray.x_adv, gray.target_pred
        metrics: dict[str, Any] = {"gray.surrogate_accuracy": float(entry.metrics["test_acc"])}

        # Black box with scores: SimBA-DCT and ZOO through the query interface.
        for key, atk in self.black_box_attacks().items():
            title = BLACK_BOX[key]
            api = QueryModel(model, output="probs")
            res = atk.run(
                api,
                x,
                y,
                eps=eps if atk.budgeted else None,
                max_queries=self.query_budget,
                goal=goal,
                progress=parts[title],
            )
            used = int(api.queries.sum())
            rows.append(
                _row(
                    key,
                    "black-box",
                    title,
                    res.success,
                    res.l2,
                    res.linf,
                    eps,
                    queries_total=used,
                    seconds=res.seconds,
                    budget=f"≤ {self.query_budget:,} queries per image; "
                    + BLACK_BOX_BUDGET[key](eps),
                )
            )
            advs[key], preds[key] = res.x_adv, res.pred

        # Label only: a surrogate trained on the API's labels, then transfer.
        lrec = recipe.replace(epochs=self.label_epochs)
        label_api = QueryModel(model, output="labels")
        lentry = surrogate_entry(
            dataset,
            sur_arch,
            lrec,
            source="labels",
            target=label_api,
            budget=self.label_budget,
            seed=self.seed,
            progress=parts["label-only surrogate"],
        )
        setup_q = int(label_api.queries.sum())
        lres = transfer_attack(lentry, model, x, y, pgd, eps=eps, norm="linf", goal=goal)
        rows.append(
            _row(
                "label",
                "label-only",
                f"transfer from {sur_arch} ({setup_q:,} labels)",
                lres.target_success,
                lres.l2,
                lres.linf,
                eps,
                queries_total=float(lres.target_queries.sum()) + setup_q,
                seconds=lres.seconds,
                setup_seconds=float(lentry.metrics.get("train_seconds", 0.0)),
                setup_queries=setup_q,
                budget=f"L∞ ε = {eps:g}; {setup_q:,} label queries to train + 1 per image",
            )
        )
        advs["label"], preds["label"] = lres.x_adv, lres.target_pred
        metrics.update(
            {
                "label.surrogate_accuracy": float(lentry.metrics["test_acc"]),
                "label.fidelity": float(lentry.metrics.get("fidelity", float("nan"))),
                "label.setup_queries": setup_q,
            }
        )

        table = pd.DataFrame(rows)
        table["cost_seconds"] = table["seconds"] + table["setup_seconds"]
        for r in rows:
            k = r["key"]
            metrics[f"success.{k}"] = r["success_rate"]
            metrics[f"success_within_eps.{k}"] = r["success_within_eps"]
            metrics[f"queries_per_image.{k}"] = r["queries_per_image"]
        white_rate = rows[0]["success_rate"]
        beaten = [r["attack"] for r in rows[1:] if r["success_within_eps"] > white_rate + 1e-9]
        metrics.update(
            {
                "eps": eps,
                "n": n,
                "clean_accuracy": clean_acc,
                "surrogate_arch": sur_arch,
                "query_budget": int(self.query_budget),
                "label_budget": int(self.label_budget),
                "whitebox_beats_all": not beaten,
                "beats_whitebox": beaten,
            }
        )

        # A small gallery: the same images under every attack.
        g = torch.arange(min(GALLERY_SIZE, n))
        names = [str(c) for c in dataset.class_names]
        artifacts: dict[str, Any] = {"clean": x[g].cpu().numpy().astype(np.float32)}
        gallery = []
        for key, adv in advs.items():
            artifacts[f"adv.{key}"] = adv[g].detach().cpu().numpy().astype(np.float32)
            for j in g.tolist():
                gallery.append(
                    {
                        "attack": key,
                        "slot": j,
                        "true": names[int(y[j])],
                        "predicted": names[int(preds[key][j])],
                        "fooled": int(preds[key][j]) != int(y[j]),
                    }
                )
        return RunResult(
            metrics=metrics,
            tables={"threats": table, "gallery": pd.DataFrame(gallery)},
            artifacts=artifacts,
        )
