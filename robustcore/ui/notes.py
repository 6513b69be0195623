"""Short notes pages put under their numbers: what the accuracies were measured on."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..data import Dataset


def accuracy_basis(n: int, dataset: Dataset, *, home: bool = False, container: Any = st) -> None:
    """A caption under a row of accuracies: on how many test images they were measured, so
    that a clean accuracy on a subset is never read as a different model from Home's
    (``home``: the caption is on Home itself)."""
    total = dataset.n_test
    if n >= total:
        text = f"Accuracies on all {total:,} test images" + ("." if home else " (as on Home).")
    else:
        text = (
            f"Accuracies on {n:,} of the {total:,} test images (a seeded random subset, the "
            f"same for every model at this seed). Home's clean accuracy uses all {total:,}, so "
            "the two can differ by sampling noise."
        )
    container.caption(text)
