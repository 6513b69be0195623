"""Experiments: one module per page-level run, each an :class:`Experiment` declared once.

``EXPERIMENTS`` (name → class) is filled when :func:`load_all` imports the modules listed
in :mod:`robustcore.experiments.registry`; the CLI and the run history use it.
"""

from __future__ import annotations

from .base import EXPERIMENTS, Experiment, ExperimentResult, Target, register

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentResult",
    "Target",
    "get",
    "load_all",
    "register",
]


def load_all() -> dict[str, type[Experiment]]:
    """Import every experiment module of the registry and return :data:`EXPERIMENTS`."""
    import importlib

    from .registry import MODULES

    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return EXPERIMENTS


def get(name: str) -> type[Experiment]:
    """The experiment class called ``name`` (``-`` and ``_`` are the same)."""
    from ..errors import ValidationError

    found = load_all().get(name.replace("-", "_"))
    if found is None:
        raise ValidationError(
            f"Unknown experiment {name!r}; choose one of {', '.join(sorted(EXPERIMENTS))}."
        )
    return found
