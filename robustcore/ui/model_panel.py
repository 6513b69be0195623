"""The Home page's view of the current model: accuracy, curves, confusion, samples."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..models.zoo import zoo_dir
from ..runs import RunRecord
from ..viz import confusion_matrix_figure, image_grid, training_curves
from .downloads import download_bytes, download_json, download_table
from .state import ModelRef


def _metrics_row(record: RunRecord, ds: Dataset) -> None:
    m = record.metrics
    cols = st.columns(4)
    cols[0].metric(
        "Clean test accuracy",
        f"{m['clean_accuracy']:.1%}",
        help=f"On {m['n_test']:,} held-out test examples.",
    )
    chance = 1.0 / ds.num_classes
    cols[1].metric("Chance level", f"{chance:.1%}", help="Accuracy of guessing the class.")
    if "train_accuracy" in m:
        gap = m["train_accuracy"] - m["clean_accuracy"]
        cols[2].metric(
            "Training accuracy",
            f"{m['train_accuracy']:.1%}",
            delta=f"gap {gap:+.1%}",
            delta_color="off",
            help="Accuracy on the training set during the last epoch; a large gap "
            "to test accuracy means overfitting (and more membership leakage).",
        )
        cols[3].metric(
            "Training time",
            f"{m['train_seconds']:.1f} s",
            help="Wall time of the training run that produced this model (cached "
            "afterwards in the model zoo).",
        )
    else:
        cols[2].metric("Test examples", f"{m['n_test']:,}")


def model_overview(record: RunRecord, ds: Dataset, ref: ModelRef) -> None:
    """Draw everything the Home page shows about the current model."""
    st.subheader(f"Current model: {ref.label}")
    _metrics_row(record, ds)
    names = record.table_names if hasattr(record, "table_names") else None
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
        if names is None or "history" in names:
            try:
                history = record.table("history")
            except KeyError:
                history = None
        else:
            history = None
        if history is not None and len(history):
            st.plotly_chart(training_curves(history), width="stretch", key="home_curves")
        else:
            st.info("An uploaded model has no training curves.")
    with tabs[1]:
        cm = record.table("confusion")
        st.plotly_chart(
            confusion_matrix_figure(cm.to_numpy(), list(cm.columns)),
            width="stretch",
            key="home_confusion",
        )
    with tabs[2]:
        samples = record.table("samples")
        st.caption(
            "Test images: the model's most confident mistakes first (up to half the grid), "
            "then correctly classified ones; ✓/✗ marks whether the prediction is right."
        )
        if ds.modality == "image" and "sample_images" in record.artifact_names:
            imgs = record.artifact("sample_images")
            titles = [
                f"{'✓' if t == p else '✗'} true {t} · pred {p} ({c:.0%})"
                for t, p, c in zip(
                    samples["true"], samples["predicted"], samples["confidence"], strict=True
                )
            ]
            st.plotly_chart(image_grid(imgs, titles, ncols=8), width="stretch", key="home_samples")
        st.dataframe(samples, hide_index=True, width="stretch")
    with tabs[3]:
        st.dataframe(
            record.table("per_class"),
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
            f"Run key `{record.key}` · seed {record.seed} · computed in {record.seconds:.1f} s. "
            "The spec and library versions below reproduce it."
        )
        st.json({"spec": record.spec, "versions": record.versions}, expanded=False)
        cols = st.columns(3)
        download_json(
            {
                "key": record.key,
                "spec": record.spec,
                "metrics": record.metrics,
                "versions": record.versions,
                "seed": record.seed,
            },
            "run.json",
            label="Run (JSON)",
            container=cols[0],
        )
        if history is not None:
            download_table(
                history, "training_history.csv", label="Training history (CSV)", container=cols[1]
            )
        if ref.zoo_key:
            weights = zoo_dir() / ref.zoo_key / "model.pt"
            if weights.exists():
                download_bytes(
                    weights.read_bytes(),
                    f"{ref.arch}_{ref.dataset}.pt",
                    mime="application/octet-stream",
                    label="Model weights (.pt)",
                    container=cols[2],
                )
