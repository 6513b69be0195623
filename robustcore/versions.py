"""Versions of the libraries a run was computed with.

Each stored run keeps this dictionary, so a result can be traced back to the software
(and the device) that produced it. Packages are looked up with ``importlib.metadata``,
which reads the installed version without importing the package (Streamlit in
particular is never imported here).
"""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata

# Distribution name on the index -> key used in the returned dictionary.
_PACKAGES: tuple[tuple[str, str], ...] = (
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("numpy", "numpy"),
    ("pandas", "pandas"),
    ("streamlit", "streamlit"),
    ("plotly", "plotly"),
    ("scikit-learn", "scikit-learn"),
)

_FALLBACK_ROBUSTCORE_VERSION = "0.1.0"


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _robustcore_version() -> str:
    found = _installed_version("robustcore")
    if found:
        return found
    try:
        import robustcore

        value = getattr(robustcore, "__version__", None)
    except Exception:  # pragma: no cover - the package is importable when this runs
        value = None
    return str(value) if value else _FALLBACK_ROBUSTCORE_VERSION


def _device_name() -> str:
    try:
        import torch
    except Exception:
        return "cpu"
    try:
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name())
    except Exception:  # a broken driver must not stop a run from being stored
        return "cpu"
    return "cpu"


@lru_cache(maxsize=1)
def _cached_versions() -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {"python": platform.python_version()}
    for distribution, key in _PACKAGES:
        version = _installed_version(distribution)
        if version is not None:
            found[key] = version
    found["robustcore"] = _robustcore_version()
    found["device"] = _device_name()
    return tuple(found.items())


def library_versions() -> dict[str, str]:
    """Versions of Python, the main libraries, robustcore and the compute device.

    Keys: ``python``, ``torch``, ``torchvision``, ``numpy``, ``pandas``, ``streamlit``,
    ``plotly``, ``scikit-learn``, ``robustcore`` and ``device`` (the CUDA device name, or
    ``"cpu"``). A package that is not installed is left out rather than given a made-up
    version; ``robustcore`` falls back to ``"0.1.0"`` when it has no installed metadata.
    The answer is computed once per process; each call returns a fresh copy.
    """
    return dict(_cached_versions())
