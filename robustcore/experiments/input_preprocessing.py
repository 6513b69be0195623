"""The "Input preprocessing" experiment: put the model behind input transforms (bit depth,
median filter, Gaussian blur, JPEG, a random transform; Xu et al. 2018, Guo et al. 2018,
Xie et al. 2018) and show what they buy.

* **Clean-accuracy cost** of each transform alone and of the whole chain.
* **Naive against adaptive attacks**, accuracy against ε on one chart: PGD with the
  gradients as written (rounding has none: the naive attack stalls, an apparent
  robustness), PGD with BPDA (Athalye et al. 2018: a differentiable approximation on the
  backward pass) and, for a random transform, BPDA with EOT (the gradient of the average
  over draws), next to PGD on the undefended model and PGD transferred from it.
* **Feature squeezing as a detector** (Xu et al. 2018) on the undefended model: ROC of
  the squeezing score for the naive attacker's PGD and C&W examples, the detection rate
  (TPR) at 1 % and 5 % FPR with a threshold set on held-out clean images, and the adaptive
  attacker of He et al. (2017), who fools the model and stays under the threshold: its
  detection rate and success.
* **Sanity checks** (Carlini et al. 2019), run without being asked: the naive unbounded
  attack does not reach chance and the transfer attack beats it (gradient masking), the
  adaptive unbounded attack does reach chance, accuracy falls as ε grows.

``python -m robustcore input_preprocessing --defense.bits 1 --defense.median 2 --eps 0,0.1,0.2,0.3``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.evasion import PGD, CarliniWagnerL2, Goal
from ..data import Dataset
from ..defenses.preprocessing import Preprocessing
from ..defenses.squeezing import (
    AdaptiveSqueezing,
    FeatureSqueezing,
    SqueezingDetector,
    detection_metrics,
    detection_roc,
)
from ..device import model_device
from ..errors import ValidationError
from ..evaluation.inputs import select_inputs
from ..evaluation.sanity import (
    SanityCheck,
    check_monotone,
    check_reaches_chance,
    check_whitebox_beats_blackbox,
    checks_table,
)
from ..evaluation.sweeps import attack_in_batches, check_eps_values
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .attack_work import cw_work, pgd_work
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key, target_work

UNDEFENDED = "PGD on the undefended model"
NAIVE = "Naive PGD (exact gradients)"
BPDA = "BPDA PGD (adaptive)"
EOT = "BPDA + EOT PGD (adaptive)"
TRANSFER = "PGD transferred from the undefended model"
ATTACK_ORDER = (UNDEFENDED, NAIVE, BPDA, EOT, TRANSFER)

DETECT_PGD = "PGD (naive attacker)"
DETECT_CW = "C&W L2 (naive attacker)"
DETECT_ADAPTIVE = "Adaptive C&W (He et al. 2017)"

CHAIN_OVERHEAD = 1.3
"""The transforms' share on top of the model's own cost per forward or gradient, as
measured on mnist5k with small_cnn (bit depth + 2×2 median: 1.26× a gradient, 1.33× with
BPDA; a larger model pays relatively less)."""
CHECK_STEPS = 20
"""Steps of the sanity checks' unbounded PGD."""
CHECK_N = 200
"""Images the sanity checks' unbounded attacks use at most."""


