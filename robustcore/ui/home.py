"""The Home page's view of the current model: accuracy, curves, confusion, samples."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments.train import TrainResult
from ..viz import confusion_matrix_figure, image_grid, training_curves
from ..viz.home import sample_titles, train_name
from . import notes, reports
from .downloads import download_json, download_table, download_zoo_weights
from .state import ModelRef


def _metrics_row(result: TrainResult, ds: Dataset) -> None:
    cols = st.columns(4)
    cols[0].metric(
        "Clean test accuracy",
        f"{result.clean_accuracy:.1%}",
        help=f"On {result.n_test:,} held-out test examples.",
    )
    chance = 1.0 / ds.num_classes
    cols[1].metric("Chance level", f"{chance:.1%}", help="Accuracy of guessing the class.")
    if result.train_accuracy is not None:
        gap = result.train_accuracy - result.clean_accuracy
        on = result.training_inputs
        if on == "the training set":
            cols[2].metric(
                "Training accuracy",
                f"{result.train_accuracy:.1%}",
                delta=f"gap {gap:+.1%}",
                delta_color="off",
                help="Accuracy on the training set during the last epoch; a large gap "
                "to test accuracy means overfitting (and more membership leakage).",
            )
        else:
            # Measured on perturbed inputs: below clean accuracy, and no overfitting gap.
            cols[2].metric(
                "Training accuracy (perturbed)",
                f"{result.train_accuracy:.1%}",
                help=f"Accuracy on {on} during the last epoch, not on clean images, so "
                "it is lower than the clean test accuracy; that difference is the cost "
                "of the perturbation, not a sign of overfitting.",
            )
        cols[3].metric(
            "Training time",
            f"{result.train_seconds:.1f} s",
            help="Wall time of the training run that produced this model (cached "
            "afterwards in the model zoo).",
        )
    else:
        cols[2].metric("Test examples", f"{result.n_test:,}")
    notes.accuracy_basis(result.n_test, ds, home=True)


def model_overview(result: TrainResult, ds: Dataset, ref: ModelRef) -> None:
    """Draw everything the Home page shows about the current model."""
    st.subheader(f"Current model: {ref.title}")
    reports.result_actions(result.record, "home.model")
    _metrics_row(result, ds)
    if ref.defense is not None:
        st.caption(
            f"These numbers are the model's own, without its inference-time defense "
            f"(**{ref.defense.describe()}**); every other page attacks it behind the defense. "
            "The defense's cost in clean accuracy is on the scorecard and the White-box page."
        )
    if result.method_label:
        st.caption(
            f"Trained by **{result.method_label}**; the whole recipe is under *Reproduce & "
            "download*. Defended models are trained on the Adversarial training page or "
            "with the sidebar's *Training method*."
        )
    if result.watchdog:
        st.warning(f"**Watchdog** — {result.watchdog}")
    tabs = st.tabs(
        [
            "Training curves",
            "Confusion matrix",
            "Sample predictions",
            "Per-class accuracy",
            "Reproduce & download",
        ]
    )
    with tabs[0]:
        history = result.history()
        if history is not None and len(history):
            st.plotly_chart(
                training_curves(history, train_name=train_name(result.training_inputs)),
                width="stretch",
                key="home_curves",
            )
        else:
            st.info("An uploaded model has no training curves.")
    with tabs[1]:
        cm = result.confusion()
        st.plotly_chart(
            confusion_matrix_figure(cm.to_numpy(), list(cm.columns)),
            width="stretch",
            key="home_confusion",
        )
    with tabs[2]:
        samples = result.samples()
        st.caption(
            "Test images: the model's most confident mistakes first (up to half the grid), "
            "then correctly classified ones; ✓/✗ marks whether the prediction is right."
        )
        imgs = result.sample_images()
        if ds.modality == "image" and imgs is not None:
            titles = sample_titles(samples)
            st.plotly_chart(image_grid(imgs, titles, ncols=8), width="stretch", key="home_samples")
        st.dataframe(samples, hide_index=True, width="stretch")
    with tabs[3]:
        st.dataframe(
            result.per_class(),
            hide_index=True,
            width="stretch",
            column_config={
                "accuracy": st.column_config.ProgressColumn(
                    "accuracy", min_value=0.0, max_value=1.0, format="percent"
                )
            },
        )
    with tabs[4]:
        st.caption(
            f"Run key `{result.key}` · seed {result.seed} · computed in {result.seconds:.1f} s. "
            "The spec and library versions below reproduce it."
        )
        st.json({"spec": result.spec, "versions": result.versions}, expanded=False)
        cols = st.columns(3)
        download_json(
            result.as_json(),
            "run.json",
            label="Run (JSON)",
            container=cols[0],
        )
        if history is not None:
            download_table(
                history, "training_history.csv", label="Training history (CSV)", container=cols[1]
            )
        if ref.zoo_key:
            download_zoo_weights(
                ref.zoo_key,
                f"{ref.arch}_{ref.dataset}.pt",
                label="Model weights (.pt)",
                container=cols[2],
            )
