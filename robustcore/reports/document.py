"""A report: a title, the user's summary and an ordered list of stored runs, each drawn as
its page draws it (:mod:`.sections`), followed by a generated section on what the
evaluation does *not* show and an appendix with every run's spec, seed, library versions
and key.

``build_report(store, keys, title=..., summary=...)`` reads the runs from the result store;
:mod:`.export` writes the result as HTML, PDF or ZIP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..data import Dataset
from ..errors import RobustcoreError, ValidationError
from ..runs.store import ResultStore, RunRecord
from .blocks import RunSection
from .sections import generic, get_builder

MAX_RUNS = 50
"""The most runs one report may hold."""

MAX_TITLE = 200
MAX_SUMMARY = 20_000

ATTACK_CATALOGUE: dict[str, tuple[str, str]] = {
    "FGSM": ("White-box evasion", "one gradient-sign step (Goodfellow et al. 2015)"),
    "PGD": ("White-box evasion", "many projected gradient steps (Madry et al. 2018)"),
    "C&W": ("White-box evasion", "the smallest L2 change that flips the decision"),
    "SimBA": ("Black-box evasion", "queries the output scores only (Guo et al. 2019)"),
    "ZOO": ("Black-box evasion", "estimates gradients from queries (Chen et al. 2017)"),
    "Transfer": ("Black-box evasion", "crafted on a surrogate model, then replayed"),
    "BadNets": ("Poisoning", "a visible trigger patch in the training data (Gu et al. 2017)"),
    "Hidden trigger": ("Poisoning", "clean-label poisons with a hidden trigger"),
    "Label flipping": ("Poisoning", "wrong labels in the training data"),
    "Membership inference": ("Privacy", "was this record in the training set?"),
    "Model inversion": ("Privacy", "reconstructs class representatives from the model"),
    "Model extraction": ("Privacy", "copies the model through its query answers"),
}
"""Every attack the workbench can run: name → (family, what it does). A report lists the
ones its runs did not try."""
ADAPTIVE_CATALOGUE: dict[str, tuple[str, str]] = {
    "BPDA": (
        "Adaptive attacks on defenses",
        "gradients through non-differentiable preprocessing (Athalye et al. 2018)",
    ),
    "EOT": (
        "Adaptive attacks on defenses",
        "the expectation over a defense's randomness (Athalye et al. 2018)",
    ),
    "Joint detector attack": (
        "Adaptive attacks on defenses",
        "fools classifier and detector at once (Carlini & Wagner 2017)",
    ),
}
"""The attacks that adapt to a defense; a report lists the untried ones when a run is on a
defended model."""
INFERENCE_DEFENSE_KINDS = ("adversarial_detector", "input_preprocessing", "certified_robustness")
"""The pages that put a defense in front of the model themselves."""


@dataclass
class Report:
    """A report ready to export: its runs' sections in order and the generated notes."""

    title: str
    summary: str
    sections: list[RunSection]
    created: float = field(default_factory=time.time)
    missing: list[str] = field(default_factory=list)
    """Keys asked for that the store does not hold (deleted runs); said in the report."""

    @property
    def limitations(self) -> list[tuple[str, list[str]]]:
        """The "what this evaluation does not show" section (see :func:`limitations`)."""
        return limitations(self.sections)


def _dataset(name: str | None, fingerprint: str | None, datasets: dict[str, Dataset]) -> Any:
    """The run's dataset when it can be had here with the same content, else ``None``."""
    if not name:
        return None
    ds = datasets.get(name)
    if ds is None:
        from ..data import load

        try:
            ds = load(name)
        except (RobustcoreError, OSError, ValueError):
            return None
        datasets[name] = ds
    if fingerprint and ds.fingerprint() != fingerprint:
        return None
    return ds


def run_section(record: RunRecord, datasets: dict[str, Dataset] | None = None) -> RunSection:
    """One stored run as its report section (its page's charts and numbers).

    ``datasets``: datasets already loaded, by name (an uploaded one the session holds goes
    here; a built-in one is loaded when missing and cached in the dict)."""
    from ..experiments import EXPERIMENTS, load_all

    load_all()
    cls = EXPERIMENTS.get(record.kind)
    datasets = datasets if datasets is not None else {}
    ds = _dataset(record.spec.get("dataset"), record.spec.get("fingerprint"), datasets)
    title = cls.title if cls is not None else record.kind
    if cls is not None and record.spec.get("layout") == cls.layout:
        part = get_builder(record.kind)(cls.result(record), ds)
    else:  # a run stored by older code, or of a kind this version does not know
        from ..experiments.base import ExperimentResult

        part = generic(ExperimentResult(record), ds)
    return RunSection(
        key=record.key,
        kind=record.kind,
        title=title,
        label=record.label or f"{title} {record.key[:8]}",
        blocks=part.blocks,
        threat=part.threat,
        tried=set(part.tried),
        spec=record.spec,
        seed=record.seed,
        versions=record.versions,
        seconds=record.seconds,
        created=record.created,
    )


def resolve_keys(store: ResultStore, keys: list[str]) -> list[str]:
    """Full run keys from keys or unique prefixes (at least 6 characters), in order."""
    out: list[str] = []
    known = None
    for key in keys:
        key = str(key).strip()
        if store.get(key, any_status=True) is not None:
            out.append(key)
            continue
        if len(key) < 6:
            raise ValidationError(
                f"Run key {key!r} is too short: give the full key or at least 6 characters."
            )
        if known is None:
            known = store.list_runs(limit=100_000)["key"].tolist()
        found = [k for k in known if k.startswith(key)]
        if not found:
            raise ValidationError(f"No stored run has a key starting with {key!r}.")
        if len(found) > 1:
            raise ValidationError(
                f"{len(found)} runs have keys starting with {key!r}; give more characters."
            )
        out.append(found[0])
    return out


