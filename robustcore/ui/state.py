"""The session's current dataset and model, shared by every page."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import streamlit as st
from torch import nn

from ..data import DEFAULT_DATASET, Dataset
from ..data import load as load_dataset
from ..defenses.inference import InferenceDefense
from ..errors import RobustcoreError
from ..experiments.base import Target
from ..models import lookup

_REF = "rc_model_ref"
_UPLOADED_DS = "rc_uploaded_dataset"
_UPLOADED_MODEL = "rc_uploaded_model"


@dataclass(frozen=True)
class ModelRef:
    """Which model the session works on and where its report run is stored.

    ``source`` is ``"zoo"`` (a built-in architecture trained by recipe), ``"weights"``
    (uploaded weights of a built-in architecture), or ``"onnx"`` (an own architecture
    from an ONNX file);
    ``fingerprint`` is the content hash of an uploaded file.
    """

    source: str
    dataset: str
    label: str
    run_key: str
    zoo_key: str | None = None
    arch: str | None = None
    recipe: dict[str, Any] | None = None
    fingerprint: str | None = None
    data_fingerprint: str | None = None  # the content hash of the data the model came from
    inference: dict[str, Any] | None = None
    """The spec of the inference-time defense in front of the model (sidebar "Inference-time
    defense"), or ``None``."""

    @property
    def model_label(self) -> str:
        """The model's name without the dataset (the label of its Train run ends in
        "on <dataset>", which an experiment's label adds again)."""
        suffix = f" on {self.dataset}"
        return self.label[: -len(suffix)] if self.label.endswith(suffix) else self.label

    @property
    def defense(self) -> InferenceDefense | None:
        return InferenceDefense.from_spec(self.inference) if self.inference else None

    @property
    def title(self) -> str:
        """The model and its inference-time defense, for the sidebar and page headers."""
        d = self.defense
        if d is None:
            return self.label
        return f"{self.model_label} + {d.describe()} on {self.dataset}"

    def target(self, model: nn.Module | None = None) -> Target:
        """The experiments' name for this model (an upload needs its module), behind its
        inference-time defense when it has one."""
        if self.source == "zoo":
            t = Target.zoo(self.arch or "", self.recipe or {}, label=self.model_label)
        else:
            t = Target.upload(
                model, self.fingerprint or self.run_key, arch=self.arch, label=self.model_label
            )
        return t.defended_by(self.defense)


def set_uploaded_dataset(ds: Dataset | None) -> None:
    st.session_state[_UPLOADED_DS] = ds


def uploaded_dataset() -> Dataset | None:
    return st.session_state.get(_UPLOADED_DS)


def dataset_by_name(name: str) -> Dataset:
    """A registry dataset, or the session's uploaded one."""
    up = uploaded_dataset()
    if up is not None and up.name == name:
        return up
    return load_dataset(name)


def set_model(ref: ModelRef, model: nn.Module | None = None) -> None:
    """Make ``ref`` the session's model; uploaded models are kept in the session."""
    st.session_state.pop(_STALE, None)
    st.session_state[_REF] = ref
    if ref.source != "zoo":
        st.session_state[_UPLOADED_MODEL] = model


def set_inference(defense: InferenceDefense | None) -> None:
    """Put the current model behind an inference-time defense (``None``: take it away)."""
    ref = current_ref()
    if ref is None:
        return
    st.session_state[_REF] = dataclasses.replace(
        ref, inference=defense.spec() if defense is not None else None
    )


def current_ref() -> ModelRef | None:
    return st.session_state.get(_REF)


def clear_model() -> None:
    st.session_state.pop(_REF, None)
    st.session_state.pop(_UPLOADED_MODEL, None)


_STALE = "rc_model_stale"


def drop_if_stale(ds: Dataset) -> None:
    """Forget the current model when the dataset of its name now holds other data (a file
    uploaded again under the same name): a model is shown only with the data it came from."""
    ref = current_ref()
    if ref is None or ref.dataset != ds.name or not ref.data_fingerprint:
        return
    if ds.fingerprint() != ref.data_fingerprint:
        clear_model()
        st.session_state[_STALE] = (
            ds.name,
            f"The data of {ds.name} changed since **{ref.label}** was made on it, so that "
            "model is no longer the current one: train or load a model for the new data.",
        )


def stale_message(dataset: str | None = None) -> str | None:
    """Why the current model was dropped, if it was (see :func:`drop_if_stale`); with
    ``dataset``, only when it was that dataset's."""
    got = st.session_state.get(_STALE)
    if got is None or (dataset is not None and got[0] != dataset):
        return None
    return got[1]


def current_model() -> tuple[Dataset, nn.Module, ModelRef] | None:
    """The dataset, model and reference the pages work on, or ``None`` if none is chosen."""
    ref = current_ref()
    if ref is None:
        return None
    try:
        ds = dataset_by_name(ref.dataset)
    except RobustcoreError:
        clear_model()
        return None
    drop_if_stale(ds)
    if current_ref() is None:
        return None
    if ref.source == "zoo":
        entry = lookup(ref.zoo_key) if ref.zoo_key else None
        if entry is None:
            clear_model()
            return None
        return ds, entry.model, ref
    model = st.session_state.get(_UPLOADED_MODEL)
    if model is None:
        return None
    return ds, model, ref


def require_model() -> tuple[Dataset, nn.Module, ModelRef]:
    """For pages that attack or defend a model: stop with a hint when none is chosen."""
    got = current_model()
    if got is None:
        stale = stale_message()
        if stale:
            st.warning(stale)
        st.info(
            "No model yet: choose a dataset and an architecture in the sidebar and press "
            "**Train / load model** (the default trains in a few seconds)."
        )
        st.stop()
    return got


def require_target() -> tuple[Dataset, Target]:
    """The dataset and the :class:`Target` that experiments run on (stops with a hint)."""
    ds, model, ref = require_model()
    return ds, ref.target(model)


def current_target() -> tuple[Dataset, Target] | None:
    """Like :func:`require_target`, or ``None`` when no model is chosen."""
    got = current_model()
    if got is None:
        return None
    ds, model, ref = got
    return ds, ref.target(model)


def default_dataset_name() -> str:
    return DEFAULT_DATASET
