"""Streamlit pieces of the "Model extraction" page: the sweep form (budgets, API outputs,
query sources, the student) and the results (accuracy and fidelity against the budget,
the curve as a table, downloads)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..attacks.extraction import ModelStealing, describe_source
from ..data import Dataset
from ..experiments import Target
from ..experiments.model_extraction import (
    SUGGESTED_BUDGETS,
    ModelExtraction,
    ModelExtractionResult,
    sources_for,
)
from ..viz.model_extraction import SOURCE_TITLES, extraction_curves
from . import experiment, notes
from .downloads import download_json, download_table
from .forms import param_values

SLOT = "extraction"


def form(ds: Dataset, target: Target) -> ModelExtraction | None:
    """The controls; the experiment when Run was pressed (and its settings are valid)."""
    cls = ModelExtraction
    info = {p.name: p for p in cls.params()}
    defaults = cls.defaults(ds)
    raw: dict[str, Any] = {}
    with st.form("ext_form"):
        cols = st.columns(3)
        raw["budgets"] = cols[0].multiselect(
            info["budgets"].title,
            sorted({*SUGGESTED_BUDGETS, *defaults["budgets"]}),
            default=list(defaults["budgets"]),
            key="ext_budgets",
            help=info["budgets"].help,
        )
        raw |= param_values(cls, key="ext", only=("outputs",), container=cols[1])
        raw["query_sources"] = cols[2].multiselect(
            info["query_sources"].title,
            list(sources_for(ds)),
            default=list(defaults["query_sources"]),
            format_func=lambda s: SOURCE_TITLES[s],
            key="ext_sources",
            help=info["query_sources"].help,
        )
        with st.expander(info["student"].title):
            raw["student"] = param_values(ModelStealing, key="ext.student")
        pressed = st.form_submit_button("Run model stealing", type="primary")
    for s in raw["query_sources"]:
        st.caption(f"**{SOURCE_TITLES[s]}**: {describe_source(ds, s)}.")
    if not pressed:
        return None
    return experiment.build(cls, raw, target)


def show_results(ds: Dataset, result: ModelExtractionResult) -> None:
    """Headline metrics, skipped budgets, the two-panel curve, the table and downloads."""
    curve = result.curve()
    best = result.best()
    cols = st.columns(4)
    cols[0].metric(
        "Target accuracy", f"{result.target_accuracy:.1%}", help="The model being stolen."
    )
    cols[1].metric(
        "Best fidelity",
        f"{best['fidelity']:.1%}",
        help=f"{best['output']}, {SOURCE_TITLES[best['query_source']]}, "
        f"{int(best['budget']):,} queries.",
    )
    cols[2].metric("Its accuracy", f"{best['accuracy']:.1%}", help="The same stolen model's.")
    cols[3].metric(
        "Stolen models", f"{result.n_students}", help=f"Computed in {result.seconds:.1f} s."
    )
    notes.accuracy_basis(ds.n_test, ds)
    for src, skipped in result.skipped_budgets().items():
        st.warning(
            f"Budgets {', '.join(f'{b:,}' for b in skipped)} skipped for {SOURCE_TITLES[src]}: "
            f"its pool holds fewer distinct inputs ({describe_source(ds, src)})."
        )
    fig = extraction_curves(curve, target_accuracy=result.target_accuracy, chance=result.chance)
    st.plotly_chart(fig, width="stretch", key="ext_curves")
    st.caption(
        "Solid lines: the API returns probabilities; dashed: only the top-1 label. A label "
        "carries less information per query, which shows most with queries far from the "
        "target's data (other dataset, noise); on in-distribution images the target is so "
        "confident that its probabilities are nearly one-hot and the two lines almost meet."
    )
    st.dataframe(curve, hide_index=True, width="stretch")
    st.caption(
        "Every stolen model is stored in the model zoo: `robustcore.models.lookup(zoo_key)` "
        "returns it, e.g. as a surrogate for a transfer attack."
    )
    dl = st.columns(2)
    download_table(curve, "extraction_curve.csv", label="Curve (CSV)", container=dl[0])
    download_json(result.as_json(), "extraction_run.json", label="Run (JSON)", container=dl[1])
