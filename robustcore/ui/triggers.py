"""Streamlit pieces shared by the poisoning pages (Backdoors, Label flipping, Poisoning
sanitization): the trigger designer, the victims' architecture, class and sweep-value
pickers, result tables, galleries and downloads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ..attacks.poisoning import Trigger
from ..data import Dataset
from ..errors import RobustcoreError, ValidationError
from ..experiments.base import Experiment, ExperimentResult, Target
from ..models import ARCHITECTURES, compatible_architectures
from ..viz import image_grid
from ..viz.backdoors import gallery_titles
from ..viz.figures import NARROW_PX
from . import experiment
from .downloads import download_json, download_table
from .forms import param_form

E = TypeVar("E", bound=Experiment)

PERCENT_COLUMNS = (
    "clean_accuracy",
    "attack_success",
    "triggered_accuracy",
    "baseline_attack_success",
    "accuracy",
    "class_a_accuracy",
    "a_predicted_as_b",
)


def victim_arch(ds: Dataset, target: Target, *, key: str) -> str | None:
    """The architecture every poisoned model is trained with (the experiments'
    ``victim_arch``): ``None`` (the current model's) when the current model was trained
    here, so the clean reference comes from the zoo at once; otherwise a built-in
    architecture chosen on the page."""
    arch, recipe = target.training
    if target.source == "zoo" and arch is not None:
        st.caption(
            f"Every poisoned model is trained from scratch like the current model: "
            f"**{ARCHITECTURES[arch].title}**, {recipe.epochs} epochs, lr {recipe.lr:g}, "
            f"seed {recipe.seed} (change it in the sidebar). Models are kept in the model zoo, "
            "so only new settings train."
        )
        return None
    archs = compatible_architectures(ds.modality, ds.input_shape)
    st.info(
        "The current model was uploaded, so its training recipe is unknown: poisoning "
        "needs to train models, so pick a built-in architecture to train them with "
        f"({recipe.epochs} epochs, lr {recipe.lr:g}, seed {recipe.seed})."
    )
    return st.selectbox(
        "Architecture of the poisoned models",
        archs,
        index=archs.index(arch) if arch in archs else 0,
        format_func=lambda a: ARCHITECTURES[a].title,
        key=f"{key}.arch",
    )


def class_select(ds: Dataset, label: str, default: int, *, key: str, container: Any = st) -> int:
    """A select box over the dataset's classes (shown by name), returning the index."""
    names = [str(c) for c in ds.class_names]
    return container.selectbox(
        label,
        list(range(ds.num_classes)),
        index=min(default, ds.num_classes - 1),
        format_func=lambda i: f"{i}: {names[i]}" if names[i] != str(i) else names[i],
        key=key,
    )


def values_select(
    label: str,
    choices: Sequence[float],
    defaults: Sequence[float],
    *,
    key: str,
    pct: bool,
    help: str | None = None,
    container: Any = st,
) -> list[float]:
    """A multiselect of sweep values (the offered choices plus the defaults)."""
    fmt = (lambda v: f"{v:.1%}".replace(".0%", "%")) if pct else (lambda v: f"{v:g}")
    options = sorted({*choices, *defaults})
    return container.multiselect(
        label, options, default=list(defaults), format_func=fmt, key=key, help=help
    )


def _trigger_widgets(ds: Dataset, key: str, values: Mapping[str, Any] | None) -> Trigger | None:
    trigger = param_form(Trigger, key=key, values=values)
    if trigger is None:
        return None
    try:
        trigger.build(ds.input_shape, ds.bounds)
    except ValidationError as exc:
        st.error(str(exc))
        return None
    return trigger


def trigger_form(
    ds: Dataset, *, key: str, values: Mapping[str, Any] | None = None
) -> Trigger | None:
    """The trigger's widgets (no preview); ``None`` with a message if it is invalid."""
    return _trigger_widgets(ds, key, values)


def trigger_designer(
    ds: Dataset, *, key: str, values: Mapping[str, Any] | None = None
) -> Trigger | None:
    """Trigger widgets with a live preview on test inputs; ``None`` if the trigger is invalid."""
    left, right = st.columns([1, 2])
    with left:
        trigger = _trigger_widgets(ds, key, values)
    if trigger is None:
        return None
    stamp = trigger.build(ds.input_shape, ds.bounds)
    with right:
        if ds.modality == "image":
            y = ds.y_test
            pick = [int(torch.nonzero(y == c)[0]) for c in range(ds.num_classes) if (y == c).any()]
            pick = pick[:6]
            x = ds.x_test[pick]
            imgs = np.concatenate([x.numpy(), stamp.apply(x).numpy()])
            titles = [f"clean · {ds.class_names[y[i]]}" for i in pick] + [
                "with trigger" for _ in pick
            ]
            st.plotly_chart(
                # In the right two thirds of the row: captions wrapped for that width.
                image_grid(imgs, titles, ncols=len(pick), width=NARROW_PX * 2 / 3 - 20),
                width="stretch",
                key=f"{key}.preview",
            )
        else:
            changed = np.flatnonzero(stamp.mask.numpy() > 0)
            st.caption("Tabular data: the trigger sets these features (standardised units).")
            st.dataframe(
                pd.DataFrame(
                    {
                        "feature": changed,
                        "mask weight": stamp.mask.numpy()[changed],
                        "value": stamp.pattern.numpy()[changed],
                    }
                ).head(40),
                hide_index=True,
            )
    return trigger


def checked(cls: type[E], values: Mapping[str, Any], target: Target, ds: Dataset) -> E | None:
    """The experiment from form values, checked against the data; ``None`` after showing
    what is wrong."""
    exp = experiment.build(cls, values, target)
    if exp is None:
        return None
    try:
        exp.check_data(ds)
    except RobustcoreError as exc:
        st.error(str(exc))
        return None
    return exp


def percent_table(df: pd.DataFrame, *, key: str) -> None:
    """A table whose share columns are shown as percentages."""
    cfg = {
        c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
        for c in df.columns
        if c in PERCENT_COLUMNS
    }
    st.dataframe(df, hide_index=True, width="stretch", column_config=cfg, key=key)


def downloads(result: ExperimentResult, table: pd.DataFrame, name: str) -> None:
    """CSV of the page's main table and the run's JSON."""
    cols = st.columns(2)
    download_table(
        table, f"{name}.csv", label="Table (CSV)", key=f"dl.{name}.csv", container=cols[0]
    )
    download_json(
        result.as_json(),
        f"{name}.json",
        label="Run (JSON)",
        key=f"dl.{name}.json",
        container=cols[1],
    )


def gallery(
    images: np.ndarray | None, table: pd.DataFrame, ds: Dataset, *, key: str, caption: str
) -> None:
    """Images with "true → predicted (confidence)" titles, or the table for tabular data."""
    st.caption(caption)
    if ds.modality == "image" and images is not None:
        titles = gallery_titles(table)
        st.plotly_chart(image_grid(images, titles, ncols=8), width="stretch", key=key)
    else:
        st.dataframe(table, hide_index=True)
