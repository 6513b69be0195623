"""The "Query limitation" experiment: black-box attacks (SimBA pixel and DCT, ZOO) against a
service with a per-client query budget and the stateful detector of Chen, Carlini & Wagner
(2020), false alarms on benign clients, and what an adaptive attacker who knows the
detector pays (accounts, query blinding).

The detector is the defense's (:mod:`robustcore.defenses.query_limit`), the attackers who
know it are the attacks' (:mod:`robustcore.attacks.evasion.adaptive`); this module
composes them into the page's measurement.

``python -m robustcore query-limitation --n 50 --adaptive.blinding 0.01``
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import ZOO, BlackBoxAttack, Goal, QueryModel, SimBA
from ..attacks.evasion.adaptive import AccountRotation, AdaptiveAttacker, BlindedQueryModel
from ..data import Dataset
from ..defenses.query_limit import BenignStreams, QueryLimit, StatefulDetector, benign_false_alarms
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import correct_inputs
from ..evaluation.queries import success_vs_queries, success_within
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .blackbox import check_query_attacks, query_work, selection_work
from .estimate import Work, model_key

ATTACK_TITLES = {"simba_pixel": "SimBA (pixel)", "simba_dct": "SimBA (DCT)", "zoo": "ZOO"}
"""The attacks the page runs: key → name in tables and charts."""

MAX_IMAGES = 1000


def _budget_grid(budget: int, points: int = 30) -> list[int]:
    grid = {int(round(v)) for v in torch.logspace(0, math.log10(max(budget, 1)), points).tolist()}
    return sorted(grid | {int(budget)})


def _summary_row(
    title: str,
    res: Any,
    budget: int,
    caught: torch.Tensor,
    resume: AccountRotation,
    rotate: AccountRotation,
    chunk: int,
) -> dict[str, Any]:
    s, q = res.success.cpu(), res.queries.cpu()
    ok = success_within(s, q, budget)
    ok_def = success_within(s, q, budget, caught_at=caught)
    detected = caught > 0
    delays = caught[detected].float()
    used_rot = rotate.accounts.cpu()
    used_res = resume.accounts.cpu()
    return {
        "attack": title,
        "n": int(s.numel()),
        "success_no_defense": float(ok.float().mean()),
        "success_before_detection": float(ok_def.float().mean()),
        "detected": float(detected.float().mean()),
        "delay_median": float(delays.median()) if delays.numel() else float("nan"),
        "delay_mean": float(delays.mean()) if delays.numel() else float("nan"),
        "delay_min": int(delays.min()) if delays.numel() else 0,
        "delay_max": int(delays.max()) if delays.numel() else 0,
        "queries_median": float(q.float().median()) if q.numel() else float("nan"),
        "accounts_resume_mean": float(used_res.float().mean()),
        "accounts_resume_max": int(used_res.max()) if used_res.numel() else 0,
        "accounts_rotate_mean": float(used_rot.float().mean()),
        "accounts_rotate_max": int(used_rot.max()) if used_rot.numel() else 0,
        "accounts_rotate_total": int(used_rot.sum()),
        "rotate_bans": int(rotate.bans.sum()),
        "per_account": int(chunk),
        "seconds": float(res.seconds),
    }


def evaluate_query_limit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: QueryLimit,
    attacks: Mapping[str, Any],
    calibration_images: torch.Tensor,
    benign_images: torch.Tensor,
    benign: BenignStreams | None = None,
    adaptive: AdaptiveAttacker | None = None,
    eps: float | None = None,
    goal: Goal | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Run black-box attacks against a service with a query budget and a stateful detector.

    Each attack runs once through a :class:`QueryModel` with the budget and three monitors:
    the detector as deployed (a client is banned at its first flag; its success counts only
    before that: :func:`~robustcore.evaluation.queries.success_within` with
    ``caught_at=api.detected_at``) and two what-if copies for the adaptive attacker
    (:class:`AccountRotation`): a new account after every ban (the paper's count of
    detections) and, in addition, proactively after ``per_account`` queries. With query
    blinding (``adaptive.blinding > 0``) each attack runs a second time with noisy queries.
    The service's budget is what ends every attack (the attacks get no ``max_queries`` of
    their own: one source of truth).

    Args:
        model: the target (logits).
        x, y: the images to attack and their labels (client ``i`` attacks image ``i``).
        config: budget and detector settings.
        attacks: name → black-box attack (``SimBA``/``ZOO`` instances); names as in
            :data:`ATTACK_TITLES` get readable titles.
        calibration_images: natural images for the threshold (the training set).
        benign_images: held-out natural images for the benign clients (the test set).
        benign: benign clients and stream length (default :class:`BenignStreams`).
        adaptive: the adaptive attacker (default :class:`AdaptiveAttacker`).
        eps: SimBA's step length (given to the attacks that take one).
        goal: the data bounds for the attacks and the blinding noise (default ``(0, 1)``);
            the attacks are untargeted.
        seed: calibration order and benign streams.
        progress: ``progress(fraction, message)``; it may raise to cancel.

    Returns:
        ``(metrics, tables)``: tables ``summary`` (one row per attack), ``curves`` (success
        against budget per attack and defense), ``per_image``, ``benign`` (per benign
        client), ``scores`` (k-NN distances of benign queries) and, with blinding,
        ``blinding``.
    """
    if not attacks:
        raise ValidationError("Choose at least one attack.")
    benign = benign or BenignStreams()
    adaptive = adaptive or AdaptiveAttacker()
    goal = goal or Goal()
    if goal.targeted:
        raise ValidationError("The query-limit measurement runs untargeted attacks.")
    bounds = goal.bounds if goal.bounds is not None else (0.0, 1.0)
    t0 = time.perf_counter()
    device = model_device(model)
    runs = [(name, False) for name in attacks]
    if adaptive.blinding > 0:
        runs = [(name, blind) for name in attacks for blind in (False, True)]
    weights = {"calibrating the detector on benign training images": 6.0, "benign clients": 2.0}
    for name, blind in runs:
        title = ATTACK_TITLES.get(name, name)
        weights[f"{title} with blinding" if blind else title] = 90.0 / len(runs)
    calibrating, benign_part, *run_parts = split(progress, weights)
    parts = dict(zip(runs, run_parts, strict=True))

    if calibrating:
        calibrating(0.0, "")
    detector = StatefulDetector.from_config(config, model, device=device)
    n_cal = min(int(config.calibration), int(calibration_images.shape[0]))
    gen = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(calibration_images.shape[0], generator=gen)[:n_cal]
    threshold = detector.calibrate(calibration_images[pick], config.fpr, seed=seed)
    cal = detector.calibration_scores
    cal_fpr = float((cal < threshold).float().mean()) if cal is not None and cal.numel() else 0.0

    if benign_part:
        benign_part(0.0, "")
    benign_table, benign_metrics, benign_scores = benign_false_alarms(
        detector, benign_images, benign, seed=seed
    )
    chunk = adaptive.chunk(config.k)
    summary, curves, per_image, blind_rows = [], [], [], []
    grid = _budget_grid(config.budget)
    for name, attack in attacks.items():
        title = ATTACK_TITLES.get(name, name)
        kwargs = {"eps": eps} if attack.budgeted else {}
        naive = detector.clone(ban=True)
        resume = AccountRotation(detector, None)
        rotate = AccountRotation(detector, chunk)
        api = QueryModel(model, budget=config.budget, monitors=[naive, resume, rotate])

        res = attack.run(api, x, y, goal=goal, progress=parts[name, False], **kwargs)
        # when the deployed detector caught each client (the what-if monitors never flag)
        caught = api.detected_at.cpu()
        s, q = res.success.cpu(), res.queries.cpu()
        summary.append(_summary_row(title, res, config.budget, caught, resume, rotate, chunk))
        for defense, caught_at in (("no defense", None), ("stateful detector", caught)):
            df = success_vs_queries(s, q, grid, caught_at=caught_at, label=title)
            curves.append(df.assign(attack=title, defense=defense))
        per_image.append(
            pd.DataFrame(
                {
                    "attack": title,
                    "image": range(int(s.numel())),
                    "label": y.cpu().numpy(),
                    "success": s.numpy(),
                    "queries": q.numpy(),
                    "detected_at": caught.numpy(),
                    "success_before_detection": success_within(
                        s, q, config.budget, caught_at=caught
                    ).numpy(),
                    "accounts_resume": resume.accounts.cpu().numpy(),
                    "accounts_rotate": rotate.accounts.cpu().numpy(),
                    "bans_rotate": rotate.bans.cpu().numpy(),
                    "l2": res.l2.cpu().numpy(),
                }
            )
        )
        if adaptive.blinding > 0:
            blind_det = detector.clone(ban=True)
            bapi = BlindedQueryModel(
                model,
                sigma=adaptive.blinding,
                seed=seed,
                bounds=bounds,
                budget=config.budget,
                monitors=[blind_det],
            )

            bres = attack.run(bapi, x, y, goal=goal, progress=parts[name, True], **kwargs)
            bs, bq = bres.success.cpu(), bres.queries.cpu()
            bc = blind_det.detected_at.cpu()
            # A blinded success must survive without the noise: re-check the clean point
            # with the undefended model (the attacker's final image is what it submits).
            with torch.inference_mode():
                pred = model(bres.x_adv.to(device)).argmax(1).cpu()
            real = bs & (pred != y.cpu())
            hit = bc[bc > 0].float()
            blind_rows.append(
                {
                    "attack": title,
                    "sigma": float(adaptive.blinding),
                    "success_no_defense": float(
                        success_within(real, bq, config.budget).float().mean()
                    ),
                    "success_before_detection": float(
                        success_within(real, bq, config.budget, caught_at=bc).float().mean()
                    ),
                    "detected": float((bc > 0).float().mean()),
                    "delay_median": float(hit.median()) if hit.numel() else float("nan"),
                }
            )
            curves.append(
                success_vs_queries(real, bq, grid, caught_at=bc, label=title).assign(
                    attack=title, defense="blinded, stateful detector"
                )
            )
    metrics: dict[str, Any] = {
        "threshold": threshold,
        "calibration_queries": int(cal.numel()) if cal is not None else 0,
        "calibration_fpr": cal_fpr,
        "target_fpr": float(config.fpr),
        "budget": int(config.budget),
        "k": int(config.k),
        "encoder": config.encoder,
        "per_account": int(chunk),
        "n": int(x.shape[0]),
        "seconds": time.perf_counter() - t0,
        **benign_metrics,
    }
    score_sample = benign_scores[:5000].numpy()
    tables = {
        "summary": pd.DataFrame(summary),
        "curves": pd.concat(curves, ignore_index=True),
        "per_image": pd.concat(per_image, ignore_index=True),
        "benign": benign_table,
        "scores": pd.DataFrame({"distance": score_sample}),
    }
    if blind_rows:
        tables["blinding"] = pd.DataFrame(blind_rows)
    return metrics, tables


