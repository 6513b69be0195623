"""Datasets for the workbench: a registry of named datasets plus ``.npz`` uploads.

Use :func:`load` with a name from :data:`DATASETS` (``mnist5k`` is the default and needs no
download), or :func:`load_npz` for a user's own file.

Loaded datasets are cached in-process and the SAME object is returned on the next call with
the same name and options: callers must not modify its tensors in place (copy them first,
e.g. ``ds.x_train.clone()``, or build a new :class:`Dataset`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustcore import paths
from robustcore.data import builtin, downloads
from robustcore.data.dataset import Dataset
from robustcore.data.upload import load_npz
from robustcore.errors import DatasetError, ValidationError

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "Dataset",
    "DatasetInfo",
    "clear_cache",
    "list_datasets",
    "load",
    "load_npz",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What the UI shows about a registered dataset.

    Attributes:
        name: the registry name passed to :func:`load`.
        title: a readable name.
        modality: ``"image"`` or ``"tabular"``.
        offline: True when it ships with installed packages (no download needed).
        description: one plain sentence about the content.
    """

    name: str
    title: str
    modality: str
    offline: bool
    description: str


DEFAULT_DATASET = "mnist5k"
"""The dataset the workbench starts with: small, offline, quick to train on."""

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "mnist5k",
            "MNIST 5k (offline)",
            "image",
            True,
            "5,000 handwritten digits, 28x28 grey, 4,000 train / 1,000 test. Bundled.",
        ),
        DatasetInfo(
            "digits",
            "Digits 8x8 (offline)",
            "image",
            True,
            "1,797 tiny handwritten digits, 8x8 grey, 80/20 split. Bundled with scikit-learn.",
        ),
        DatasetInfo(
            "breast_cancer",
            "Breast cancer (offline, tabular)",
            "tabular",
            True,
            "569 tumours with 30 measurements each, malignant vs benign, 80/20 split.",
        ),
        DatasetInfo(
            "mnist",
            "MNIST",
            "image",
            False,
            "70,000 handwritten digits, 28x28 grey. Downloaded on first use (about 12 MB).",
        ),
        DatasetInfo(
            "fashion_mnist",
            "Fashion-MNIST",
            "image",
            False,
            "70,000 clothing photos in 10 kinds, 28x28 grey. Downloaded on first use (30 MB).",
        ),
        DatasetInfo(
            "cifar10",
            "CIFAR-10",
            "image",
            False,
            "60,000 colour photos in 10 classes, 32x32. Downloaded on first use (170 MB).",
        ),
        DatasetInfo(
            "gtsrb",
            "GTSRB traffic signs",
            "image",
            False,
            "About 51,000 traffic-sign photos in 43 classes, resized to 32x32. Downloaded "
            "on first use (about 350 MB).",
        ),
    )
}
"""Every registered dataset, in the order the UI lists them."""

_BUILTIN: dict[str, Callable[[], Dataset]] = {
    "mnist5k": builtin.load_mnist5k,
    "digits": builtin.load_digits,
    "breast_cancer": builtin.load_breast_cancer,
}
_DOWNLOAD_OPTS = ("root", "download")


def list_datasets() -> list[DatasetInfo]:
    """All registered datasets, offline built-ins first."""
    return list(DATASETS.values())


@functools.cache
def _load_builtin(name: str) -> Dataset:
    return _BUILTIN[name]()


@functools.lru_cache(maxsize=2)
def _load_download(name: str, root: str, download: bool) -> Dataset:
    # Only two are kept: CIFAR-10 or GTSRB take hundreds of MB each as float32.
    return downloads.load_downloadable(name, root=root, download=download)


def clear_cache() -> None:
    """Forget every cached dataset (the next :func:`load` reads the files again)."""
    _load_builtin.cache_clear()
    _load_download.cache_clear()


def load(name: str, **opts: Any) -> Dataset:
    """Load a registered dataset by name.

    Args:
        name: a key of :data:`DATASETS`, e.g. ``"mnist5k"`` (case and surrounding spaces
            are ignored).
        **opts: only for the downloadable datasets (mnist, fashion_mnist, cifar10, gtsrb):
            ``root`` is the folder holding the files (default ``$ROBUSTCORE_HOME/data``) and
            ``download`` (default True) allows fetching missing files from the internet.
            The offline built-ins take no options.

    Returns:
        The dataset. Results are cached per name and options and the same object is returned
        again, so do not modify it in place.

    Raises:
        DatasetError: the name is unknown (the message lists the known names).
        ValidationError: an option is not accepted by this dataset.
        DatasetUnavailableError: a downloadable dataset is missing and cannot be downloaded.
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        known = ", ".join(DATASETS)
        raise DatasetError(f"Unknown dataset '{name}'. Known datasets: {known}.")
    if key in _BUILTIN:
        if opts:
            raise ValidationError(
                f"Dataset '{key}' is built in and takes no options; got {', '.join(sorted(opts))}."
            )
        return _load_builtin(key)
    unknown = sorted(set(opts) - set(_DOWNLOAD_OPTS))
    if unknown:
        raise ValidationError(
            f"Dataset '{key}' does not accept option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(_DOWNLOAD_OPTS)}."
        )
    root = opts.get("root")
    # Resolved here so the cache key follows ROBUSTCORE_HOME and equal paths share an entry.
    root_path = Path(root).expanduser() if root is not None else paths.subdir("data")
    return _load_download(key, str(root_path.resolve()), bool(opts.get("download", True)))
