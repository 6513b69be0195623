"""The "Postprocessing & ensembles" experiment: output-postprocessing and ensemble defenses
measured on accuracy, privacy and extraction.

:func:`evaluate_output_defenses` puts each defense in front of the same target and
measures, for each:

* **accuracy**: the service's top-1 accuracy on the test set (abstentions of the ``reject``
  rule count as errors; coverage and accuracy on answered inputs are reported too), and how
  often its label agrees with the undefended model's;
* **privacy**: every membership attack (thresholds, Shokri, LiRA) run by an attacker who
  knows the postprocessing — shadow models' outputs go through the same defense — reported
  as the strongest attack's AUC and TPR at 0.1 % / 1 % FPR;
* **extraction**: a copycat stolen through the defended API
  (:func:`robustcore.attacks.extraction.steal`): its fidelity to the undefended service and
  its test accuracy.

Shadow models and ensemble members are trained once (through the zoo, copying
``target.training``) and shared by all rows: a postprocessing defense only changes what the
service returns.

``python -m robustcore postprocessing --arch mlp --recipe.epochs 40 --recipe.train-size 500
--defenses rounding,label_only --rules average,vote --rounding.decimals 1 --extraction false``
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.extraction import OUTPUTS, QUERY_SOURCES, ModelStealing, check_config, steal
from ..attacks.inference import (
    MembershipInference,
    attack_scores,
    evaluate_attacks,
    membership_split,
    train_shadows,
)
from ..data import Dataset
from ..defenses.ensemble import (
    RULES,
    Ensemble,
    answer_stats,
    answered_labels,
    build_ensemble,
    combine,
    member_plan,
)
from ..defenses.postprocess import (
    DEFENSES,
    NoDefense,
    OutputDefense,
    ReverseSigmoid,
    Rounding,
    Temperature,
    TopK,
    wrap,
)
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, predict_logits
from ..params import nested, param
from ..progress import ProgressFn, scaled, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key, training_work
from .membership_inference import check_shadow_arch, describe_target, shadow_work
from .model_extraction import student_work, target_id

OUTPUT_DEFENSES: tuple[str, ...] = tuple(n for n in DEFENSES if n != NoDefense.name)
"""The output defenses a comparison may include (the undefended service always comes first)."""


@dataclass
class _Row:
    key: str
    label: str
    kind: str
    defense: OutputDefense | None = None
    rule: str | None = None


def _rows(
    defenses: Sequence[OutputDefense], ensemble: Ensemble | None, rules: Sequence[str]
) -> list[_Row]:
    rows = [_Row(d.name, d.short(), "postprocess", defense=d) for d in defenses]
    if ensemble is not None:
        for rule in rules:
            rows.append(_Row(f"ensemble_{rule}", ensemble.short(rule), "ensemble", rule=rule))
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        raise ValidationError("Each defense may appear only once in a comparison.")
    if not rows:
        raise ValidationError("Choose at least one defense (or ensemble rule) to compare.")
    return rows


def evaluate_output_defenses(
    model: nn.Module,
    dataset: Dataset,
    *,
    arch: str,
    recipe: TrainRecipe,
    defenses: Sequence[OutputDefense],
    ensemble: Ensemble | None = None,
    rules: Sequence[str] = (),
    membership: MembershipInference | None = None,
    stealing: ModelStealing | None = None,
    steal_budget: int = 500,
    steal_source: str = "in_distribution",
    steal_output: str = "probabilities",
    target_id: str | None = None,
    progress: ProgressFn | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Each defense's effect on accuracy, membership inference and model extraction.

    Args:
        model: the target (logits); members are its first ``recipe.train_size`` training
            examples (all when 0).
        dataset: its data.
        arch, recipe: how the target was trained (copied by shadow models and ensemble
            members).
        defenses: output defenses to compare (include ``NoDefense()`` for the baseline).
        ensemble: the ensemble's make-up (members, architectures, agreement threshold);
            ``rules`` lists the consensus rules to compare (each is a row).
        membership: attacks, shadow models, candidates, seed (default
            ``MembershipInference()``).
        stealing: the copycat's student (a ``ModelStealing``), or ``None`` to skip the
            extraction columns; ``steal_budget``, ``steal_source`` and ``steal_output`` are
            its theft's budget, query source and API output.
        target_id: recorded in stolen models' zoo entries.
        progress: ``progress(fraction, message)``; it may raise to cancel.

    Returns:
        ``(summary, membership_table, info)``: one summary row per defense; one row per
        defense × attack; and facts about the run (shadow models, ensemble members, ...).
    """
    t0 = time.perf_counter()
    membership = membership if membership is not None else MembershipInference()
    rules = list(rules) if ensemble is not None else []
    for rule in rules:
        if rule not in RULES:
            raise ValidationError(f"Unknown ensemble rule {rule!r}; choose from {RULES}.")
    rows = _rows(defenses, ensemble, rules)
    if stealing is not None:
        check_config(
            dataset, stealing, budget=steal_budget, query_source=steal_source, output=steal_output
        )
    has_ensemble = any(r.kind == "ensemble" for r in rows)
    # Progress shares: shadow models and ensemble members train, stealing trains students.
    w_rows = 1.0 - 0.02 - (0.1 if has_ensemble else 0.0)
    w_rows -= 0.45 if membership.attacks == "all" else 0.0
    query_part, ens_part, shadow_part, *row_parts = split(
        progress,
        [
            0.02,
            0.1 if has_ensemble else 0.0,
            0.45 if membership.attacks == "all" else 0.0,
            *[w_rows / len(rows)] * len(rows),
        ],
    )

    cands = membership_split(
        dataset,
        train_size=recipe.train_size,
        max_per_side=membership.max_examples,
        seed=membership.seed,
    )
    if query_part is not None:
        query_part(0.5, "querying the target")
    cand_logits = predict_logits(model, cands.x)
    test_logits = predict_logits(model, dataset.x_test)
    y_test = dataset.y_test.cpu()
    base_labels = test_logits.argmax(1)

    ens = None
    if has_ensemble:
        assert ensemble is not None
        ens = build_ensemble(
            dataset,
            ensemble,
            arch=arch,
            recipe=recipe,
            progress=scaled(ens_part, 0.0, 1.0, "ensemble"),
        )
        ens_cand = ens.member_probs(cands.x)
        ens_test = ens.member_probs(dataset.x_test)

    shadows = None
    if membership.attacks == "all":
        plan = member_plan(dataset, ensemble, arch, recipe) if has_ensemble else [(arch, recipe)]
        shadows = train_shadows(
            dataset,
            cands.pool_x,
            cands.pool_y,
            cands.candidates,
            plan,
            shadow_models=membership.shadow_models,
            seed=membership.seed,
            progress=shadow_part,
        )

    undefended = wrap(model)
    summary, long_rows = [], []
    for row, part in zip(rows, row_parts, strict=True):
        measure, theft = split(
            scaled(part, 0.0, 1.0, row.label), [0.1, 0.9] if stealing is not None else [1.0, 0.0]
        )
        if measure is not None:
            measure(0.0, "accuracy and membership")
        if row.kind == "postprocess":
            d = row.defense if row.defense is not None else NoDefense()
            ans_test = d.apply(test_logits)
            ans_cand = d.apply(cand_logits)
            shadow_ans = d.apply(shadows.logits[:, 0]) if shadows is not None else None
            api, reference = wrap(model, d), undefended
        else:
            assert ens is not None and row.rule is not None
            agree = ens.config.min_agreement
            ans_test = combine(ens_test, row.rule, agree)
            ans_cand = combine(ens_cand, row.rule, agree)
            shadow_ans = (
                torch.stack(
                    [combine(torch.softmax(lg, -1), row.rule, agree) for lg in shadows.logits]
                )
                if shadows is not None
                else None
            )
            api, reference = ens.api(row.rule), ens.api("average")
        acc = answer_stats(ans_test, y_test)
        scores = attack_scores(
            ans_cand,
            cands.y,
            shadow_answers=shadow_ans,
            shadow_in=shadows.shadow_in if shadows is not None else None,
            shokri_mode=membership.shokri_mode,
            seed=membership.seed,
        )
        mi, _ = evaluate_attacks(scores, cands.is_member.numpy())
        long_rows.append(mi.assign(defense=row.label, defense_key=row.key))
        best_auc = mi.loc[mi["auc"].idxmax()]
        out = {
            "defense": row.label,
            "key": row.key,
            "kind": row.kind,
            "accuracy": acc["accuracy"],
            "selective_accuracy": acc["selective_accuracy"],
            "abstention_rate": acc["abstention_rate"],
            "label_agreement": float((answered_labels(ans_test) == base_labels).float().mean()),
            "mi_auc": float(best_auc["auc"]),
            "mi_best_attack": str(best_auc["attack"]),
            "mi_advantage": float(mi["advantage"].max()),
            "mi_tpr@0.1%fpr": float(mi["tpr@0.1%fpr"].max()),
            "mi_tpr@1%fpr": float(mi["tpr@1%fpr"].max()),
            "loss_auc": float(mi.loc[mi["attack"] == "loss", "auc"].iloc[0]),
        }
        if stealing is not None:
            stolen = steal(
                api,
                dataset,
                stealing,
                budget=steal_budget,
                output=steal_output,
                query_source=steal_source,
                reference=reference,
                progress=scaled(theft, 0.0, 1.0, "stealing"),
                target_id=target_id,
            )
            out.update(
                {
                    "extraction_fidelity": stolen.fidelity,
                    "extraction_accuracy": stolen.accuracy,
                    "queries": stolen.queries,
                }
            )
        summary.append(out)
    info: dict[str, Any] = {
        "per_side": cands.per_side,
        "n_target_train": cands.n_target_train,
        "undefended_accuracy": float((base_labels == y_test).float().mean()),
        "seconds": time.perf_counter() - t0,
    }
    if shadows is not None:
        info.update(
            shadow_models=shadows.count,
            shadow_train_size=shadows.train_size,
            shadows_trained=shadows.trained,
        )
    if ens is not None:
        info.update(
            ensemble_members=len(ens.members),
            ensemble_archs=list(ens.archs),
            ensemble_member_acc=[m["test_acc"] for m in ens.metrics],
        )
    return pd.DataFrame(summary), pd.concat(long_rows, ignore_index=True), info


