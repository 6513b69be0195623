"""What the Home page's figures of the current model are drawn from: the training lines'
name and the sample grid's captions (the figures themselves are the shared ones of
:mod:`robustcore.viz.figures`)."""

from __future__ import annotations

import pandas as pd

TRAINING_SET = "the training set"


def train_name(training_inputs: str) -> str:
    """The training curves' name for the training lines: the plain training set, or the
    perturbed inputs a defended recipe trains on (``TrainRecipe.training_inputs``)."""
    return (
        "training set"
        if training_inputs == TRAINING_SET
        else "training set (perturbed, as trained)"
    )


def sample_titles(samples: pd.DataFrame) -> list[str]:
    """One caption per sample prediction (columns ``true``, ``predicted``, ``confidence``):
    ✓/✗ whether the prediction is right, the true and the predicted class, the confidence."""
    return [
        f"{'✓' if t == p else '✗'} true {t} · pred {p} ({c:.0%})"
        for t, p, c in zip(
            samples["true"], samples["predicted"], samples["confidence"], strict=True
        )
    ]