@dataclass(frozen=True)
class AttackSummary:
    """One attack against the limits, as the page reports it."""

    attack: str
    n: int
    success_no_defense: float
    success_before_detection: float
    detected: float
    delay_median: float
    queries_median: float
    accounts_rotate_mean: float
    accounts_rotate_max: int
    rotate_bans: int
    per_account: int
    seconds: float

    @property
    def caught(self) -> str:
        """How many attackers were caught, and when (plain words)."""
        if not self.detected:
            return "no attacker caught"
        return (
            f"{self.detected:.0%} of the attackers caught, median at query {self.delay_median:,.0f}"
        )


class QueryLimitationResult(ExperimentResult):
    """Detection, success before detection, accounts and false alarms of one run."""

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def budget(self) -> int:
        """The service's query budget per client."""
        return int(self._metric("budget"))

    @property
    def k(self) -> int:
        return int(self._metric("k"))

    @property
    def encoder(self) -> str:
        return str(self._metric("encoder"))

    @property
    def threshold(self) -> float:
        """The detector's k-NN distance threshold (set on the benign calibration stream)."""
        return float(self._metric("threshold"))

    @property
    def per_account(self) -> int:
        """Queries per account of the account-rotating attacker."""
        return int(self._metric("per_account"))

    @property
    def target_fpr(self) -> float:
        return float(self._metric("target_fpr"))

    @property
    def calibration_fpr(self) -> float:
        """Share of the calibration stream's queries below the threshold."""
        return float(self._metric("calibration_fpr"))

    @property
    def calibration_queries(self) -> int:
        return int(self._metric("calibration_queries"))

    @property
    def benign_fpr(self) -> float:
        """Flagged share of the benign queries that had k earlier ones to compare with."""
        return float(self._metric("benign_fpr"))

    @property
    def benign_queries(self) -> int:
        return int(self._metric("benign_queries"))

    @property
    def benign_judged(self) -> int:
        return int(self._metric("benign_judged"))

    @property
    def benign_clients_caught(self) -> float:
        """Share of honest clients with at least one flagged query."""
        return float(self._metric("benign_clients_caught"))

    @property
    def attacks(self) -> list[str]:
        """The attacks' names (:data:`ATTACK_TITLES`), in run order."""
        return list(self._metric("attacks", []))

    def summary_table(self) -> pd.DataFrame:
        """One row per attack: success with and without the detector, detection delay,
        queries, accounts of the adaptive attacker, seconds."""
        return self._table("summary")

    def attack_summaries(self) -> list[AttackSummary]:
        """:meth:`summary_table` as typed rows."""
        fields = AttackSummary.__dataclass_fields__
        return [
            AttackSummary(**{k: v for k, v in row.items() if k in fields})
            for row in self.summary_table().to_dict("records")
        ]

    def curves(self) -> pd.DataFrame:
        """Success within each query budget, per attack (``attack``) and defense
        (``defense``: no defense, stateful detector, blinded)."""
        return self._table("curves")

    def per_image(self) -> pd.DataFrame:
        """One row per attack and image: success, queries, detection, accounts, L2."""
        return self._table("per_image")

    def benign_clients(self) -> pd.DataFrame:
        """One row per honest client: queries, judged, flagged, first flagged query."""
        return self._table("benign")

    def benign_distances(self) -> pd.Series:
        """The k-NN distances of (up to 5,000) judged benign queries."""
        return self._table("scores")["distance"]

    @property
    def has_blinding(self) -> bool:
        return self._has_table("blinding")

    def blinding(self) -> pd.DataFrame:
        """One row per attack run with blinded queries (empty without blinding)."""
        return self._table("blinding") if self.has_blinding else pd.DataFrame()

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        out = {"summary": self.summary_table()[CLI_COLUMNS]}
        if self.has_blinding:
            out["blinding"] = self.blinding()
        return out

    def summary(self) -> dict[str, Any]:
        keys = (
            "threshold",
            "calibration_fpr",
            "benign_queries",
            "benign_judged",
            "benign_fpr",
            "benign_clients_caught",
            "budget",
            "k",
            "n",
        )
        return {k: self._metric(k) for k in keys}


