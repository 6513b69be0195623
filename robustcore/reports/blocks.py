"""The pieces a run's report is made of.

A page draws a run's result with Streamlit; a report, the run history and the comparison
page draw the same run from these blocks instead, so that one description of "what this
run shows" serves the browser, the HTML and PDF files and the CLI:

* :class:`Metrics`: a row of headline numbers (label, formatted value, a short note);
* :class:`Chart`: a Plotly figure with a stable ``id`` (the same chart of two runs of one
  kind has the same id, which is how the comparison page overlays them);
* :class:`Table`: a DataFrame with a title;
* :class:`Text`: a paragraph of Markdown (what the chart means);
* :class:`Checks`: the run's sanity checks (Carlini et al. 2019) with their verdicts.

:class:`RunSection` holds one run's blocks with what a report needs to say what the run
does *not* show: the threat model it assumes and the attacks it tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..evaluation.sanity import SanityCheck


@dataclass(frozen=True)
class Metric:
    """One headline number: ``value`` is already formatted ("93.4 %", "0.91")."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Metrics:
    """A row of headline numbers."""

    items: tuple[Metric, ...]
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """A Plotly figure. ``id`` names the chart within its kind ("sweep", "roc"): charts
    of several runs with the same id are drawn together on the comparison page."""

    id: str
    figure: go.Figure
    caption: str = ""


@dataclass(frozen=True)
class Table:
    """A DataFrame with its title; ``id`` as for :class:`Chart`."""

    id: str
    title: str
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph of Markdown."""

    markdown: str


@dataclass(frozen=True)
class Checks:
    """Sanity checks with their verdicts (``warn`` ones are listed as warnings raised)."""

    checks: tuple[SanityCheck, ...]


Block = Metrics | Chart | Table | Text | Checks


@dataclass
class RunSection:
    """One run's part of a report.

    Attributes:
        key: the run key.
        kind: the experiment's name.
        title: the experiment's title ("White-box attacks").
        label: what the run was (its stored label: experiment, model and dataset).
        blocks: what the run shows, in page order.
        threat: the threat model the run assumes, in one or two plain sentences (what the
            attacker knows, can change and is measured by).
        tried: the attacks (and adaptive attacks) the run actually ran, by the names of
            :data:`robustcore.reports.document.ATTACK_CATALOGUE`.
        spec: the run's spec; ``seed``, ``versions``, ``seconds`` and ``created`` as
            stored (for the appendix).
    """

    key: str
    kind: str
    title: str
    label: str
    blocks: list[Block] = field(default_factory=list)
    threat: str = ""
    tried: set[str] = field(default_factory=set)
    spec: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    created: float = 0.0

    @property
    def checks(self) -> list[SanityCheck]:
        """Every sanity check of the run's :class:`Checks` blocks."""
        return [c for b in self.blocks if isinstance(b, Checks) for c in b.checks]

    @property
    def warnings(self) -> list[SanityCheck]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "warn"]

    @property
    def charts(self) -> list[Chart]:
        return [b for b in self.blocks if isinstance(b, Chart)]

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


def pct(value: Any, digits: int = 1) -> str:
    """A rate as a percentage ("93.4 %"); "–" when missing."""
    try:
        return f"{float(value) * 100:.{digits}f} %"
    except (TypeError, ValueError):
        return "–"


def num(value: Any, fmt: str = ".3g") -> str:
    """A number formatted with ``fmt``; "–" when missing."""
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return "–"


def accuracy_basis(n: int, total: int | None, *, home: bool = False) -> str:
    """The caption under a row of accuracies: on how many test images they were measured
    (``total``: the test split's size, ``None`` when unknown), so that a clean accuracy on a
    subset is never read as a different model from Home's (``home``: on Home itself)."""
    if total is None:
        return f"Accuracies on {n:,} test images."
    if n >= total:
        return f"Accuracies on all {total:,} test images" + ("." if home else " (as on Home).")
    return (
        f"Accuracies on {n:,} of the {total:,} test images (a seeded random subset, the "
        f"same for every model at this seed). Home's clean accuracy uses all {total:,}, so "
        "the two can differ by sampling noise."
    )
