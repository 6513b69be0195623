"""Streamlit pieces of the "Threat models" page: the form (drawn from the declaration of the
``threat_models`` experiment), the results and the explanations."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..data import Dataset
from ..evaluation.sanity import SanityCheck
from ..experiments import Target
from ..experiments.threat_models import ThreatModels, ThreatModelsResult
from ..viz.threat_models import explanations, threat_figure, threat_gallery, whitebox_verdict
from . import experiment
from .downloads import download_json, download_table
from .forms import param_values
from .sanity import flagged

SLOT = "tm.run"
MAIN = ("eps", "n", "query_budget", "label_budget")
"""Parameters shown in the form's first row; the others sit in an expander."""


def _widget(name: str, start: dict[str, Any], container: Any) -> Any:
    """The declared widget of one parameter (starting at the dataset's default)."""
    drawn = param_values(ThreatModels, key="tm", values=start, container=container, only=(name,))
    return drawn[name]


def form(ds: Dataset, target: Target) -> ThreatModels | None:
    """Draw the controls in a form; return the experiment when Run was pressed and valid."""
    start = ThreatModels.defaults(ds)
    rest = [p.name for p in ThreatModels.params() if p.name not in MAIN]
    values: dict[str, Any] = {}
    with st.form("tm_form"):
        cols = st.columns(len(MAIN))
        for col, name in zip(cols, MAIN, strict=True):
            values[name] = _widget(name, start, col)
        with st.expander("More settings: PGD steps, surrogate, which black-box attacks, seed"):
            left, right = st.columns(2)
            for i, name in enumerate(rest):
                values[name] = _widget(name, start, left if i % 2 == 0 else right)
        run = st.form_submit_button("Run threat models", type="primary")
    if not run:
        return None
    return experiment.build(ThreatModels, values, target)


def _whitebox_beaten(res: ThreatModelsResult) -> list[SanityCheck]:
    """Carlini et al.'s check of this page, when it failed: an attacker who knows less
    fooled more images than white-box PGD within the same ε."""
    if res.whitebox_beats_all:
        return []
    return [
        SanityCheck(
            "White-box at least as strong as every attacker who knows less",
            "warn",
            f"{', '.join(res.beats_whitebox)} beat white-box PGD within the same ε.",
        )
    ]


def results(ds: Dataset, res: ThreatModelsResult) -> None:
    """Metrics, the knowledge/cost chart, the verdict, explanations, table, gallery and
    downloads."""
    cols = st.columns(5)
    cols[0].metric("Clean accuracy", f"{res.clean_accuracy:.1%}", help="On the whole test split.")
    labels = {"white-box": "White-box", "gray-box": "Gray-box", "label-only": "Label-only"}
    for col, (threat, title) in zip([cols[1], cols[2], cols[4]], labels.items(), strict=True):
        r = res.row(threat)
        if r is not None:
            failed = _whitebox_beaten(res) if threat == "white-box" else []
            col.metric(
                f"{title} success",
                f"{r['success_rate']:.0%}",
                delta_arrow="off",
                **flagged(failed, "", r["attack"], where="the warning below the chart"),
            )
    top = res.best_black_box()
    if top is not None:
        cols[3].metric(
            "Black-box success within ε",
            f"{top['success_within_eps']:.0%}",
            help=f"{top['attack']}; {top['success_rate']:.0%} with any perturbation size.",
        )
    st.caption(
        f"Clean accuracy on all {ds.n_test:,} test images (as on Home); success rates on the "
        f"{res.n:,} correctly classified test images every attacker tries."
    )
    table = res.threats()
    st.plotly_chart(threat_figure(table, eps=res.eps), width="stretch", key="tm_chart")
    passed, verdict = whitebox_verdict(res)
    (st.success if passed else st.warning)(verdict)
    for title, text in explanations(res):
        with st.expander(title, expanded=True):
            st.markdown(text)
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        "success_rate: images the model classified correctly that it misclassifies after "
        "the attack; success_within_eps: the same, counting only perturbations inside the "
        "L∞ ε-ball; queries_total includes the label-only attacker's training queries; "
        "setup_seconds is the surrogate's training time, paid once (recorded when it was "
        "trained, even if it is loaded from the model zoo now)."
    )
    clean, advs, gallery, order = res.gallery()
    if advs and ds.modality == "image":
        fig = threat_gallery(clean, advs, gallery, order=order)
        st.plotly_chart(fig, width="stretch", key="tm_gallery")
    dl = st.columns(2)
    download_table(table, "threat_models.csv", label="Table (CSV)", container=dl[0])
    download_json(res.as_json(), "threat_models_run.json", label="Run (JSON)", container=dl[1])
