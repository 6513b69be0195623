"""Choosing the model under attack on the privacy pages (Membership inference,
Postprocessing & ensembles): the session's model, or a deliberately overfit one that the
experiment trains through the zoo (the *overfitting control*)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.overfit import OVERFIT_RECIPE, fast_arch
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..models.training import OPTIONAL_FIELDS
from .forms import param_form

OVERFIT = "overfit"
SESSION = "session"
OVERFIT_DEFAULTS: dict[str, Any] = OVERFIT_RECIPE
"""A target that memorises: few training examples, many epochs (trains in seconds)."""
RECIPE_FIELDS: tuple[str, ...] = tuple(
    p.name
    for p in TrainRecipe.params()
    if p.name not in ("batch_size", "optimizer", "noise_std", "method", *OPTIONAL_FIELDS)
)
"""The recipe settings the overfitting control shows."""


def arch_select(
    ds: Dataset, key: str, label: str, default: str | None = None, container: Any = st
) -> str:
    """A select box of the architectures that fit ``ds`` (an MLP by default: it is fast)."""
    archs = compatible_architectures(ds.modality, ds.input_shape)
    default = default if default in archs else fast_arch(ds)
    return container.selectbox(
        label,
        archs,
        index=archs.index(default),
        format_func=lambda a: ARCHITECTURES[a].title,
        key=key,
    )


def target_source(key: str) -> str:
    """The radio that picks the target (outside the form, so the form can change)."""
    return st.radio(
        "Target model",
        [OVERFIT, SESSION],
        format_func={
            OVERFIT: "A deliberately overfit model (trained here)",
            SESSION: "The current model (sidebar)",
        }.get,
        horizontal=True,
        key=f"{key}_source",
        help="Membership leaks through overfitting: a model trained on few examples for many "
        "epochs shows it clearly; a well-generalising model leaks little.",
    )


def target_controls(
    source: str,
    ds: Dataset,
    session: Target,
    key: str,
    *,
    fields: tuple[str, ...] = RECIPE_FIELDS,
    container: Any = st,
) -> Target | None:
    """The chosen target (inside a form): the overfitting control's ``Target.zoo(arch,
    recipe)``, or the session's target (with a note on what shadow models copy).
    ``None`` after showing what is wrong with the recipe."""
    c = container
    if source == OVERFIT:
        c.markdown("**Overfitting control**: the target is trained here, through the model zoo.")
        arch = arch_select(ds, f"{key}_arch", "Architecture", container=c)
        recipe = param_form(
            TrainRecipe, key=f"{key}_recipe", values=OVERFIT_DEFAULTS, only=fields, container=c
        )
        return Target.zoo(arch, recipe) if recipe is not None else None
    if session.source == "zoo":
        arch, recipe = session.training
        c.caption(
            f"Attacking **{session.describe()}**; shadow models copy its architecture "
            f"({arch}) and recipe ({recipe.epochs} epochs)."
        )
    else:
        c.caption(
            "An uploaded model: its members are assumed to be the dataset's whole training "
            "split, and the shadow models use the default training recipe."
        )
    return session


def needs_arch_guess(source: str, session: Target) -> bool:
    """True when the attacker must guess the architecture (an uploaded session model)."""
    return source == SESSION and session.source == "upload"
