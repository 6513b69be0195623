"""One run's report section, by kind: one module per page, named like the page.

Each module registers a builder per experiment of its page with :func:`builder`. A
builder gets the run's typed result (``Experiment.result(record)``) and the dataset it was
computed on (``None`` when that dataset cannot be loaded here, e.g. an uploaded file not
held by this session) and returns a :class:`Part`: the page's headline numbers, charts
(drawn by the page's own ``viz`` functions), tables and sanity checks, the threat model the
run assumes and the attacks it ran. A kind without a builder gets :func:`generic`: its
headline metrics and stored tables.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...data import Dataset
from ..blocks import Block, Metric, Metrics, Table

MODULES: tuple[str, ...] = (
    "home",
    "threat_models",
    "whitebox",
    "blackbox",
    "backdoors",
    "label_flipping",
    "poisoning_sanitization",
    "membership_inference",
    "model_inversion",
    "model_extraction",
    "postprocessing",
    "query_limitation",
    "adversarial_training",
    "defensive_distillation",
    "adversarial_detector",
    "input_preprocessing",
    "certified_robustness",
)
"""The section modules, in the order of the page map."""


@dataclass
class Part:
    """What a builder returns (see the module notes)."""

    blocks: list[Block]
    threat: str = ""
    tried: set[str] = field(default_factory=set)


Builder = Callable[[Any, Dataset | None], Part]
BUILDERS: dict[str, Builder] = {}


def builder(kind: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn`` as the report builder of experiment ``kind``."""

    def add(fn: Builder) -> Builder:
        BUILDERS[kind] = fn
        return fn

    return add


def load_all() -> None:
    """Import every section module (so that every builder is registered)."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")


def generic(res: Any, dataset: Dataset | None) -> Part:
    """A run of a kind without its own builder: its scalar metrics and stored tables."""
    metrics = tuple(
        Metric(name.replace("_", " "), f"{value:.4g}" if isinstance(value, float) else str(value))
        for name, value in res.summary().items()
    )
    blocks: list[Block] = [Metrics(metrics)] if metrics else []
    for name in res.record.table_names:
        blocks.append(Table(name, name.replace("_", " ").capitalize(), res.record.table(name)))
    return Part(blocks)


def flagged_note(failed: list[Any], note: str = "") -> str:
    """A metric's note with the flag of the failed sanity checks that concern its number
    ("⚠ not converged"), as the pages' metric cards carry it."""
    from ...evaluation.sanity import headline_flag

    flag = headline_flag(failed)
    return f"{note} · {flag}" if note and flag else note or flag


def get_builder(kind: str) -> Builder:
    """The builder of ``kind`` (:func:`generic` when the kind has none)."""
    load_all()
    return BUILDERS.get(kind, generic)
