"""Where the workbench keeps its files: ``ROBUSTCORE_HOME`` (default ``~/.robustcore``)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The data folder: datasets, the model zoo and the SQLite run store live here."""
    root = Path(os.environ.get("ROBUSTCORE_HOME", "~/.robustcore")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    """A named folder under :func:`home`, created on first use."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