class PreprocessingResult(ExperimentResult):
    """Clean-accuracy cost, accuracy against ε per attack, feature-squeezing detection and
    the sanity checks of one preprocessing defense."""

    @property
    def n(self) -> int:
        return int(self._metric("n"))

    @property
    def num_classes(self) -> int:
        return int(self._metric("num_classes"))

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    @property
    def eps_max(self) -> float:
        return float(self._metric("eps_max"))

    @property
    def defense(self) -> str:
        """The transforms in a few words (e.g. ``1-bit depth + 2×2 median``)."""
        return str(self._metric("defense"))

    @property
    def random(self) -> bool:
        """Does the chain end with a random transform (so EOT was run)?"""
        return bool(self._metric("random"))

    @property
    def eot_samples(self) -> int:
        return int(self._metric("eot_samples", 0))

    @property
    def undefended_clean(self) -> float:
        return float(self._metric("undefended_clean"))

    @property
    def defended_clean(self) -> float:
        return float(self._metric("defended_clean"))

    def clean(self) -> pd.DataFrame:
        """One row per transform alone, the whole chain and the undefended model: clean
        accuracy and its cost (the drop from the undefended model's)."""
        return self._table("clean")

    def sweep(self) -> pd.DataFrame:
        """One row per attack and ε: ``accuracy`` of the defended model (the undefended
        one for its own line) on the attack's examples, ``n``."""
        return self._table("sweep")

    def attacks(self) -> list[str]:
        return list(dict.fromkeys(self.sweep()["attack"]))

    def accuracy_at(self, attack: str, eps: float | None = None) -> float:
        """Accuracy under ``attack`` at ``eps`` (default: the largest ε)."""
        eps = self.eps_max if eps is None else eps
        df = self.sweep()
        row = df[(df["attack"] == attack) & ((df["eps"] - eps).abs() < 1e-9)]
        if row.empty:
            raise ValidationError(f"No {attack!r} at ε={eps:g} in this run.")
        return float(row["accuracy"].iloc[0])

    @property
    def adaptive_attack(self) -> str:
        """The strongest adaptive line: EOT for a random chain, else BPDA."""
        return EOT if self.random else BPDA

    # feature squeezing
    @property
    def squeezing(self) -> bool:
        return self._has_table("detection")

    @property
    def squeezers(self) -> str:
        return str(self._metric("squeezers", ""))

    @property
    def threshold(self) -> float:
        return float(self._metric("threshold"))

    @property
    def target_fpr(self) -> float:
        return float(self._metric("target_fpr"))

    @property
    def clean_fpr(self) -> float:
        """Share of the clean evaluation images the threshold flags (measured)."""
        return float(self._metric("clean_fpr"))

    @property
    def n_calibration(self) -> int:
        return int(self._metric("n_calibration"))

    def detection(self) -> pd.DataFrame:
        """One row per attack on the undefended model: adversarial examples, AUC, TPR at 1 %
        and 5 % FPR, the detection rate at the threshold and the success (fooled and not
        flagged, of the images attacked), mean L2."""
        return self._table("detection")

    def detection_of(self, attack: str, column: str = "detection_rate") -> float:
        df = self.detection()
        return float(df.loc[df["attack"] == attack, column].iloc[0])

    def roc(self) -> pd.DataFrame:
        """The ROC curve (``attack``, ``fpr``, ``tpr``) of each attack's examples against the
        clean images."""
        return self._table("roc")

    # sanity checks
    def sanity(self) -> list[SanityCheck]:
        return [
            SanityCheck(r.check, r.status, r.message)
            for r in self._table("sanity").itertuples(index=False)
        ]

    @property
    def masked(self) -> bool:
        """Did a check flag the naive attack (gradient masking)?"""
        return any(c.status == "warn" for c in self.failed_checks(NAIVE))

    def failed_checks(self, attack: str) -> list[SanityCheck]:
        """The failed checks that put ``attack``'s accuracy in doubt."""
        key = {NAIVE: "naive", BPDA: "adaptive", EOT: "adaptive"}.get(attack)
        if key is None:
            return []
        return [
            c for c in self.sanity() if not c.passed and (key in c.name.lower() or attack in c.name)
        ]

    def verdict(self) -> tuple[str, str]:
        """(level, Markdown) of what the run says about the defense (``error`` when a check
        flags the naive attack's robustness as gradient masking)."""
        top = self.eps_max
        naive = self.accuracy_at(NAIVE)
        adaptive = self.accuracy_at(self.adaptive_attack)
        undefended = self.accuracy_at(UNDEFENDED)
        how = "BPDA with EOT" if self.random else "BPDA"
        if self.masked:
            text = (
                "**Verdict: the naive attack's robustness is gradient masking.** "
                f"Behind {self.defense}, naive PGD leaves {naive:.0%} accuracy at ε={top:g}, and "
                "the sanity checks below flag it: the transforms' gradients are zero or "
                f"useless, not the model robust. The adaptive attack ({how}) leaves "
                f"{adaptive:.0%} (the undefended model: {undefended:.0%}); that number, not the "
                "naive one, is what the defense is worth, and it is only an upper bound: a "
                "stronger adaptive attack may go lower."
            )
            return "error", text
        if adaptive > naive + 0.05:
            return "warning", (
                f"No check flags the naive attack, but the adaptive attack ({how}, {adaptive:.0%}"
                f") is weaker than it ({naive:.0%}) at ε={top:g}: report the lower of the two."
            )
        return "success", (
            f"No sanity check flags the naive attack behind {self.defense}: its gradients are "
            f"usable here. The adaptive attack ({how}) leaves {adaptive:.0%} accuracy at "
            f"ε={top:g}, the naive one {naive:.0%}, the undefended model {undefended:.0%}."
        )

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        out = {"clean": self.clean(), "sweep": self.sweep()}
        if self.squeezing:
            out["detection"] = self.detection()
        out["sanity"] = self._table("sanity")
        return out


