"""Output-postprocessing and ensemble defenses, measured on privacy, extraction and accuracy.

:func:`evaluate_output_defenses` puts each defense in front of the same target and
measures, for each:

* **accuracy**: the service's top-1 accuracy on the test set (abstentions of the ``reject``
  rule count as errors; coverage and accuracy on answered inputs are reported too), and how
  often its label agrees with the undefended model's;
* **privacy**: every membership attack (thresholds, Shokri, LiRA) run by an attacker who
  knows the postprocessing — shadow models' outputs go through the same defense — reported
  as the strongest attack's AUC and TPR at 0.1 % / 1 % FPR;
* **extraction**: a copycat stolen through the defended API (part B's
  :func:`robustcore.attacks.extraction.steal`): its fidelity to the undefended service and
  its test accuracy.

Shadow models and ensemble members are trained once (through the zoo) and shared by all
rows: a postprocessing defense only changes what the service returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

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
from ..defenses.postprocess import NoDefense, OutputDefense, wrap
from ..errors import ValidationError
from ..models import TrainRecipe, predict_logits
from .membership_job import Target, defense_spec
from .runner import JobContext
from .store import RunResult

ProgressFn = Callable[[float, str], None]


def _stealing():
    """Part B's model-stealing module (imported lazily: the page works without it)."""
    from ..attacks import extraction

    return extraction


@dataclass
class _Row:
    key: str
    label: str
    kind: str
    defense: OutputDefense | None = None
    rule: str | None = None


def _rows(defenses: Sequence[OutputDefense], ensemble: Ensemble | None, rules: Sequence[str]):
    rows = [_Row(d.name, d.short(), "postprocess", defense=d) for d in defenses]
    if ensemble is not None:
        for rule in rules:
            cfg = ensemble.replace(rule=rule)
            rows.append(_Row(f"ensemble_{rule}", cfg.short(), "ensemble", rule=rule))
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
    stealing: Any | None = None,
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
        stealing: a ``ModelStealing`` configuration (part B), or ``None`` to skip the
            extraction columns.
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
    report = progress or (lambda f, m: None)
    has_ensemble = any(r.kind == "ensemble" for r in rows)
    # Progress shares: shadow models and ensemble members train, stealing trains students.
    w_ens = 0.1 if has_ensemble else 0.0
    w_shadow = 0.45 if membership.attacks == "all" else 0.0
    w_rows = 1.0 - 0.02 - w_ens - w_shadow

    split = membership_split(
        dataset,
        train_size=recipe.train_size,
        max_per_side=membership.max_examples,
        seed=membership.seed,
    )
    report(0.01, "querying the target")
    cand_logits = predict_logits(model, split.x)
    test_logits = predict_logits(model, dataset.x_test)
    y_test = dataset.y_test.cpu()
    base_labels = test_logits.argmax(1)

    ens = None
    if has_ensemble:
        ens = build_ensemble(
            dataset,
            ensemble,
            arch=arch,
            recipe=recipe,
            progress=lambda f, m: report(0.02 + w_ens * f, f"ensemble {m}"),
        )
        ens_cand = ens.member_probs(split.x)
        ens_test = ens.member_probs(dataset.x_test)

    shadows = None
    if membership.attacks == "all":
        plan = member_plan(dataset, ensemble, arch, recipe) if has_ensemble else [(arch, recipe)]
        shadows = train_shadows(
            dataset,
            split.pool_x,
            split.pool_y,
            split.candidates,
            plan,
            shadow_models=membership.shadow_models,
            seed=membership.seed,
            progress=lambda f, m: report(0.02 + w_ens + w_shadow * f, m),
        )

    extraction = _stealing() if stealing is not None else None
    undefended = wrap(model)
    summary, long_rows = [], []
    for i, row in enumerate(rows):
        base = 0.02 + w_ens + w_shadow + w_rows * i / len(rows)
        report(base, f"{row.label}: accuracy and membership")
        if row.kind == "postprocess":
            d = row.defense if row.defense is not None else NoDefense()
            ans_test = d.apply(test_logits)
            ans_cand = d.apply(cand_logits)
            shadow_ans = d.apply(shadows.logits[:, 0]) if shadows is not None else None
            api, reference = wrap(model, d), undefended
        else:
            assert ens is not None
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
            split.y,
            shadow_answers=shadow_ans,
            shadow_in=shadows.shadow_in if shadows is not None else None,
            shokri_mode=membership.shokri_mode,
            seed=membership.seed,
        )
        mi, _ = evaluate_attacks(scores, split.is_member.numpy())
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
        if extraction is not None:
            share = w_rows / len(rows)

            def sub(f: float, m: str, base: float = base, share: float = share, row=row) -> None:
                report(base + share * (0.1 + 0.9 * f), f"{row.label}: stealing — {m}")

            stolen = extraction.steal(
                api, dataset, stealing, reference=reference, progress=sub, target_id=target_id
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
        "per_side": split.per_side,
        "n_target_train": split.n_target_train,
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


def postprocess_spec(
    dataset: Dataset,
    target: Target,
    *,
    defenses: Sequence[OutputDefense],
    ensemble: Ensemble | None,
    rules: Sequence[str],
    membership: MembershipInference,
    stealing: Any | None,
) -> dict[str, Any]:
    """The spec of a defense comparison."""
    return {
        "kind": "postprocess",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "target": target.spec(),
        "defenses": [defense_spec(d) for d in defenses],
        "ensemble": ensemble.to_dict() if ensemble is not None and rules else None,
        "rules": list(rules) if ensemble is not None else [],
        "membership": membership.to_dict(),
        "stealing": stealing.to_dict() if stealing is not None else None,
        "seed": membership.seed,
    }


def postprocess_job(
    dataset: Dataset,
    target: Target,
    *,
    defenses: Sequence[OutputDefense],
    ensemble: Ensemble | None,
    rules: Sequence[str],
    membership: MembershipInference,
    stealing: Any | None,
) -> Callable[[JobContext], RunResult]:
    """A job function: compare the defenses on ``target``."""

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing the target")
        model = target.resolve(dataset, lambda f, m: ctx.progress(0.08 * f, f"target: {m}"))
        summary, long_table, info = evaluate_output_defenses(
            model,
            dataset,
            arch=target.arch,
            recipe=target.recipe,
            defenses=defenses,
            ensemble=ensemble,
            rules=rules,
            membership=membership,
            stealing=stealing,
            target_id=target.run_key or f"{target.arch}:{dataset.name}",
            progress=lambda f, m: ctx.progress(0.08 + 0.91 * f, m),
        )
        ctx.progress(1.0, "done")
        return RunResult(
            metrics={"target": target.describe(), **info},
            tables={"summary": summary, "membership": long_table},
            label=f"Postprocessing & ensembles on {target.describe()}",
        )

    return job
