"""Streamlit pieces of the "Certified robustness" page: the form (noise levels, samples,
α, images, the empirical attack) and the results (certified vs empirical accuracy against
the L2 radius, clean accuracy and abstentions per σ, the sanity check, tables and
downloads)."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.certified_robustness import CertifiedResult, CertifiedRobustness
from ..viz.certified_robustness import BOUND_NOTE, certified_vs_radius, clean_accuracy_bars
from . import experiment
from .downloads import download_json, download_table
from .sanity import flagged, show_checks

SLOT = "certified"


def form(ds: Dataset, target: Target) -> CertifiedRobustness | None:
    """The generated form; the experiment when Run was pressed."""
    exp = experiment.form(CertifiedRobustness, ds, target, key="cert", submit="Certify and attack")
    st.caption(
        "Each σ trains a base model with Gaussian input noise of that σ from the current "
        f"model's recipe ({target.training[1].epochs} epochs, through the model zoo), then "
        "certifies every test image (n0 + n noisy forward passes each) and attacks the first "
        "ones with PGD-L2 on the smoothed classifier (each step averaged over the noise "
        "draws), judged by PREDICT with n more passes. The estimate below is for this "
        "machine; a run done before is shown at once from the result store."
    )
    return exp


def show_results(ds: Dataset, res: CertifiedResult) -> None:
    """Headline numbers per σ, the two charts, the sanity check and the tables."""
    radii = res.radii
    r_ref = radii[len(radii) // 2] if radii else 0.0
    sigmas = res.sigmas
    for start in range(0, len(sigmas), 4):
        cols = st.columns(4)
        for col, sigma in zip(cols, sigmas[start : start + 4], strict=False):
            row = res.row(sigma)
            col.metric(
                f"Certified at r={r_ref:g}, σ={sigma:g}",
                f"{res.certified_at(sigma, r_ref):.0%}",
                **flagged(
                    res.failed_checks(sigma),
                    f"PGD-L2: {res.empirical_at(sigma, r_ref):.0%} empirical",
                    f"Certified accuracy: the share of the {res.images} test images certified "
                    f"on their true class with an L2 radius of at least {r_ref:g} (n = "
                    f"{res.n:,}, α = {res.alpha:g}). Empirical: PREDICT's accuracy on PGD-L2 "
                    f"examples of the first {res.attack_images} at that radius. CERTIFY "
                    f"abstained on {row['certify_abstain_rate']:.0%}; the average certified "
                    f"radius is {row['acr']:.3f}.",
                    delta_color="off",
                    where="the sanity check below",
                ),
            )
    cols = st.columns(4)
    for col, sigma in zip(cols, sigmas[:4], strict=False):
        row = res.row(sigma)
        col.metric(
            f"Smoothed clean accuracy, σ={sigma:g}",
            f"{row['smoothed_accuracy']:.0%}",
            f"base model {row['base_clean_accuracy']:.0%}",
            delta_color="off",
            help=f"PREDICT on the clean test images (abstains on "
            f"{row['predict_abstain_rate']:.0%}, counted as wrong) against the noise-trained "
            f"base model without noise. The current model: {res.reference_accuracy:.0%}.",
        )
    st.plotly_chart(
        certified_vs_radius(res.curve(), res.empirical()), width="stretch", key="cert_curve"
    )
    st.caption(BOUND_NOTE)
    st.plotly_chart(
        clean_accuracy_bars(res.summary_table(), reference=res.reference_accuracy),
        width="stretch",
        key="cert_clean",
    )
    st.markdown("**Sanity check: the certificate is a lower bound**")
    show_checks(res.sanity())
    with st.expander("Tables & downloads"):
        st.dataframe(res.summary_table(), hide_index=True, width="stretch")
        st.dataframe(res.empirical(), hide_index=True, width="stretch")
        cols = st.columns(3)
        download_table(
            res.certificates(), "certificates.csv", label="Certificates (CSV)", container=cols[0]
        )
        download_table(
            res.empirical(), "certified_empirical.csv", label="Empirical (CSV)", container=cols[1]
        )
        download_json(res.as_json(), "certified_run.json", label="Run (JSON)", container=cols[2])
        st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")
