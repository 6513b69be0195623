"""Device choice, seeding and thread count.

The device is CUDA when there is one, then Apple's MPS, then the CPU. The environment
variable ``ROBUSTCORE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the choice.
``ROBUSTCORE_THREADS`` sets how many CPU threads torch may use; by default it uses all
cores up to 8, and the job runner limits how many jobs run at once so that several users
on one server do not oversubscribe the machine.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
import torch

from .errors import ValidationError

_VALID_PREFIXES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@cache
def get_device(preferred: str | None = None) -> torch.device:
    """The torch device to compute on.

    Args:
        preferred: a device string that wins over everything else; ``None`` reads
            ``ROBUSTCORE_DEVICE`` and otherwise picks cuda > mps > cpu.

    Raises:
        ValidationError: the requested device is malformed or not available here.
    """
    wanted = preferred or os.environ.get("ROBUSTCORE_DEVICE", "").strip()
    if wanted:
        if not wanted.startswith(_VALID_PREFIXES):
            raise ValidationError(
                f"Unknown device {wanted!r}: expected 'cpu', 'cuda', 'cuda:N' or 'mps'."
            )
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise ValidationError(
                f"Device {wanted!r} was requested but CUDA is not available here."
            )
        if wanted.startswith("mps") and not _mps_available():
            raise ValidationError(f"Device {wanted!r} was requested but MPS is not available here.")
        try:
            return torch.device(wanted)
        except RuntimeError:
            raise ValidationError(
                f"Unknown device {wanted!r}: expected 'cpu', 'cuda', 'cuda:N' or 'mps'."
            ) from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a CPU generator with that seed.

    Use the returned generator for data shuffling so that one run's order does not depend
    on what other code drew from the global generator before.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValidationError(f"Seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def configure_threads(n: int | None = None) -> int:
    """Set torch's (and BLAS/OpenMP's) CPU thread count for the process and return it.

    ``n`` wins, then ``ROBUSTCORE_THREADS``, then ``min(os.cpu_count() - 1, 8)`` (at least
    1). One core is left free because the job runner may run two jobs at once and the
    Streamlit server polls their progress: on a 2-core machine, two jobs each asking for
    both cores slowed training 10–17× (measured), while one thread per job costs at most 2×.
    """
    if n is None:
        env = os.environ.get("ROBUSTCORE_THREADS", "").strip()
        if env:
            try:
                n = int(env)
            except ValueError as exc:
                raise ValidationError(
                    f"ROBUSTCORE_THREADS must be a positive integer, got {env!r}."
                ) from exc
        else:
            n = max(1, min((os.cpu_count() or 1) - 1, 8))
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValidationError(f"Thread count must be a whole number, got {n!r}.")
    if n < 1:
        raise ValidationError(f"Thread count must be at least 1, got {n}.")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _limit_native_threads(n)
    return n


def _limit_native_threads(n: int) -> None:
    """The same limit for NumPy's BLAS and OpenMP (scikit-learn): with the other core busy,
    a second spinning OpenBLAS thread made one SVD about 300× slower (2 s instead of 7 ms,
    measured while a training ran alongside)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, nothing to limit
        return
    threadpool_limits(limits=n)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model computes: the device of its first parameter (or buffer), else the CPU."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def preferred_memory_format(model: torch.nn.Module, device: torch.device) -> torch.memory_format:
    """The memory layout a model's image batches compute fastest in on ``device``.

    On the CPU, oneDNN's convolutions, ReLUs and max-pooling run faster on channels-last
    (NHWC) tensors: one PGD-AT epoch of ``small_cnn`` through :func:`fit` on 1,024 MNIST
    images took 4.6 s instead of 6.5 s on two cores (an ad-hoc timing of the trainer; the
    bench's figures are in the README). Models without a 2-D convolution, and other
    devices, keep the default layout.
    """
    if device.type != "cpu":
        return torch.contiguous_format
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return torch.channels_last
    return torch.contiguous_format


@contextmanager
def fast_layout(model: torch.nn.Module, device: torch.device) -> Iterator[torch.memory_format]:
    """Run a block with ``model``'s 4-D weights in :func:`preferred_memory_format` and yield
    that format (convert the batches with :func:`in_layout`). The
    weights are back in the default layout afterwards, so what is saved or handed on
    is unchanged; the numbers differ from the default layout's only by rounding."""
    fmt = preferred_memory_format(model, device)
    if fmt == torch.contiguous_format:
        yield fmt
        return
    model.to(memory_format=fmt)
    try:
        yield fmt
    finally:
        model.to(memory_format=torch.contiguous_format)


def in_layout(x: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    """``x`` in memory format ``fmt`` when it is a batch of images (4-D), else unchanged."""
    if fmt == torch.contiguous_format or x.ndim != 4:
        return x
    return x.contiguous(memory_format=fmt)
