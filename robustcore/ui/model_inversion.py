"""Streamlit pieces of the "Model inversion" page: the MIFace form (the descent in one
column, the priors and stopping rule in the other) and the results (metrics,
reconstructions next to the class means, the descent, per-class table and downloads)."""

from __future__ import annotations

import streamlit as st

from ..attacks.inference.inversion import MIFace
from ..data import Dataset
from ..experiments import Target
from ..experiments.model_inversion import ModelInversion, ModelInversionResult
from ..reports.sections.model_inversion import reconstructions_figure
from ..viz.model_inversion import inversion_progress
from . import experiment
from .downloads import download_bytes, download_json, download_table
from .forms import param_values

SLOT = "inversion"
DESCENT = ("steps", "lr", "loss", "threshold")
PRIORS = ("tv_weight", "l2_weight", "init", "seed", "patience")


def form(ds: Dataset, target: Target) -> ModelInversion | None:
    """The controls; the experiment when Run was pressed (and its settings are valid)."""
    with st.form("inv_form"):
        st.markdown("**MIFace settings** (the defaults are the paper's: cost 1 − p, no prior)")
        cols = st.columns(2)
        miface = param_values(MIFace, key="inv", only=DESCENT, container=cols[0])
        miface |= param_values(MIFace, key="inv", only=PRIORS, container=cols[1])
        pressed = st.form_submit_button("Run model inversion", type="primary")
    if not pressed:
        return None
    return experiment.build(ModelInversion, {"miface": miface}, target)


def show_results(ds: Dataset, result: ModelInversionResult) -> None:
    """Metrics, the reconstruction grid (or feature heat maps), the descent and downloads."""
    table = result.per_class()
    names = [str(c) for c in ds.class_names]
    cols = st.columns(4)
    cols[0].metric(
        "Mean confidence",
        f"{result.mean_confidence:.1%}",
        help="The model's probability of the target class for its reconstruction, on average.",
    )
    cols[1].metric(
        "Correlation with class mean",
        f"{result.mean_correlation:.2f}",
        delta=f"real images: {result.real_images_correlation:.2f}",
        delta_color="off",
        delta_arrow="off",
        help="Pearson correlation of each reconstruction with the mean of its class's training "
        "inputs; for comparison, the average correlation of a real training input with it.",
    )
    cols[2].metric(
        "Classes identified",
        f"{result.identification_rate:.0%}",
        help="Reconstructions that are closer (by correlation) to their own class mean than to "
        "any other class's mean.",
    )
    cols[3].metric("Gradient steps", f"{result.mean_steps:.0f}", help="Average per class.")
    st.caption(
        "What to expect on mnist5k (a real training digit correlates about 0.67 with its class "
        "mean): on **logistic regression** and the **MLP** the reconstructions look like "
        "blurred class templates (correlation 0.5–0.6; a total-variation prior of 0.002 "
        "smooths them and raises it further); on a **CNN** MIFace finds high-confidence "
        "*adversarial-looking* strokes rather than a recognisable digit (correlation about "
        "0.2, and the prior does not help), although each is still closest to its own "
        "class's mean."
    )
    tabs = st.tabs(["Reconstructions", "Descent", "Per class & downloads"])
    with tabs[0]:
        fig = reconstructions_figure(result, names)
        st.plotly_chart(fig, width="stretch", key="inv_grid")
    with tabs[1]:
        st.plotly_chart(inversion_progress(result.history()), width="stretch", key="inv_hist")
    with tabs[2]:
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(f"Run key `{result.key}` · seed {result.seed} · {result.seconds:.1f} s.")
        dl = st.columns(3)
        download_table(table, "inversion_per_class.csv", label="Per class (CSV)", container=dl[0])
        download_json(result.as_json(), "inversion_run.json", label="Run (JSON)", container=dl[1])
        download_bytes(
            result.reconstructions_npy(),
            "reconstructions.npy",
            mime="application/octet-stream",
            label="Reconstructions (.npy)",
            container=dl[2],
        )