class PostprocessingResult(ExperimentResult):
    """One summary row per defense, one row per defense × attack, and facts about the run."""

    @property
    def target_description(self) -> str:
        return str(self._metric("target"))

    @property
    def per_side(self) -> int:
        return int(self._metric("per_side"))

    @property
    def undefended_accuracy(self) -> float:
        return float(self._metric("undefended_accuracy"))

    def summary_table(self) -> pd.DataFrame:
        """One row per defense: defense, key, kind, accuracy, selective_accuracy,
        abstention_rate, label_agreement, mi_auc, mi_best_attack, mi_advantage,
        mi_tpr@0.1%fpr, mi_tpr@1%fpr, loss_auc (and extraction_fidelity,
        extraction_accuracy, queries when extraction was measured)."""
        return self._table("summary")

    def per_attack(self) -> pd.DataFrame:
        """Every membership attack against every defense (one row each)."""
        return self._table("membership")

    @property
    def has_extraction(self) -> bool:
        return "extraction_fidelity" in self.summary_table().columns

    def shadows(self) -> dict[str, int] | None:
        """count, train_size, trained (now); ``None`` for the threshold attacks only."""
        if self._metric("shadow_models") is None:
            return None
        return {
            "count": int(self._metric("shadow_models")),
            "train_size": int(self._metric("shadow_train_size")),
            "trained": int(self._metric("shadows_trained")),
        }

    def ensemble(self) -> dict[str, Any] | None:
        """members, archs and member_accuracy of the ensemble; ``None`` without one."""
        if self._metric("ensemble_members") is None:
            return None
        return {
            "members": int(self._metric("ensemble_members")),
            "archs": list(self._metric("ensemble_archs")),
            "member_accuracy": [float(a) for a in self._metric("ensemble_member_acc")],
        }

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target_description,
            "undefended_accuracy": self.undefended_accuracy,
            "per_side": self.per_side,
        }
        table = self.summary_table().set_index("key")
        for key, row in table.iterrows():
            out[f"{key}.accuracy"] = float(row["accuracy"])
            out[f"{key}.mi_auc"] = float(row["mi_auc"])
            if "extraction_fidelity" in table.columns:
                out[f"{key}.extraction_fidelity"] = float(row["extraction_fidelity"])
        return out

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        cols = [
            "defense",
            "accuracy",
            "abstention_rate",
            "label_agreement",
            "mi_auc",
            "mi_tpr@1%fpr",
            "extraction_fidelity",
        ]
        table = self.summary_table()
        return {"defenses": table[[c for c in cols if c in table.columns]]}


