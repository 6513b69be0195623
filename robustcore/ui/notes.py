"""Short notes pages put under their numbers: what the accuracies were measured on."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..data import Dataset
from ..reports.blocks import accuracy_basis as basis_text


def accuracy_basis(n: int, dataset: Dataset, *, home: bool = False, container: Any = st) -> None:
    """A caption under a row of accuracies: on how many test images they were measured, so
    that a clean accuracy on a subset is never read as a different model from Home's
    (``home``: the caption is on Home itself; the text is :func:`basis_text`'s)."""
    container.caption(basis_text(n, dataset.n_test, home=home))