def build_report(
    store: ResultStore,
    keys: list[str],
    *,
    title: str = "Robustness evaluation",
    summary: str = "",
    datasets: dict[str, Dataset] | None = None,
) -> Report:
    """A report of the stored runs ``keys`` (in that order; repeated keys once).

    Failed and cancelled runs are refused (they hold no result); keys the store no longer
    holds are listed in :attr:`Report.missing` and said in the report.
    """
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise ValidationError(f"A report title is text of at most {MAX_TITLE} characters.")
    if not isinstance(summary, str) or len(summary) > MAX_SUMMARY:
        raise ValidationError(f"A report summary is text of at most {MAX_SUMMARY:,} characters.")
    unique = list(dict.fromkeys(keys))
    if not unique:
        raise ValidationError("A report needs at least one run: add runs from their pages.")
    if len(unique) > MAX_RUNS:
        raise ValidationError(f"A report holds at most {MAX_RUNS} runs; {len(unique)} were given.")
    sections, missing = [], []
    datasets = dict(datasets or {})
    for key in unique:
        record = store.get(key, any_status=True)
        if record is None:
            missing.append(key)
            continue
        if record.status != "done":
            raise ValidationError(
                f"Run {key[:12]} is {record.status}: only finished runs hold results to report."
            )
        sections.append(run_section(record, datasets))
    if not sections:
        raise ValidationError("None of the report's runs is in the result store any more.")
    return Report(title.strip() or "Robustness evaluation", summary, sections, missing=missing)


def target_text(target: dict[str, Any] | None) -> str:
    """A run's model in a few words, from its spec's target."""
    if not target:
        return "no model"
    if target.get("source") == "upload":
        name = f"uploaded model {target.get('fingerprint')}"
    else:
        recipe = target.get("recipe") or {}
        method = recipe.get("method", "standard")
        how = "" if method in (None, "standard") else f", {method}"
        epochs, seed = recipe.get("epochs"), recipe.get("seed")
        name = f"{target.get('arch')} ({epochs} epochs, seed {seed}{how})"
    inference = target.get("inference")
    if inference:
        from ..defenses.inference import InferenceDefense
        from ..errors import RobustcoreError

        try:
            name += f" + {InferenceDefense.from_spec(inference).describe()}"
        except RobustcoreError:
            name += f" + {inference.get('kind')}"
    return name


def _defended(target: dict[str, Any]) -> bool:
    """A run on a defended model: trained with a defense or behind an inference-time one."""
    method = (target.get("recipe") or {}).get("method")
    return bool(target.get("inference")) or method not in (None, "standard")


def limitations(sections: list[RunSection]) -> list[tuple[str, list[str]]]:
    """What the evaluation made of ``sections`` does not show, as (heading, points).

    * the threat models the runs assume (a result says nothing about a stronger attacker);
    * the workbench's attacks that no run tried, by family;
    * the sanity-check warnings the runs raised (numbers they contradict flatter the model);
    * the models and data the runs cover, and that each number is a sample estimate.
    """
    out: list[tuple[str, list[str]]] = []
    threats = list(dict.fromkeys(s.threat for s in sections if s.threat))
    if threats:
        out.append(
            (
                "Threat models assumed",
                threats
                + [
                    "An attacker with more knowledge, a larger budget, another norm or "
                    "more queries than these is not covered."
                ],
            )
        )
    tried = set().union(*(s.tried for s in sections))
    defended = [
        s
        for s in sections
        if _defended(s.spec.get("target") or {}) or s.spec.get("kind") in INFERENCE_DEFENSE_KINDS
    ]
    catalogue = {**ATTACK_CATALOGUE, **(ADAPTIVE_CATALOGUE if defended else {})}
    untried: dict[str, list[str]] = {}
    for name, (family, what) in catalogue.items():
        if name not in tried:
            untried.setdefault(family, []).append(f"{name} ({what})")
    points = [f"{family}: {'; '.join(names)}." for family, names in untried.items()]
    if defended:
        points.append(
            "The model is defended: its numbers hold only against the attacks above that "
            "adapt to the defense. A defense measured against a non-adaptive attack alone "
            "overstates what it buys (Athalye et al. 2018; Tramèr et al. 2020)."
        )
    out.append(("Attacks not tried", points or ["Every attack of the workbench was tried."]))
    warned = [
        f"{s.title} ({s.key[:8]}): {c.name}: {c.message}" for s in sections for c in s.warnings
    ]
    out.append(
        (
            "Sanity-check warnings raised",
            warned
            or [
                "None of the runs raised a sanity-check warning"
                + (
                    "."
                    if any(s.checks for s in sections)
                    else "; note that only some pages run sanity checks, and these runs ran none."
                )
            ],
        )
    )
    models = sorted({target_text(s.spec.get("target")) for s in sections})
    data = sorted({str(s.spec.get("dataset")) for s in sections})
    out.append(
        (
            "Scope",
            [
                f"Models: {'; '.join(models)}. Datasets: {', '.join(data)}. The results say "
                "nothing about other models, other data or the same model retrained.",
                "Every rate is measured on a sample of test images (the captions give how "
                "many): differences of a few points can be sampling noise.",
            ],
        )
    )
    return out