@register
@dataclass(frozen=True)
class Postprocessing(Experiment):
    """Output defenses and ensemble rules side by side: accuracy, membership, extraction.

    Which defenses and which consensus rules are compared are the experiment's own
    parameters; each defense's settings are a nested declaration (kept in the spec only
    when that defense is compared), as are the ensemble's, the membership attacker's and
    the copycat's.
    """

    name = "postprocessing"
    title = "Postprocessing & ensembles"
    page_target = "overfit"
    paper = (
        "Shokri et al. 2017; Tramèr et al. 2016; Lee et al. 2019 (reverse sigmoid); "
        "Strauss et al. 2017 (ensembles)"
    )
    result_class = PostprocessingResult
    headline = "undefended_accuracy"

    defenses: tuple[str, ...] | None = param(
        OUTPUT_DEFENSES,
        choices=OUTPUT_DEFENSES,
        label="Output defenses (the undefended service is always the first row)",
        help="Postprocessing of the probabilities the service returns; empty: only the "
        "undefended service (and the ensemble rules).",
    )
    rounding: Rounding = nested(Rounding)
    top_k: TopK = nested(TopK)
    reverse_sigmoid: ReverseSigmoid = nested(ReverseSigmoid)
    temperature: Temperature = nested(Temperature)
    rules: tuple[str, ...] | None = param(
        RULES,
        choices=RULES,
        label="Ensemble consensus rules",
        help="One row per rule, all with the same trained ensemble; empty: no ensemble.",
    )
    ensemble: Ensemble = nested(Ensemble, label="Ensemble")
    membership: MembershipInference = nested(
        MembershipInference,
        default=MembershipInference(shadow_models=4),
        label="Membership attacks",
    )
    shadow_arch: str | None = param(
        None,
        choices=tuple(ARCHITECTURES),
        label="Architecture of the shadow models and ensemble members",
        help="The attacker's guess of the target's architecture; empty: the target's own "
        "(needed for an uploaded model of unknown make).",
    )
    extraction: bool = param(
        True,
        label="Measure extraction fidelity",
        help="Steal a copycat through each defended API (costs one student per row).",
    )
    steal_budget: int = param(
        500, low=1, high=1_000_000, step=50, label="Query budget", help="Queries per copycat."
    )
    steal_source: str = param(
        "in_distribution",
        choices=QUERY_SOURCES,
        label="Query source",
        help="Natural images of the same task, real images of another dataset, or uniform "
        "random noise inside the data bounds.",
    )
    steal_output: str = param(
        "probabilities",
        choices=OUTPUTS,
        label="API output the copycat learns from",
        help="The defended answers as returned, or only their top-1 label.",
    )
    student: ModelStealing = nested(ModelStealing, label="Copycat student")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # Settings of parts that do not run do not change the result: keep them out of the
        # key (e.g. a run without the ensemble is found again whatever its settings).
        for name in ("rounding", "top_k", "reverse_sigmoid", "temperature"):
            if name not in (self.defenses or ()):
                out.pop(name)
        if not self.rules:
            out.pop("ensemble")
        if not self.extraction:
            for name in ("steal_budget", "steal_source", "steal_output", "student"):
                out.pop(name)
        return out

    def output_defenses(self) -> list[OutputDefense]:
        """The undefended service first, then the chosen defenses in the registry's order."""
        chosen = set(self.defenses or ())
        out: list[OutputDefense] = [NoDefense()]
        for name in OUTPUT_DEFENSES:
            if name in chosen:
                settings = getattr(self, name, None)
                out.append(settings if isinstance(settings, OutputDefense) else DEFENSES[name]())
        return out

    def _arch(self) -> str | None:
        return self.shadow_arch or (self.target.training[0] if self.target else None)

    def check_data(self, dataset: Dataset) -> None:
        if self.target is None:
            return
        arch = self._arch()
        if arch is None:
            raise ValidationError(
                "The ensemble members and shadow models copy the target's architecture, "
                "which is unknown for this uploaded model: choose the architecture of the "
                "shadow models and ensemble members."
            )
        check_shadow_arch(dataset, arch, self.membership)
        if self.extraction:
            check_config(
                dataset,
                self.student,
                budget=self.steal_budget,
                query_source=self.steal_source,
                output=self.steal_output,
            )

    def work(self, dataset: Dataset) -> Work:
        """The target's answers (candidates and test split); the ensemble members (through
        the zoo; member 0 is the target itself) and their answers; the shadow models
        (:func:`shadow_work`, one per member of the plan); and per row one copycat: the
        reference's test-set labels, the budget's queries to the service (every member for
        an ensemble row) and the student (:func:`student_work`, always counted)."""
        key, arch = model_key(self.target), self._arch()
        t = self.target
        _, recipe = t.training if t is not None else (None, TrainRecipe())
        mem, n_test = self.membership, dataset.n_test
        cands = membership_split(
            dataset, train_size=recipe.train_size, max_per_side=mem.max_examples, seed=mem.seed
        )
        n_c = int(cands.candidates.numel())
        work = Work.of(key, forward=n_c + n_test)
        if arch is None:
            return work  # check_data refuses the run
        rules = len(self.rules or ())
        members = member_plan(dataset, self.ensemble, arch, recipe) if rules else []
        for a, r in members:
            if t is None or (a, r) != (t.arch, t.recipe):  # the target's training is its own
                work = work + training_work(a, dataset, r)
            work = work + Work.of(a, forward=n_c + n_test)
        if mem.attacks == "all":
            plan = members or [(arch, recipe)]
            work = work + shadow_work(dataset, cands, plan, mem.shadow_models, mem.seed)
        if self.extraction:
            st, budget = self.student, self.steal_budget
            rows = len(self.output_defenses())
            work = work + Work.of(key, forward=rows * (n_test + budget))
            for a, _ in members:  # an ensemble row asks every member
                work = work + Work.of(a, forward=rules * (n_test + budget))
            work = work + student_work(st.student_arch, st.epochs, budget, dataset) * (rows + rules)
        return work

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None and self.target is not None
        arch = self._arch()
        assert arch is not None
        _, recipe = self.target.training
        summary, long_table, info = evaluate_output_defenses(
            model,
            dataset,
            arch=arch,
            recipe=recipe,
            defenses=self.output_defenses(),
            ensemble=self.ensemble if self.rules else None,
            rules=self.rules or (),
            membership=self.membership,
            stealing=self.student if self.extraction else None,
            steal_budget=self.steal_budget,
            steal_source=self.steal_source,
            steal_output=self.steal_output,
            target_id=target_id(self.target, dataset),
            progress=progress,
        )
        described = describe_target(self.target)
        return RunResult(
            metrics={"target": described, **info},
            tables={"summary": summary, "membership": long_table},
            label=f"Postprocessing & ensembles on {described}",
        )