CLI_COLUMNS = [
    "attack",
    "n",
    "success_no_defense",
    "success_before_detection",
    "detected",
    "delay_median",
    "delay_max",
    "queries_median",
    "accounts_resume_mean",
    "accounts_rotate_mean",
    "accounts_rotate_max",
    "rotate_bans",
    "seconds",
]


@register
@dataclass(frozen=True)
class QueryLimitation(Experiment):
    """SimBA and ZOO against a query budget and the stateful detector, benign false alarms,
    and the adaptive attacker's accounts.

    The service's budget (``limit.budget``) is the only query budget: every attack runs
    until its image succeeds or the service's budget for that client is spent.
    """

    name = "query_limitation"
    title = "Query limitation"
    paper = "Chen, Carlini & Wagner 2020, Stateful Detection of Black-Box Adversarial Attacks"
    result_class = QueryLimitationResult
    headline = "benign_fpr"

    attacks: tuple[str, ...] = param(
        tuple(ATTACK_TITLES),
        choices=tuple(ATTACK_TITLES),
        label="Attacks",
        help="Each attack runs until success or until the query budget is spent "
        "(simba_dct needs images).",
    )
    n: int = param(
        50,
        low=1,
        high=MAX_IMAGES,
        step=5,
        label="Images attacked",
        help="Correctly classified test images, one attacker (client) each.",
    )
    eps: float = param(
        0.2,
        low=0.001,
        high=10.0,
        step=0.01,
        label="SimBA step ε",
        help="Length of each SimBA step along a direction (the paper's 0.2 for images in [0, 1]).",
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        label="Seed",
        help="Chooses the images, the calibration order and the benign streams.",
    )
    limit: QueryLimit = nested(QueryLimit, label="The service's limits")
    adaptive: AdaptiveAttacker = nested(AdaptiveAttacker, label="Adaptive attacker")
    benign: BenignStreams = nested(BenignStreams, label="Benign clients (false alarms)")
    simba: SimBA = nested(SimBA, label="SimBA settings (Guo et al. 2019)")
    zoo: ZOO = nested(ZOO, label="ZOO settings (Chen et al. 2017)")

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        keys = [k for k in ATTACK_TITLES if dataset.modality == "image" or k != "simba_dct"]
        return {"attacks": tuple(keys), "n": min(50, dataset.n_test)}

    def check_data(self, dataset: Dataset) -> None:
        check_query_attacks(self.attacks, self.n, dataset)
        if dataset.n_train <= self.limit.k:
            raise ValidationError(
                f"The calibration stream needs more than k = {self.limit.k} training images; "
                f"{dataset.name} has {dataset.n_train:,}."
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not any(k.startswith("simba") for k in self.attacks):
            out.pop("simba")
            out.pop("eps")
        if "zoo" not in self.attacks:
            out.pop("zoo")
        return out

    def work(self, dataset: Dataset) -> Work:
        """Choosing the images, then each attack at its upper bound: every image spends
        the service's whole budget (twice with query blinding, plus the check of the
        blinded results). With the ``features`` encoder the detector also passes every
        query, the calibration stream and the benign streams through the target's body
        (counted as forward passes); the k-NN distances themselves are not counted."""
        key = model_key(self.target)
        runs = len(self.attacks) * (2 if self.adaptive.blinding > 0 else 1)
        queries = query_work(key, self.n, self.limit.budget) * runs
        work = selection_work(key, self.n, dataset) + queries
        if self.adaptive.blinding > 0:  # the blinded results checked without the noise
            work = work + Work.of(key, forward=len(self.attacks) * self.n)
        if self.limit.encoder == "features":
            calibration = min(self.limit.calibration, dataset.n_train)
            benign = self.benign.clients * min(self.benign.queries, dataset.n_test)
            work = work + queries + Work.of(key, forward=calibration + benign)
        return work

    def attack_configs(self) -> dict[str, BlackBoxAttack]:
        """The attacks that run, by key, in the order of :data:`ATTACK_TITLES`."""
        out: dict[str, BlackBoxAttack] = {}
        for key in ATTACK_TITLES:
            if key in self.attacks:
                out[key] = self.zoo if key == "zoo" else self.simba.replace(basis=key[6:])
        return out

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        """Attack ``n`` correctly classified test images through the limited service."""
        assert model is not None
        device = model_device(model)
        attacks = self.attack_configs()
        idx, pool_acc = correct_inputs(model, dataset, self.n, self.seed)
        x = dataset.x_test[idx].to(device)
        y = dataset.y_test[idx].to(device)
        goal = Goal(bounds=(dataset.bounds[0].to(device), dataset.bounds[1].to(device)))
        metrics, tables = evaluate_query_limit(
            model,
            x,
            y,
            config=self.limit,
            attacks=attacks,
            calibration_images=dataset.x_train,
            benign_images=dataset.x_test,
            benign=self.benign,
            adaptive=self.adaptive,
            eps=self.eps,
            goal=goal,
            seed=self.seed,
            progress=progress,
        )
        tables["per_image"].insert(1, "test_index", torch.cat([idx] * len(attacks)).numpy())
        metrics.update(
            {
                "clean_accuracy": pool_acc,
                "attacks": [ATTACK_TITLES[k] for k in attacks],
                "keys": list(attacks),
                "dataset": dataset.name,
            }
        )
        return RunResult(metrics=metrics, tables=tables)
