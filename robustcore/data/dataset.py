"""The in-memory dataset every part of the engine receives."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass
class Dataset:
    """A train/test split held as tensors.

    Attributes:
        name: registry name (``mnist5k``) or ``upload:<file name>``.
        x_train, x_test: float32 tensors. Images are NCHW in [0, 1]; tabular data is (N, F),
            standardised with the training set's mean and standard deviation.
        y_train, y_test: int64 class indices in ``0 .. num_classes-1``.
        num_classes: number of classes.
        class_names: one readable name per class.
        modality: ``"image"`` or ``"tabular"``.
        bounds: ``(lower, upper)`` float32 tensors shaped like one sample
            (``input_shape``); every valid input lies inside them. Images: 0 and 1.
            Tabular: the per-feature minimum and maximum seen in the data.
        description: one line shown in the UI (source, size, licence where known).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: list[str]
    modality: str
    bounds: tuple[torch.Tensor, torch.Tensor]
    description: str = ""
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)`` or ``(30,)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def fingerprint(self) -> str:
        """A content hash of the tensors: two datasets with equal data share it.

        The model zoo uses it so a poisoned or uploaded dataset never reuses a model
        trained on different data under the same name.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(self.modality.encode())
            for t in (self.x_train, self.y_train, self.x_test, self.y_test, *self.bounds):
                t = t.detach().contiguous().cpu()
                h.update(str(tuple(t.shape)).encode())
                h.update(str(t.dtype).encode())
                h.update(t.numpy().tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """Clamp a batch into the data bounds (bounds move to ``x``'s device)."""
        lo, hi = self.bounds
        return torch.maximum(torch.minimum(x, hi.to(x.device)), lo.to(x.device))
