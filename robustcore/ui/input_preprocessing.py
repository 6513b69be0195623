"""Streamlit pieces of the "Input preprocessing" page: the form (transforms and their
strengths, the attacks, feature squeezing) and the results (clean-accuracy cost, naive and
adaptive attacks against ε on one chart, the feature-squeezing ROC and the adaptive
attacker, the sanity-check verdict, tables and downloads)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..data import Dataset
from ..errors import RobustcoreError
from ..experiments import Target
from ..experiments.input_preprocessing import (
    BPDA,
    DETECT_ADAPTIVE,
    DETECT_CW,
    DETECT_PGD,
    EOT,
    NAIVE,
    UNDEFENDED,
    InputPreprocessing,
    PreprocessingResult,
)
from ..viz.input_preprocessing import accuracy_vs_eps, clean_cost_figure, detection_roc_figure
from . import experiment, notes
from .downloads import download_json, download_table
from .forms import param_values
from .sanity import flagged, show_checks

SLOT = "preprocessing"
KEY = "pre"
EVALUATION = ("eps", "n", "eot_samples", "seed")
SQUEEZING = ("squeezing", "squeeze", "n_calibration", "n_cw", "n_adaptive")


def start_values(target: Target) -> dict[str, Any]:
    """The form's starting values: the sidebar's preprocessing defense when the current
    model is behind one (so the page evaluates what every other page attacks)."""
    d = target.inference
    if d is not None and d.kind == "preprocessing":
        return {"defense": d.config.to_dict()}
    return {}


def form(ds: Dataset, target: Target) -> InputPreprocessing | None:
    """The controls; the experiment when Run was pressed (and its settings are valid).
    ``target`` is the model without its sidebar defense (the page puts its own in front)."""
    start = {**InputPreprocessing.defaults(ds), **start_values(target)}
    with st.form(f"{KEY}.form"):
        c1, c2 = st.columns(2)
        c1.markdown("**Transforms** (applied in this order; 0 = off)")
        drawn = param_values(
            InputPreprocessing,
            key=KEY,
            values=start,
            only=("defense",),
            container=c1,
            nested_in_expanders=False,
        )
        c2.markdown("**Attacks** (PGD at every ε: naive, BPDA, EOT for a random transform)")
        evaluation = param_values(
            InputPreprocessing, key=KEY, values=start, only=(*EVALUATION, "pgd"), container=c2
        )
        st.markdown("**Feature squeezing** (Xu et al. 2018) on the undefended model")
        s1, s2 = st.columns(2)
        squeezing = param_values(
            InputPreprocessing,
            key=KEY,
            values=start,
            only=("squeezing", "squeeze"),
            container=s1,
            nested_in_expanders=False,
        )
        sizes = param_values(
            InputPreprocessing,
            key=KEY,
            values=start,
            only=("n_calibration", "n_cw", "n_adaptive", "adaptive"),
            container=s2,
        )
        st.caption(
            "The naive attack differentiates the transforms as written (rounding has no "
            "gradient); BPDA (Athalye et al. 2018) uses the identity for the rounding and "
            "the window's mean for the median on the backward pass; EOT averages the "
            "model's probabilities over draws of the random transform. Feature squeezing "
            "sets its threshold on held-out clean test images and detects PGD (at the "
            "largest ε) and C&W examples of the undefended model; the adaptive attacker "
            "(He et al. 2017) minimises the misclassification margin plus λ times the "
            "squeezing score through the squeezers by BPDA. The estimate below is for this "
            "machine; a run done before is shown at once."
        )
        pressed = st.form_submit_button("Preprocess and attack", type="primary")
    if not pressed:
        return None
    values = {**start, **drawn, **evaluation, **squeezing, **sizes}
    exp = experiment.build(InputPreprocessing, values, target)
    if exp is None:
        return None
    try:
        exp.check_data(ds)
    except RobustcoreError as exc:
        st.error(str(exc))
        return None
    return exp


def show_results(ds: Dataset, res: PreprocessingResult) -> None:
    """The metrics, the verdict, the charts, feature squeezing, checks and tables."""
    top = res.eps_max
    where = "the verdict and the sanity checks below"
    cols = st.columns(4)
    cols[0].metric(
        "Clean accuracy behind the transforms",
        f"{res.defended_clean:.1%}",
        delta=f"{res.defended_clean - res.undefended_clean:+.1%} vs undefended",
        help=f"{res.defense}, on {res.n} test images; the undefended model has "
        f"{res.undefended_clean:.1%}.",
    )
    naive = res.accuracy_at(NAIVE)
    cols[1].metric(
        f"Naive PGD accuracy at ε={top:g}",
        f"{naive:.0%}",
        **flagged(
            res.failed_checks(NAIVE),
            "gradients as written",
            "PGD on the defended model with autograd through the transforms: rounding has "
            "a zero gradient, so the attack stalls.",
            delta_color="off",
            where=where,
        ),
    )
    cols[2].metric(
        f"BPDA PGD accuracy at ε={top:g}",
        f"{res.accuracy_at(BPDA):.0%}",
        **flagged(
            res.failed_checks(BPDA),
            f"{res.accuracy_at(BPDA) - naive:+.0%} vs naive",
            "PGD with Athalye et al.'s BPDA: the transforms' values on the forward pass, a "
            "differentiable approximation on the backward pass.",
            delta_color="off",
            where=where,
        ),
    )
    if res.random:
        cols[3].metric(
            f"EOT PGD accuracy at ε={top:g}",
            f"{res.accuracy_at(EOT):.0%}",
            delta=f"{res.accuracy_at(EOT) - naive:+.0%} vs naive",
            delta_color="off",
            help=f"BPDA with the gradient of the average over {res.eot_samples} draws of "
            "the random transform (Athalye et al. 2018); judged on one fresh draw per "
            "image, as the deployed model answers.",
        )
    else:
        cols[3].metric(
            f"Undefended PGD accuracy at ε={top:g}",
            f"{res.accuracy_at(UNDEFENDED):.0%}",
            help="The same PGD on the model without the transforms.",
        )
    notes.accuracy_basis(res.n, ds)
    level, text = res.verdict()
    {"error": st.error, "warning": st.warning, "success": st.success}[level](text)
    st.plotly_chart(
        accuracy_vs_eps(res.sweep(), defense=res.defense, chance=res.chance),
        width="stretch",
        key="pre_eps",
    )
    st.plotly_chart(clean_cost_figure(res.clean()), width="stretch", key="pre_clean")
    if res.squeezing:
        show_squeezing(res)
    st.markdown("**Sanity checks (Carlini et al. 2019), run without asking**")
    show_checks(res.sanity())
    st.caption(
        "To attack this defense on every other page, choose **Input preprocessing** under "
        "*Inference-time defense* in the sidebar: the pages then attack the model behind "
        "the transforms with gradients as written (the naive attacker)."
    )
    with st.expander("Tables & downloads"):
        st.dataframe(res.clean(), hide_index=True, width="stretch")
        st.dataframe(res.sweep(), hide_index=True, width="stretch")
        if res.squeezing:
            st.dataframe(res.detection(), hide_index=True, width="stretch")
        cols = st.columns(3)
        download_table(
            res.sweep(), "preprocessing_sweep.csv", label="Sweep (CSV)", container=cols[0]
        )
        if res.squeezing:
            download_table(
                res.detection(),
                "feature_squeezing.csv",
                label="Detection (CSV)",
                container=cols[1],
            )
        download_json(
            res.as_json(), "preprocessing_run.json", label="Run (JSON)", container=cols[2]
        )
        st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")


def show_squeezing(res: PreprocessingResult) -> None:
    """Feature squeezing: detection of the naive attacker, the adaptive attacker, the ROC."""
    st.markdown(
        f"**Feature squeezing** ({res.squeezers}): threshold {res.threshold:.3f} on the L1 "
        f"distance, set on {res.n_calibration} held-out clean images for "
        f"{res.target_fpr:.0%} false positives; it flags {res.clean_fpr:.1%} of the "
        f"{res.n} clean test images."
    )
    cols = st.columns(4)
    det = res.detection()

    def rate(attack: str, column: str) -> float:
        return float(det.loc[det["attack"] == attack, column].iloc[0])

    for col, attack, label in (
        (cols[0], DETECT_PGD, f"PGD (ε={res.eps_max:g}) detected"),
        (cols[1], DETECT_CW, "C&W detected"),
    ):
        col.metric(
            label,
            f"{rate(attack, 'detection_rate'):.0%}",
            help=f"Share of the naive attacker's successful adversarial examples "
            f"({int(rate(attack, 'adversarial'))}) the threshold flags; TPR at 5 % FPR on "
            f"this run's ROC: {rate(attack, 'tpr@5%fpr'):.0%}, AUC "
            f"{rate(attack, 'auc'):.3f}.",
        )
    cols[2].metric(
        "Adaptive attacker detected",
        f"{rate(DETECT_ADAPTIVE, 'detection_rate'):.0%}",
        delta=f"{rate(DETECT_ADAPTIVE, 'detection_rate') - rate(DETECT_CW, 'detection_rate'):+.0%}"
        " vs naive C&W",
        delta_color="off",
        help="He et al. (2017): C&W on the misclassification margin plus λ times the "
        "squeezing score, through the squeezers by BPDA, keeping what stays under the "
        "threshold.",
    )
    cols[3].metric(
        "Adaptive attacker's success",
        f"{rate(DETECT_ADAPTIVE, 'success_rate'):.0%}",
        delta=f"mean L2 {rate(DETECT_ADAPTIVE, 'mean_l2'):.2f} (C&W: "
        f"{rate(DETECT_CW, 'mean_l2'):.2f})",
        delta_color="off",
        help="Share of the attacked images (classified right) that the adaptive attacker "
        "both misclassifies and keeps under the threshold; the price is a larger "
        "perturbation.",
    )
    if not res.roc().empty:
        st.plotly_chart(
            detection_roc_figure(
                res.roc(), target_fpr=res.target_fpr, squeezers=res.squeezers, n_clean=res.n
            ),
            width="stretch",
            key="pre_roc",
        )
