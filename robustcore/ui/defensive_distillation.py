"""Streamlit pieces of the "Defensive distillation" page: the form (temperatures, budget,
attacks) and the results (success against T, gradient norms, the sanity-check verdict,
per-temperature table and downloads)."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.defensive_distillation import (
    ADAPTIVE,
    CW,
    NAIVE,
    DefensiveDistillation,
    DistillationResult,
)
from ..viz.defensive_distillation import gradient_norm_histogram, success_vs_temperature
from . import experiment
from .downloads import download_json, download_table
from .sanity import flagged, show_checks

SLOT = "distillation"


def form(ds: Dataset, target: Target) -> DefensiveDistillation | None:
    """The generated form; the experiment when Run was pressed."""
    exp = experiment.form(
        DefensiveDistillation,
        ds,
        target,
        key="dist",
        submit="Distil and attack",
    )
    st.caption(
        "Distillation trains a teacher and a student with the current model's recipe "
        f"({target.training[1].epochs} epochs each). The teacher is the undefended model "
        "(from the model zoo), and one student serves every temperature: the student at T "
        "is the one trained at T = 1 with its logits multiplied by T. Each student is "
        "attacked with PGD-40 (naive and adaptive), C&W (the largest part) and a transfer "
        "attack. The estimate below is for this machine; a run done before is shown at once "
        "from the result store."
    )
    return exp


def show_results(ds: Dataset, res: DistillationResult) -> None:
    """The verdict, the two charts, the sanity checks and the tables."""
    top = res.top_temperature
    cols = st.columns(4)
    where = "the verdict and the sanity checks below"
    cols[0].metric(
        f"Naive PGD success at T={top:g}",
        f"{res.success_at(NAIVE, top):.0%}",
        **flagged(
            res.failed_checks(NAIVE),
            f"{res.success_at(NAIVE, top) - res.undefended_success:+.0%} vs undefended",
            f"On the undefended model the same attack succeeds on "
            f"{res.undefended_success:.0%} of the inputs it had right (ε={res.eps:g}).",
            delta_color="off",
            where=where,
        ),
    )
    cols[1].metric(
        f"Adaptive PGD success at T={top:g}",
        f"{res.success_at(ADAPTIVE, top):.0%}",
        delta_arrow="off",
        **flagged(res.failed_checks(ADAPTIVE), where=where),
    )
    if CW in set(res.success()["attack"]):
        cols[2].metric(f"C&W success at T={top:g}", f"{res.success_at(CW, top):.0%}")
    models = res.models()
    zero = float(models.loc[models["temperature"] == top, "zero_gradients"].iloc[0])
    cols[3].metric(
        f"Zero gradients at T={top:g}",
        f"{zero:.0%}",
        help="Inputs whose cross-entropy gradient underflows to exactly 0 in float32: the "
        "naive attack has nothing to follow there.",
    )
    if res.masked:
        st.error(
            "**Verdict: gradient masking, not robustness.** The sanity checks flag the "
            f"distilled model at T={top:g} (below): the naive attack's failure comes from "
            "vanishing gradients, and the adaptive attacks, which do not depend on them, "
            f"succeed ({res.success_at(ADAPTIVE, top):.0%} for PGD on logits ÷ T)."
        )
    else:
        st.success(
            "No sanity check flags the highest temperature: the naive attack is not masked "
            "here (try a higher T or a larger ε)."
        )
    st.plotly_chart(
        success_vs_temperature(res.success(), undefended=res.undefended_success, eps=res.eps),
        width="stretch",
        key="dist_success",
    )
    st.plotly_chart(gradient_norm_histogram(res.gradient_norms()), width="stretch", key="dist_grad")
    st.markdown("**Sanity checks (Carlini et al. 2019), run without asking**")
    show_checks(res.sanity())
    with st.expander("Tables & downloads"):
        st.dataframe(res.success(), hide_index=True, width="stretch")
        st.dataframe(models, hide_index=True, width="stretch")
        cols = st.columns(2)
        download_table(
            res.success(), "distillation_success.csv", label="Success (CSV)", container=cols[0]
        )
        download_json(res.as_json(), "distillation_run.json", label="Run (JSON)", container=cols[1])
        st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")
