"""The "Black-box attacks" experiment (query attacks): SimBA with the pixel and the DCT basis
(Guo et al. 2019) and ZOO (Chen et al. 2017) attack the same correctly classified test
images through a query interface that counts every query; the result is each attack's
success against the queries it spent, query counts, norms and a gallery.

The service may postprocess its answers (rounding, top-k, …) to see coarse answers stall
the attacks. The transfer matrix on the same page is :mod:`robustcore.experiments.transfer`.

``python -m robustcore blackbox --attacks simba_dct,zoo --eps 0.2 --simba-queries 1000``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import ZOO, BlackBoxAttack, Goal, QueryModel, SimBA
from ..attacks.evasion.base import AttackResult
from ..data import Dataset
from ..defenses.postprocess import OutputDefense, ReverseSigmoid, Rounding, Temperature, TopK
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import correct_inputs, successes_first
from ..evaluation.queries import success_vs_queries
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key

ATTACKS = {"simba_pixel": "SimBA (pixel basis)", "simba_dct": "SimBA (DCT basis)", "zoo": "ZOO"}
"""The query attacks the page runs: key → what the form calls it."""

SERVICES = ("none", "rounding", "top_k", "reverse_sigmoid", "temperature")
"""What the prediction service may return: plain probabilities, or an output defense's
answer (a label-only service gives SimBA and ZOO nothing to follow: see Threat models)."""

MAX_IMAGES = 2000
GALLERY_SIZE = 8


def make_attack(key: str, simba: SimBA, zoo: ZOO) -> BlackBoxAttack:
    """The attack behind ``key`` of :data:`ATTACKS`: SimBA's settings with the key's basis,
    or ZOO."""
    if key == "zoo":
        return zoo
    if key in ("simba_pixel", "simba_dct"):
        return simba.replace(basis=key.split("_")[1])
    raise ValidationError(f"Unknown attack {key!r}; expected one of {', '.join(ATTACKS)}.")


def _gallery_rows(label: str, res: AttackResult, idx: torch.Tensor, names: list[str], y):
    return [
        {
            "attack": label,
            "slot": slot,
            "true": names[int(y[i])],
            "predicted": names[int(res.pred[i])],
            "confidence": float(res.confidence[i]),
            "success": bool(res.success[i]),
            "queries": int(res.queries[i]),
            "l2": float(res.l2[i]),
            "linf": float(res.linf[i]),
        }
        for slot, i in enumerate(idx.tolist())
    ]


def query_work(model: str, n: int, max_queries: int) -> Work:
    """What a SimBA or ZOO run on ``n`` images costs its target at most: every image may
    send ``max_queries`` queries (forward passes) before it stops. Images stop earlier when
    they succeed, but how early is only known by running, so this is an upper bound."""
    return Work.of(model, forward=n * max_queries)


def selection_work(model: str, n: int, dataset: Dataset) -> Work:
    """:func:`~robustcore.evaluation.inputs.correct_inputs` looks at ``max(4n, 200)`` test
    images (more only when the model gets few of them right)."""
    return Work.of(model, forward=min(dataset.n_test, max(4 * n, 200)))


def check_query_attacks(attacks: tuple[str, ...], n: int, dataset: Dataset) -> None:
    """Refuse SimBA's DCT basis on non-image data and more images than the test split has
    (the Black-box and Query limitation experiments)."""
    if "simba_dct" in attacks and len(dataset.input_shape) != 3:
        raise ValidationError(
            f"SimBA's DCT basis needs images; {dataset.name} is {dataset.modality} data. "
            "Use SimBA with the pixel basis (one feature at a time) or ZOO."
        )
    if n > dataset.n_test:
        raise ValidationError(
            f"{dataset.name} has {dataset.n_test:,} test images; attack at most that many."
        )


class BlackBoxResult(ExperimentResult):
    """Success against queries, query counts, norms and galleries of one black-box run."""

    @property
    def n(self) -> int:
        """How many (correctly classified) test images were attacked."""
        return int(self._metric("n"))

    @property
    def clean_accuracy(self) -> float:
        """The model's accuracy on the candidate images looked at (for context)."""
        return float(self._metric("clean_accuracy"))

    @property
    def service(self) -> str:
        """What the service returned: ``none`` or the output defense's short label."""
        return str(self._metric("defense"))

    @property
    def attacks(self) -> list[str]:
        """The attacks' names (legend labels), in run order."""
        return list(self._metric("attacks", []))

    @property
    def keys(self) -> list[str]:
        """The attacks' keys (:data:`ATTACKS`), in the order of :attr:`attacks`."""
        return list(self._metric("keys", []))

    def attack_metrics(self, attack: str) -> dict[str, float]:
        """success_rate, median_queries and mean_queries (of the successful images),
        total_queries, mean_l2 and mean_linf (successful images) and seconds of one attack."""
        names = (
            "success_rate",
            "median_queries",
            "mean_queries",
            "total_queries",
            "mean_l2",
            "mean_linf",
            "seconds",
        )
        return {k: self._metric(f"{k}.{attack}") for k in names}

    def curves(self) -> pd.DataFrame:
        """Success rate within each query budget, one line (``label``) per attack."""
        return self._table("curves")

    def per_image(self) -> pd.DataFrame:
        """One row per attack and image: test index, labels, success, queries, norms."""
        return self._table("per_image")

    def summary_table(self) -> pd.DataFrame:
        """One row per attack over all images: success rate, median and largest query
        count, mean norms and seconds."""
        per = self.per_image()
        out = (
            per.groupby("attack", sort=False)
            .agg(
                success_rate=("success", "mean"),
                median_queries=("queries", "median"),
                max_queries=("queries", "max"),
                mean_l2=("l2", "mean"),
                mean_linf=("linf", "mean"),
            )
            .reset_index()
        )
        out["seconds"] = [self._metric(f"seconds.{a}") for a in out["attack"]]
        return out

    def successful_queries(self) -> dict[str, np.ndarray]:
        """Per attack: the query counts of the images it fooled."""
        per = self.per_image()
        won = per[per["success"]]
        return {a: won.loc[won["attack"] == a, "queries"].to_numpy() for a in self.attacks}

    def gallery(self, attack: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Originals, adversarial images and their table rows for one attack (by name),
        successful attacks first."""
        key = self.keys[self.attacks.index(attack)]
        gal = self._table("gallery")
        rows = gal[gal["attack"] == attack]
        return self._artifact(f"clean.{key}"), self._artifact(f"adv.{key}"), rows

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"attacks": self.summary_table()}


@register
@dataclass(frozen=True)
class BlackBox(Experiment):
    """SimBA (pixel and DCT) and ZOO through one counting query interface per attack.

    The step ε and the query budgets are the experiment's (run arguments of the attacks),
    so one declaration of SimBA serves both bases.
    """

    name = "blackbox"
    title = "Black-box attacks"
    paper = (
        "Guo et al. 2019, Simple Black-box Adversarial Attacks (SimBA); Chen et al. 2017, "
        "ZOO: Zeroth Order Optimization Based Black-box Attacks"
    )
    result_class = BlackBoxResult
    headline = "success_rate.*"

    attacks: tuple[str, ...] = param(
        tuple(ATTACKS),
        choices=tuple(ATTACKS),
        label="Attacks",
        help="simba_pixel / simba_dct: SimBA tries one random direction at a time (a pixel, "
        "or a low-frequency cosine pattern: images only) and keeps it when the true class's "
        "probability drops; zoo: ZOO estimates the gradient from pairs of queries.",
    )
    n: int = param(
        50,
        low=1,
        high=MAX_IMAGES,
        step=10,
        label="Test images",
        help="Test images attacked, chosen at random among those the model classifies "
        "correctly (an image already misclassified needs no attack).",
    )
    eps: float = param(
        0.2,
        low=0.001,
        high=10.0,
        step=0.01,
        label="SimBA step ε",
        help="Length of each SimBA step along a direction (the paper's 0.2 for images in "
        "[0, 1]). ZOO sizes its own change.",
    )
    simba_queries: int = param(
        2000,
        low=1,
        high=1_000_000,
        step=100,
        label="Max queries per image (SimBA)",
        help="Each image stops after this many queries, or earlier when it succeeds.",
    )
    zoo_queries: int = param(
        5000,
        low=1,
        high=10_000_000,
        step=1000,
        label="Max queries per image (ZOO)",
        help="Each image stops after this many queries, or earlier when it succeeds.",
    )
    target_class: int | None = param(
        None,
        low=0,
        label="Target class",
        help="Push every image toward this class (targeted attack); empty: untargeted. "
        "Images of that class are left out.",
    )
    service: str = param(
        "none",
        choices=SERVICES,
        label="The service returns",
        help="none: the model's probabilities. Otherwise an output defense the prediction "
        "service applies before answering; coarser answers (rounding, top-k) can stall "
        "attacks that read small probability changes.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Input seed", help="Which test images.")
    simba: SimBA = nested(SimBA, label="SimBA settings (Guo et al. 2019)")
    zoo: ZOO = nested(ZOO, label="ZOO settings (Chen et al. 2017)")
    rounding: Rounding = nested(Rounding, label="Service: rounding settings")
    top_k: TopK = nested(TopK, label="Service: top-k settings")
    reverse_sigmoid: ReverseSigmoid = nested(
        ReverseSigmoid, label="Service: reverse-sigmoid settings"
    )
    temperature: Temperature = nested(Temperature, label="Service: temperature settings")

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        keys = [k for k in ATTACKS if dataset.modality == "image" or k != "simba_dct"]
        return {"attacks": tuple(keys), "n": min(50, dataset.n_test)}

    def check_data(self, dataset: Dataset) -> None:
        check_query_attacks(self.attacks, self.n, dataset)
        if self.target_class is not None and self.target_class >= dataset.num_classes:
            raise ValidationError(
                f"Target class must be below {dataset.num_classes} for {dataset.name}; got "
                f"{self.target_class}."
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # Settings that do not take part in the run stay out of the key.
        if not any(k.startswith("simba") for k in self.attacks):
            for key in ("simba", "eps", "simba_queries"):
                out.pop(key)
        if "zoo" not in self.attacks:
            out.pop("zoo")
            out.pop("zoo_queries")
        for key in SERVICES[1:]:
            if key != self.service:
                out.pop(key)
        return out

    def output_defense(self) -> OutputDefense | None:
        """The service's output defense (``None`` for plain probabilities)."""
        return None if self.service == "none" else getattr(self, self.service)

    def attack(self, key: str) -> BlackBoxAttack:
        """The configured attack behind ``key``."""
        return make_attack(key, self.simba, self.zoo)

    def work(self, dataset: Dataset) -> Work:
        """Choosing the images, then each attack's queries at their upper bound: every
        image spends its whole budget (``simba_queries`` or ``zoo_queries``)."""
        key = model_key(self.target)
        work = selection_work(key, self.n, dataset)
        for attack in self.attacks:
            budget = self.zoo_queries if attack == "zoo" else self.simba_queries
            work = work + query_work(key, self.n, budget)
        return work

    def run_arguments(self, key: str) -> dict[str, Any]:
        """``eps`` and ``max_queries`` of the attack behind ``key``."""
        if key == "zoo":
            return {"max_queries": self.zoo_queries}
        return {"eps": self.eps, "max_queries": self.simba_queries}

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None
        keys = [k for k in ATTACKS if k in self.attacks]
        attacks = {k: self.attack(k) for k in keys}
        parts = split(progress, {attacks[k].label: 1.0 for k in keys})
        device = model_device(model)
        idx, pool_acc = correct_inputs(
            model, dataset, self.n, self.seed, exclude_class=self.target_class
        )
        x = dataset.x_test[idx].to(device)
        y = dataset.y_test[idx].to(device)
        goal = Goal(
            target=self.target_class,
            bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)),
        )
        names = [str(c) for c in dataset.class_names]
        defense = self.output_defense()

        metrics: dict[str, Any] = {"n": int(y.shape[0]), "clean_accuracy": pool_acc}
        per_image: list[pd.DataFrame] = []
        gallery: list[dict] = []
        artifacts: dict[str, Any] = {}
        results: dict[str, AttackResult] = {}
        for key, part in zip(keys, parts, strict=True):
            atk = attacks[key]
            name = atk.label
            api = QueryModel(model, defense=defense)
            res = atk.run(api, x, y, goal=goal, progress=part, **self.run_arguments(key))
            if not torch.equal(api.queries.cpu(), res.queries.cpu()):
                raise RuntimeError(
                    f"{name} reported other query counts than the interface counted."
                )
            results[name] = res
            succ = res.success.cpu()
            q = res.queries.cpu()
            won = q[succ].float()
            metrics[f"success_rate.{name}"] = float(succ.float().mean())
            metrics[f"median_queries.{name}"] = float(won.median()) if won.numel() else float("nan")
            metrics[f"mean_queries.{name}"] = float(won.mean()) if won.numel() else float("nan")
            metrics[f"total_queries.{name}"] = int(q.sum())
            metrics[f"mean_l2.{name}"] = float(res.l2[res.success].mean()) if won.numel() else 0.0
            metrics[f"mean_linf.{name}"] = (
                float(res.linf[res.success].mean()) if won.numel() else 0.0
            )
            metrics[f"seconds.{name}"] = float(res.seconds)
            per_image.append(
                pd.DataFrame(
                    {
                        "attack": name,
                        "test_index": idx.numpy(),
                        "true": y.cpu().numpy(),
                        "predicted": res.pred.cpu().numpy(),
                        "success": succ.numpy(),
                        "queries": q.numpy(),
                        "l2": res.l2.cpu().numpy(),
                        "linf": res.linf.cpu().numpy(),
                    }
                )
            )
            gidx = successes_first(res.success, GALLERY_SIZE)
            gallery += _gallery_rows(name, res, gidx, names, y)
            artifacts[f"clean.{key}"] = x[gidx].cpu().numpy().astype(np.float32)
            artifacts[f"adv.{key}"] = res.x_adv[gidx].cpu().numpy().astype(np.float32)

        top = max(int(r.queries.max()) for r in results.values()) if results else 1
        budgets = sorted(
            {int(round(v)) for v in np.logspace(0, np.log10(max(top, 1)), 60)} | {max(top, 1)}
        )
        curves = pd.concat(
            [
                success_vs_queries(r.success, r.queries, budgets, label=n)
                for n, r in results.items()
            ],
            ignore_index=True,
        )
        metrics["attacks"] = list(results)
        metrics["keys"] = keys
        metrics["defense"] = defense.short() if defense is not None else "none"
        metrics["target_class"] = self.target_class
        return RunResult(
            metrics=metrics,
            tables={
                "curves": curves,
                "per_image": pd.concat(per_image, ignore_index=True),
                "gallery": pd.DataFrame(gallery),
            },
            artifacts=artifacts,
        )