@register
@dataclass(frozen=True)
class InputPreprocessing(Experiment):
    """Put the model behind input transforms; attack naively and adaptively; detect with
    feature squeezing and attack the detector; check the evaluation."""

    name = "input_preprocessing"
    title = "Input preprocessing"
    paper = (
        "Xu et al. 2018, Feature Squeezing (NDSS); Guo et al. 2018, Countering Adversarial "
        "Images using Input Transformations; Athalye et al. 2018, Obfuscated Gradients Give "
        "a False Sense of Security; He et al. 2017, Ensembles of Weak Defenses are not Strong"
    )
    result_class = PreprocessingResult
    headline = "sanity_warnings"
    needs_model = False  # the page's model is resolved here without its sidebar defense
    layout = 1

    defense: Preprocessing = nested(
        Preprocessing, default=Preprocessing(bits=1, median=2), label="Transforms"
    )
    eps: tuple[float, ...] = param(
        (0.0, 0.1, 0.2, 0.3),
        low=0.0,
        high=10.0,
        label="ε grid (L∞)",
        help="Budgets the PGD attacks are run at, separated by commas.",
    )
    n: int = param(
        200, low=10, high=5000, step=10, label="Test images", help="Random test images attacked."
    )
    eot_samples: int = param(
        8,
        low=2,
        high=64,
        step=1,
        label="EOT draws",
        help="Draws of the random transform each EOT step averages over (only with a "
        "random transform; each costs a forward and backward pass).",
    )
    squeezing: bool = param(
        True,
        label="Feature-squeezing detector",
        help="Also detect the naive attacker's examples with feature squeezing and run the "
        "adaptive attacker against it.",
    )
    squeeze: FeatureSqueezing = nested(
        FeatureSqueezing, default=FeatureSqueezing(), label="Feature squeezing"
    )
    n_calibration: int = param(
        500,
        low=20,
        high=5000,
        step=10,
        label="Calibration images",
        help="Clean held-out images the threshold is set on (test images outside the "
        "evaluation, then training images when there are too few).",
    )
    n_cw: int = param(
        50,
        low=10,
        high=1000,
        step=10,
        label="C&W images",
        help="C&W L2 (the naive attacker) runs on the first of the test images.",
    )
    n_adaptive: int = param(
        50,
        low=10,
        high=1000,
        step=10,
        label="Adaptive-attack images",
        help="The adaptive attacker (He et al. 2017) runs on the first of the test images "
        "the model classifies correctly (the costliest part of the run).",
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Input seed", help="Which test inputs.")
    pgd: PGD = nested(PGD, default=PGD(steps=40, early_stop=True), label="PGD settings")
    adaptive: AdaptiveSqueezing = nested(AdaptiveSqueezing, label="Adaptive attacker")

    def check(self) -> None:
        check_eps_values(self.eps)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.defense.is_random:
            out.pop("eot_samples")
        if not self.squeezing:
            for k in ("squeeze", "n_calibration", "n_cw", "n_adaptive", "adaptive"):
                out.pop(k)
        return out

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        if dataset.modality == "image":
            return {}
        # Standardised features: a median filter has no meaning, and the budgets are larger.
        return {
            "defense": {"bits": 2, "median": 0},
            "squeeze": {"bits": 2, "median": 0},
            "eps": (0.0, 0.25, 0.5, 1.0),
        }

    def check_data(self, dataset: Dataset) -> None:
        self.defense.check_modality(dataset.modality)
        if self.squeezing and dataset.modality != "image" and self.squeeze.median:
            raise ValidationError(
                "The median squeezer works on images only; on tabular data set its window "
                "to 0 and squeeze with the bit depth."
            )

    def _pgd_for(self, line: str) -> PGD:
        """The PGD of a line. Against a random chain every step is taken (no early stop):
        an input that fools one draw, or the average of the EOT draws, at its first
        success is fooled by a fresh draw only about half the time."""
        if line != UNDEFENDED and self.defense.is_random:
            return self.pgd.replace(early_stop=False)
        return self.pgd

    def _target_key(self) -> str:
        return model_key(self.target.base if self.target is not None else None)

    def work(self, dataset: Dataset) -> Work:
        """Training the target when the zoo lacks it; clean accuracy per transform; PGD at
        every ε on the undefended model, naive (it stalls: every step counted), with BPDA
        and with EOT (× draws); the judging passes; the two unbounded sanity-check attacks;
        feature squeezing (scores on the calibration, clean and adversarial images, C&W
        and the adaptive attack on its three views). The transforms are counted at
        :data:`CHAIN_OVERHEAD` of the model's cost."""
        key = self._target_key()
        n = min(self.n, dataset.n_test)
        eps = check_eps_values(self.eps)
        k = len(self.defense.transforms())
        work = target_work(self.target.base if self.target is not None else None, dataset)
        work = work + Work.of(key, forward=n * (k + 2))
        work = work + pgd_work(key, self.pgd, n, eps)
        adaptive = self._pgd_for(BPDA)
        defended = pgd_work(key, self.pgd.replace(early_stop=False), n, eps)
        defended = defended + pgd_work(key, adaptive, n, eps)
        if self.defense.is_random:
            defended = defended + pgd_work(key, adaptive, n, eps) * self.eot_samples
        judges = Work.of(key, forward=n * len(eps) * (4 if self.defense.is_random else 3))
        n_check = min(CHECK_N, n)
        check = pgd_work(key, PGD(steps=CHECK_STEPS, random_start=False), n_check, (1.0,))
        checks = check + check * (self.eot_samples if self.defense.is_random else 1)
        work = work + (defended + judges + checks) * CHAIN_OVERHEAD
        if self.squeezing:
            views = 1 + len(self.squeeze.squeezers())
            n_cal = self.n_calibration
            n_cw, n_ad = min(self.n_cw, n), min(self.n_adaptive, n)
            scores = Work.of(key, forward=views * (n_cal + 2 * n + n_cw + n_ad))
            cw = cw_work(key, CarliniWagnerL2(), n_cw)
            a = self.adaptive
            adaptive = Work.of(
                key, gradient=n_ad * a.binary_search_steps * a.max_iter * views, forward=n
            )
            work = work + scores + cw + adaptive
        return work

    # -- the run --------------------------------------------------------------------------

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        if self.target is None:
            raise ValidationError(f"{self.title}: choose a model first (the experiment's target).")
        self.check_data(dataset)
        eps_list = check_eps_values(self.eps)
        pre = self.defense
        random = pre.is_random
        k = self.eot_samples if random else 1
        # progress weights: roughly seconds of the small CNN on two cores
        attack_w = self.pgd.steps * self.pgd.restarts * self.n / 1000 * len(eps_list)
        detect_w = 0.0
        if self.squeezing:
            a = self.adaptive
            detect_w = (
                3.0 * self.n_cw / 100 + a.binary_search_steps * a.max_iter * self.n_adaptive / 800
            )
        p_model, p_clean, p_attacks, p_checks, p_detect = split(
            progress, {"model": 1.0, "clean": 0.2, "attacks": attack_w * (3 + k),
                       "sanity checks": 2.0 * (1 + k), "feature squeezing": detect_w}
        )  # fmt: skip
        base = self.target.base.resolve(dataset, p_model)
        base.eval()
        device = model_device(base)
        bounds = (dataset.bounds[0].to(device), dataset.bounds[1].to(device))
        goal = Goal(bounds=bounds)
        order = select_inputs(dataset, dataset.n_test, self.seed)
        idx = order[: self.n]
        x, y = dataset.x_test[idx].to(device), dataset.y_test[idx].to(device)
        n = int(y.shape[0])

        naive = pre.wrap(base, backward="exact", bounds=bounds)
        bpda = pre.wrap(base, backward="bpda", bounds=bounds)
        eot = pre.wrap(base, backward="bpda", bounds=bounds, eot=k) if random else None

        # clean accuracy of each transform alone, of the chain, of the undefended model
        clean_rows = []
        undefended_clean = _accuracy(base, x, y)
        clean_rows.append(
            {"transform": "none (undefended)", "clean_accuracy": undefended_clean, "cost": 0.0}
        )
        for t in pre.transforms():
            acc = _accuracy(_single(base, t, bounds, pre.seed), x, y)
            clean_rows.append(
                {"transform": t.short(), "clean_accuracy": acc, "cost": undefended_clean - acc}
            )
        defended_clean = _accuracy(naive, x, y)
        if len(pre.transforms()) > 1:
            clean_rows.append(
                {
                    "transform": f"the chain: {pre.describe()}",
                    "clean_accuracy": defended_clean,
                    "cost": undefended_clean - defended_clean,
                }
            )
        if p_clean:
            p_clean(1.0, "clean accuracy")

        # accuracy against ε: undefended, naive, BPDA, EOT, transferred
        lines: list[tuple[str, nn.Module]] = [(UNDEFENDED, base), (NAIVE, naive), (BPDA, bpda)]
        if eot is not None:
            lines.append((EOT, eot))
        weights = [1.0, 1.0, 1.0] + ([float(k)] if eot is not None else [])
        parts = split(p_attacks, weights)
        sweep_rows = []
        undefended_adv: dict[float, torch.Tensor] = {}
        for (label, attacked), part in zip(lines, parts, strict=True):
            sub = split(part, [1.0] * len(eps_list))
            pgd = self._pgd_for(label)
            for e, p in zip(eps_list, sub, strict=True):
                res = attack_in_batches(
                    pgd, attacked, x, y, eps=e, norm="linf", goal=goal, batch_size=512,
                    progress=p,
                )  # fmt: skip
                judge = base if label == UNDEFENDED else naive
                acc = _accuracy(judge, res.x_adv, y)
                sweep_rows.append(_row(label, e, acc, n, res.seconds))
                if label == UNDEFENDED:
                    undefended_adv[e] = res.x_adv
                    t_acc = _accuracy(naive, res.x_adv, y)
                    sweep_rows.append(_row(TRANSFER, e, t_acc, n, 0.0))
        sweep = pd.DataFrame(sweep_rows)
        sweep["order"] = sweep["attack"].map({a: i for i, a in enumerate(ATTACK_ORDER)})
        sweep = sweep.sort_values(["order", "eps"]).drop(columns="order").reset_index(drop=True)

        checks = self._sanity(
            naive, eot if eot is not None else bpda, x, y, dataset, goal, sweep, p_checks
        )
        top = eps_list[-1]
        metrics: dict[str, Any] = {
            "n": n,
            "num_classes": int(dataset.num_classes),
            "eps_max": top,
            "defense": pre.describe(),
            "random": random,
            "eot_samples": k if random else 0,
            "undefended_clean": undefended_clean,
            "defended_clean": defended_clean,
            "naive_accuracy": _at(sweep, NAIVE, top),
            "bpda_accuracy": _at(sweep, BPDA, top),
            "undefended_accuracy": _at(sweep, UNDEFENDED, top),
            "transfer_accuracy": _at(sweep, TRANSFER, top),
        }
        if random:
            metrics["eot_accuracy"] = _at(sweep, EOT, top)
        tables = {"clean": pd.DataFrame(clean_rows), "sweep": sweep}

        if self.squeezing:
            det_metrics, det_tables = self._squeezing(
                base, dataset, order, x, y, bounds, goal, undefended_adv[top], top, p_detect
            )
            metrics.update(det_metrics)
            tables.update(det_tables)
        metrics["sanity_warnings"] = int(sum(c.status == "warn" for c in checks))
        tables["sanity"] = checks_table(checks)
        return RunResult(
            metrics=metrics,
            tables=tables,
            label=f"{self.title}: {self.target.base.describe()} + {pre.describe()} on "
            f"{dataset.name}",
        )

    def _sanity(
        self,
        naive: nn.Module,
        adaptive: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        dataset: Dataset,
        goal: Goal,
        sweep: pd.DataFrame,
        progress: ProgressFn | None,
    ) -> list[SanityCheck]:
        n_check = min(CHECK_N, int(y.shape[0]))
        p_naive, p_adaptive = split(progress, [1.0, 1.0])
        reach = check_reaches_chance(
            naive, x[:n_check], y[:n_check], dataset.num_classes, goal=goal, steps=CHECK_STEPS,
            progress=p_naive,
        )  # fmt: skip
        reach.name = f"Naive attack (exact gradients): {reach.name.lower()}"
        top = float(sweep["eps"].max())
        naive_success = 1.0 - _at(sweep, NAIVE, top)
        transfer_success = 1.0 - _at(sweep, TRANSFER, top)
        bb = check_whitebox_beats_blackbox(
            naive_success,
            transfer_success,
            int(y.shape[0]),
            whitebox="naive white-box PGD on the defended model",
            blackbox="PGD transferred from the undefended model",
            eps=top,
        )
        bb.name = f"Naive attack: {bb.name.lower()}"
        what = "BPDA + EOT" if self.defense.is_random else "BPDA"
        reach_a = check_reaches_chance(
            adaptive, x[:n_check], y[:n_check], dataset.num_classes, goal=goal,
            steps=CHECK_STEPS, progress=p_adaptive,
        )  # fmt: skip
        reach_a.name = f"Adaptive attack ({what}): {reach_a.name.lower()}"
        mono = [c for c in check_monotone(sweep) if not c.name.startswith(TRANSFER)]
        for c in mono:
            if c.name.startswith(NAIVE):
                c.name = c.name.replace(NAIVE, "Naive attack (exact gradients)", 1)
        return [reach, bb, reach_a, *mono]

    def _squeezing(
        self,
        base: nn.Module,
        dataset: Dataset,
        order: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        bounds: tuple[torch.Tensor, torch.Tensor],
        goal: Goal,
        pgd_adv: torch.Tensor,
        eps: float,
        progress: ProgressFn | None,
    ) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
        """Feature squeezing on the undefended model: calibrate, detect the naive
        attacker's PGD (at the largest ε) and C&W examples, run the adaptive attacker."""
        device = x.device
        det = SqueezingDetector(base, self.squeeze, bounds=bounds)
        held = order[self.n : self.n + self.n_calibration]
        x_cal = dataset.x_test[held]
        if x_cal.shape[0] < self.n_calibration:
            extra = self.n_calibration - x_cal.shape[0]
            gen = torch.Generator().manual_seed(self.seed)
            pick = torch.randperm(dataset.n_train, generator=gen)[:extra]
            x_cal = torch.cat([x_cal, dataset.x_train[pick]])
        tau = det.calibrate(x_cal.to(device))
        clean_scores = det.scores(x)
        with torch.inference_mode():
            correct = base(x).argmax(1) == y
        rows, rocs = [], []

        def add(name: str, x_adv: torch.Tensor, attacked: torch.Tensor, l2: torch.Tensor) -> None:
            """``attacked``: which images the attack ran on (clean-correct ones count)."""
            with torch.inference_mode():
                fooled = (base(x_adv).argmax(1) != y[attacked]) & correct[attacked]
            s = det.scores(x_adv)
            adv = s[fooled]
            m = detection_metrics(clean_scores, adv, tau)
            flagged = s > tau
            base_n = int(correct[attacked].sum())
            rows.append(
                {
                    "attack": name,
                    "images": base_n,
                    "adversarial": int(fooled.sum()),
                    "auc": m["auc"],
                    "tpr@1%fpr": m["tpr@1%fpr"],
                    "tpr@5%fpr": m["tpr@5%fpr"],
                    "detection_rate": m["detection_rate"],
                    "success_rate": float((fooled & ~flagged).sum()) / base_n if base_n else 0.0,
                    "mean_l2": float(l2[fooled].mean()) if bool(fooled.any()) else float("nan"),
                }
            )
            if adv.numel():
                roc = detection_roc(clean_scores, adv)
                roc.insert(0, "attack", name)
                rocs.append(roc)

        a = self.adaptive
        p_cw, p_adapt = split(
            progress,
            {"C&W": 3.0 * self.n_cw / 100,
             "adaptive attack": a.binary_search_steps * a.max_iter * self.n_adaptive / 800},
        )  # fmt: skip
        every = torch.arange(x.shape[0], device=device)
        add(DETECT_PGD, pgd_adv, every, (pgd_adv - x).flatten(1).norm(dim=1))
        n_cw = min(self.n_cw, int(x.shape[0]))
        cw = attack_in_batches(
            CarliniWagnerL2(), base, x[:n_cw], y[:n_cw], goal=goal, batch_size=512,
            progress=p_cw,
        )  # fmt: skip
        add(DETECT_CW, cw.x_adv, every[:n_cw], cw.l2)
        pick = torch.nonzero(correct).flatten()[: self.n_adaptive]
        adaptive = self.adaptive.run(det, x[pick], y[pick], progress=p_adapt)
        add(DETECT_ADAPTIVE, adaptive.x_adv, pick, adaptive.l2)
        detection = pd.DataFrame(rows)
        metrics = {
            "squeezers": self.squeeze.describe(),
            "threshold": tau,
            "target_fpr": self.squeeze.fpr,
            "clean_fpr": float((clean_scores > tau).float().mean()),
            "n_calibration": int(x_cal.shape[0]),
            "detect_eps": eps,
            "detect_pgd": float(detection.loc[0, "detection_rate"]),
            "detect_cw": float(detection.loc[1, "detection_rate"]),
            "tpr5_pgd": float(detection.loc[0, "tpr@5%fpr"]),
            "tpr5_cw": float(detection.loc[1, "tpr@5%fpr"]),
            "adaptive_detection": float(detection.loc[2, "detection_rate"]),
            "adaptive_success": float(detection.loc[2, "success_rate"]),
        }
        roc = (
            pd.concat(rocs, ignore_index=True)
            if rocs
            else pd.DataFrame(columns=["attack", "fpr", "tpr"])
        )
        return metrics, {"detection": detection, "roc": roc}


def _row(attack: str, eps: float, accuracy: float, n: int, seconds: float) -> dict[str, Any]:
    return {"attack": attack, "eps": float(eps), "accuracy": accuracy, "n": n, "seconds": seconds}


def _at(sweep: pd.DataFrame, attack: str, eps: float) -> float:
    row = sweep[(sweep["attack"] == attack) & ((sweep["eps"] - eps).abs() < 1e-9)]
    return float(row["accuracy"].iloc[0])


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    """Share of ``x`` the model classifies as ``y`` (one forward pass, in batches)."""
    if x.shape[0] == 0:
        return 0.0
    correct = 0
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch):
            correct += int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
    return correct / x.shape[0]


def _single(base: nn.Module, transform: Any, bounds: Any, seed: int) -> nn.Module:
    from ..defenses.preprocessing import PreprocessedModel

    return PreprocessedModel(base, (transform,), bounds=bounds, seed=seed)
