"""Datasets fetched through torchvision on first use (needs the internet once).

* ``mnist``: 70,000 handwritten digits, 28x28 grey (60,000 train / 10,000 test).
* ``fashion_mnist``: 70,000 clothing photos, 28x28 grey, 10 kinds of garment.
* ``cifar10``: 60,000 small colour photos, 32x32, 10 classes (plane, car, bird ...).
* ``gtsrb``: German traffic signs, about 51,000 colour photos of 43 sign types, resized to
  32x32 here.

Files are kept under ``paths.subdir("data")`` (``$ROBUSTCORE_HOME/data``) unless ``root=`` is
given. When the files are missing and cannot be downloaded, a
:class:`~robustcore.errors.DatasetUnavailableError` says where they were looked for and how
to fix it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustcore import paths
from robustcore.data.builtin import label_tensor, unit_bounds
from robustcore.data.dataset import Dataset
from robustcore.errors import DatasetUnavailableError

GTSRB_SIZE = 32
"""GTSRB photos come in many sizes; they are all resized to this many pixels square."""

OFFLINE_HINT = "the offline built-ins mnist5k, digits and breast_cancer need no download"


@dataclass(frozen=True)
class _Spec:
    """How to fetch one torchvision dataset."""

    name: str
    title: str
    tv_class: str  # attribute name in torchvision.datasets (looked up at call time)
    folder: str  # folder under root where torchvision keeps the files
    owned: tuple[str, ...]  # entries under root that a download may create
    expects: str  # the files a person can copy in by hand
    what: str  # short content description


SPECS: dict[str, _Spec] = {
    "mnist": _Spec(
        "mnist",
        "MNIST",
        "MNIST",
        "MNIST/raw",
        ("MNIST",),
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte",
        "handwritten digits (28x28 grey)",
    ),
    "fashion_mnist": _Spec(
        "fashion_mnist",
        "Fashion-MNIST",
        "FashionMNIST",
        "FashionMNIST/raw",
        ("FashionMNIST",),
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte",
        "clothing photos (28x28 grey)",
    ),
    "cifar10": _Spec(
        "cifar10",
        "CIFAR-10",
        "CIFAR10",
        "cifar-10-batches-py",
        ("cifar-10-batches-py", "cifar-10-python.tar.gz"),
        "data_batch_1 .. data_batch_5, test_batch, batches.meta",
        "colour photos (32x32)",
    ),
    "gtsrb": _Spec(
        "gtsrb",
        "GTSRB",
        "GTSRB",
        "gtsrb",
        ("gtsrb",),
        "GTSRB/Training/<class>/*.ppm, GTSRB/Final_Test/Images/*.ppm, GT-final_test.csv",
        f"traffic-sign photos (resized to {GTSRB_SIZE}x{GTSRB_SIZE} colour)",
    ),
}


# --------------------------------------------------------------------------- conversion


def _tv_class(spec: _Spec) -> Any:
    import torchvision.datasets

    return getattr(torchvision.datasets, spec.tv_class)


def _open_split(spec: _Spec, root: Path, train: bool, download: bool) -> Any:
    cls = _tv_class(spec)
    if spec.name == "gtsrb":
        return cls(str(root), split="train" if train else "test", download=download)
    return cls(str(root), train=train, download=download)


def _convert_mnist_like(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.as_tensor(ds.data)
    if data.dtype != torch.uint8:
        data = data.to(torch.uint8)
    x = data.unsqueeze(1).to(torch.float32).div_(255.0).contiguous()
    y = torch.as_tensor(ds.targets).to(torch.int64).contiguous()
    return x, y


def _convert_cifar(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    data = np.asarray(ds.data, dtype=np.uint8)  # N, H, W, C
    x = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
    x = x.to(torch.float32).div_(255.0).contiguous()
    return x, label_tensor(np.asarray(ds.targets))


def _convert_gtsrb(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    samples = list(ds._samples)
    out = np.empty((len(samples), GTSRB_SIZE, GTSRB_SIZE, 3), dtype=np.uint8)
    labels = np.empty(len(samples), dtype=np.int64)
    for i, (path, label) in enumerate(samples):
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((GTSRB_SIZE, GTSRB_SIZE), Image.BILINEAR)
            out[i] = np.asarray(rgb, dtype=np.uint8)
        labels[i] = int(label)
    x = torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
    return x.to(torch.float32).div_(255.0).contiguous(), label_tensor(labels)


_CONVERTERS: dict[str, Callable[[Any], tuple[torch.Tensor, torch.Tensor]]] = {
    "mnist": _convert_mnist_like,
    "fashion_mnist": _convert_mnist_like,
    "cifar10": _convert_cifar,
    "gtsrb": _convert_gtsrb,
}


def _class_names(spec: _Spec, train_ds: Any) -> list[str]:
    if spec.name == "gtsrb":
        return [f"class {i}" for i in range(43)]
    return [str(c) for c in train_ds.classes]


def _build(spec: _Spec, root: Path, download: bool) -> Dataset:
    train_ds = _open_split(spec, root, True, download)
    test_ds = _open_split(spec, root, False, download)
    convert = _CONVERTERS[spec.name]
    x_tr, y_tr = convert(train_ds)
    x_te, y_te = convert(test_ds)
    names = _class_names(spec, train_ds)
    shape = tuple(x_tr.shape[1:])
    return Dataset(
        name=spec.name,
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        num_classes=len(names),
        class_names=names,
        modality="image",
        bounds=unit_bounds(shape),
        description=(
            f"{spec.title} via torchvision: {len(y_tr):,} train / {len(y_te):,} test "
            f"{spec.what}, {len(names)} classes; files in {root / spec.folder}."
        ),
    )


# --------------------------------------------------------------------------- failure handling


def _snapshot(root: Path, owned: tuple[str, ...]) -> set[str]:
    """Every file and folder that already exists under the entries a download may create."""
    seen: set[str] = set()
    if root.exists():
        seen.add(str(root))
    for entry in owned:
        top = root / entry
        if not top.exists():
            continue
        seen.add(str(top))
        if top.is_dir():
            for dirpath, dirnames, filenames in os.walk(top):
                seen.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return seen


def _cleanup(root: Path, owned: tuple[str, ...], before: set[str]) -> None:
    """Remove what a failed download created (partial archives, empty folders), keep the rest.

    Anything that existed before the attempt is left alone.
    """
    for entry in owned:
        top = root / entry
        if not top.exists() and not top.is_symlink():
            continue
        if str(top) not in before:
            if top.is_dir() and not top.is_symlink():
                shutil.rmtree(top, ignore_errors=True)
            else:
                try:
                    top.unlink()
                except OSError:
                    pass
            continue
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top, topdown=False):
            for n in filenames:
                p = os.path.join(dirpath, n)
                if p not in before:
                    try:
                        os.unlink(p)
                    except OSError:
                        pass
            for n in dirnames:
                p = os.path.join(dirpath, n)
                if p not in before:
                    try:
                        os.rmdir(p)  # only succeeds when empty
                    except OSError:
                        pass
    if str(root) not in before:
        try:
            root.rmdir()
        except OSError:
            pass


def _unavailable(
    spec: _Spec, root: Path, cause: BaseException, tried: bool
) -> DatasetUnavailableError:
    folder = root / spec.folder
    reason = "the download failed" if tried else "download=False was given"
    detail = f"{type(cause).__name__}: {cause}".strip()
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return DatasetUnavailableError(
        f"Dataset '{spec.name}' ({spec.title}) is not available: its files were not found "
        f"or could not be read in {folder} and {reason}. Fix: connect to the internet and try "
        f"again, or copy the dataset files ({spec.expects}) into {folder}; {OFFLINE_HINT}. "
        f"Cause: {detail}"
    )


def load_downloadable(
    name: str, *, root: str | Path | None = None, download: bool = True
) -> Dataset:
    """Load a torchvision dataset, downloading it first when its files are missing.

    Args:
        name: ``mnist``, ``fashion_mnist``, ``cifar10`` or ``gtsrb``.
        root: folder holding the files; default ``$ROBUSTCORE_HOME/data``.
        download: fetch the files from the internet when they are missing. With ``False``
            only files already on disk are used.

    Raises:
        DatasetUnavailableError: the files are missing (or unreadable) and could not be
            downloaded. Files half-written by a failed download are removed again.
    """
    spec = SPECS[name]
    root_path = Path(root).expanduser() if root is not None else paths.subdir("data")
    try:
        return _build(spec, root_path, download=False)  # files already on disk: no network
    except Exception as err:  # any failure means "not usable from disk"
        if not download:
            raise _unavailable(spec, root_path, err, tried=False) from err
    before = _snapshot(root_path, spec.owned)
    try:
        return _build(spec, root_path, download=True)
    except Exception as err:  # URLError, socket errors, RuntimeError, OSError ...
        _cleanup(root_path, spec.owned, before)
        raise _unavailable(spec, root_path, err, tried=True) from err


def load_mnist(*, root: str | Path | None = None, download: bool = True) -> Dataset:
    """MNIST: 60,000 train / 10,000 test handwritten digits, (N, 1, 28, 28) in [0, 1]."""
    return load_downloadable("mnist", root=root, download=download)


def load_fashion_mnist(*, root: str | Path | None = None, download: bool = True) -> Dataset:
    """Fashion-MNIST: 60,000 / 10,000 clothing photos, (N, 1, 28, 28) in [0, 1]."""
    return load_downloadable("fashion_mnist", root=root, download=download)


def load_cifar10(*, root: str | Path | None = None, download: bool = True) -> Dataset:
    """CIFAR-10: 50,000 / 10,000 colour photos in 10 classes, (N, 3, 32, 32) in [0, 1]."""
    return load_downloadable("cifar10", root=root, download=download)


def load_gtsrb(*, root: str | Path | None = None, download: bool = True) -> Dataset:
    """GTSRB: traffic signs in 43 classes, resized to (N, 3, 32, 32) in [0, 1]."""
    return load_downloadable("gtsrb", root=root, download=download)
