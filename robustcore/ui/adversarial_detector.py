"""Streamlit pieces of the "Adversarial detector" page: the form (detector, the attack and
ε it is trained on, threshold, attacks to detect, adaptive attack) and the results (ROC per
attack, detection against ε, naive against adaptive attack, abstention cost, sanity
checks, tables and downloads)."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.adversarial_detector import (
    ATTACKS,
    AdversarialDetector,
    DetectorResult,
)
from ..viz.adversarial_detector import (
    abstention_tradeoff,
    adaptive_bars,
    detection_vs_eps,
    roc_curves,
)
from . import experiment
from .downloads import download_run, download_table
from .sanity import flagged, show_checks

SLOT = "detector"


def form(ds: Dataset, target: Target) -> AdversarialDetector | None:
    """The generated form; the experiment when Run was pressed."""
    exp = experiment.form(
        AdversarialDetector, ds, target, key="det", submit="Train and attack the detector"
    )
    st.caption(
        "The training attack crafts adversarial versions of the training images on the "
        "current model; the detector learns to tell them from the originals, and its "
        "threshold is set on other clean training images for the target false-positive "
        "rate. The test images are then attacked by FGSM and PGD over the ε grid and by "
        "C&W (the detector is scored on attacks and ε it never saw), and the adaptive "
        "attack, which knows the detector, attacks classifier and detector together at the "
        "training ε. The estimate below is for this machine; a run done before is shown at "
        "once from the result store."
    )
    return exp


def show_results(ds: Dataset, res: DetectorResult) -> None:
    """The headline numbers, the verdict, the four charts, the checks and the tables."""
    trained = ATTACKS[res.train_attack]
    at = "" if res.train_attack == "cw" else f" at ε={res.train_eps:g}"
    own = res.detection_at(res.train_attack, None if res.train_attack == "cw" else res.train_eps)
    cols = st.columns(4)
    cols[0].metric(
        f"AUC on {trained}{at}",
        f"{float(own['auc']):.3f}",
        help="Area under the ROC curve of clean test images against the adversarial "
        "examples of the attack the detector was trained on (0.5 = guessing).",
    )
    cols[1].metric(
        f"Naive PGD detected at ε={res.train_eps:g}",
        f"{res.naive_detection:.0%}",
        f"success {res.naive_success:.0%}",
        delta_color="off",
        delta_arrow="off",
        help="Share of the naive PGD examples that fool the classifier which the detector "
        "flags; success: misclassified and not flagged, of the images the model had right.",
    )
    failed = [c for c in res.sanity() if not c.passed]
    cols[2].metric(
        "Adaptive PGD success",
        f"{res.adaptive_success:.0%}",
        **flagged(
            failed,
            f"{res.adaptive_success - res.naive_success:+.0%} vs naive",
            f"Misclassified and not flagged, of the images the model had right; the "
            f"detector flags {res.adaptive_detection:.0%} of the adaptive examples that "
            "fool the classifier.",
            delta_color="inverse",
            where="the sanity checks below",
        ),
    )
    cols[3].metric(
        "Clean images abstained on",
        f"{res.clean_abstention:.1%}",
        f"guarded accuracy {res.guarded_accuracy:.1%} (model {res.clean_accuracy:.1%})",
        delta_color="off",
        delta_arrow="off",
        help=f"The threshold was set for {res.fpr:.1%} false positives on "
        f"{res.params()['n_cal']} clean calibration images; on the {res.n} clean test "
        "images this share is rejected. An abstention counts as an error.",
    )
    if res.adaptive_success >= max(0.5, res.naive_success):
        st.error(
            f"**Verdict: the detector does not stop an attacker who knows it.** Against "
            f"naive PGD it flags {res.naive_detection:.0%} of the examples that fool the "
            f"model; the adaptive attack (Carlini & Wagner 2017), within the same ε, gets a "
            f"wrong answer past it on {res.adaptive_success:.0%} of the images, and only "
            f"{res.adaptive_detection:.0%} of its examples are flagged."
        )
    else:
        st.warning(
            f"The adaptive attack gets past the guarded model on {res.adaptive_success:.0%} "
            "of the images: not a bypass at these settings. Before calling the detector "
            "robust, give the adaptive attack more steps, another loss or a larger λ."
        )
    st.plotly_chart(
        roc_curves(res.roc(), train_eps=res.train_eps, fpr=res.fpr),
        width="stretch",
        key="det_roc",
    )
    st.plotly_chart(
        detection_vs_eps(
            res.detection(), train_eps=res.train_eps, fpr=res.fpr, train_attack=trained
        ),
        width="stretch",
        key="det_eps",
    )
    st.plotly_chart(adaptive_bars(res.adaptive()), width="stretch", key="det_adaptive")
    st.plotly_chart(abstention_tradeoff(res.tradeoff()), width="stretch", key="det_tradeoff")
    st.markdown("**Sanity checks (Carlini et al. 2019), run without asking**")
    show_checks(res.sanity())
    with st.expander("Tables & downloads"):
        st.dataframe(res.detection(), hide_index=True, width="stretch")
        st.dataframe(res.adaptive(), hide_index=True, width="stretch")
        st.dataframe(res.tradeoff(), hide_index=True, width="stretch")
        st.dataframe(res.training(), hide_index=True, width="stretch")
        cols = st.columns(2)
        download_table(
            res.detection(), "detector_detection.csv", label="Detection (CSV)", container=cols[0]
        )
        download_run(res, "detector_run.json", container=cols[1])
        st.caption(
            f"Run key `{res.key}` · seed {res.seed} · threshold {res.threshold:.3g} · "
            f"computed in {res.seconds:.1f} s."
        )
