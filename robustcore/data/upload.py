"""Turn an uploaded ``.npz`` file into a :class:`~robustcore.data.dataset.Dataset`.

The file must hold four arrays (``np.savez(path, x_train=..., y_train=..., x_test=...,
y_test=...)``) and may hold a fifth, ``class_names``. It is opened with
``allow_pickle=False`` only, so no Python object inside it is ever unpickled. Every problem is
reported as an :class:`~robustcore.errors.UploadError` that says what is wrong and what is
expected.

Accepted ``x`` layouts:

* 2-D ``(N, F)``: a table of ``F`` numeric features; standardised with the training mean and
  standard deviation, bounds are the per-feature min/max.
* 3-D ``(N, H, W)``: grey images.
* 4-D ``(N, C, H, W)`` or ``(N, H, W, C)`` with ``C`` = 1 or 3: grey or colour images.

Images are uint8 (0..255, divided by 255) or floats already in [0, 1]; between 8x8 and
256x256 pixels. Labels are class indices ``0 .. C-1`` and every class must occur in the
training split.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import torch

from robustcore.data.builtin import image_tensor, label_tensor, standardise, unit_bounds
from robustcore.data.dataset import Dataset
from robustcore.errors import UploadError, shown
from robustcore.limits import MAX_CLASS_NAME, MAX_CLASSES, size_text, upload_memory_budget

MB = 2**20
logger = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 200 * MB
"""Largest accepted upload (the file as stored, before unpacking)."""
MAX_SAMPLES = 1_000_000
"""Most samples (train + test) an upload may hold."""
MIN_SIDE = 8
MAX_SIDE = 256
"""Image height and width must lie in ``MIN_SIDE .. MAX_SIDE`` pixels."""
UNPACKED_FACTOR = 8
"""The unpacked arrays may be at most this many times ``max_bytes`` (guards zip bombs)."""
MAX_MEMBERS = 64
"""Most entries the archive may hold (each costs memory to list before anything is read)."""
TABLE_COPY_BYTES = 32
"""Working bytes per value of a table beyond its own: standardising works on a float64 copy
(and temporaries of its size) and keeps a float32 result."""

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
EXPECTED = (
    "Expected an .npz made with np.savez(path, x_train=..., y_train=..., x_test=..., "
    "y_test=...) and optionally class_names=..."
)


def _size(n: int) -> str:
    return f"{n / MB:,.2f} MB ({n:,} bytes)"


def _dtype_text(dtype: np.dtype) -> str:
    """A dtype for a message; a structured one's field names come from the file, unshown."""
    return "structured (named fields)" if dtype.names else shown(dtype)


def _read_bytes(data: bytes | bytearray | memoryview | str | Path, max_bytes: int) -> bytes:
    """The raw file content, refusing files above ``max_bytes`` before reading them."""
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if not path.is_file():
            raise UploadError(f"No file at {path}. Give the path of an existing .npz file.")
        size = path.stat().st_size
        if size > max_bytes:
            raise UploadError(
                f"The file is {_size(size)}, larger than the limit of {_size(max_bytes)}. "
                "Upload fewer samples or save with np.savez_compressed."
            )
        return path.read_bytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        size = memoryview(data).nbytes
        if size > max_bytes:
            raise UploadError(
                f"The file is {_size(size)}, larger than the limit of {_size(max_bytes)}. "
                "Upload fewer samples or save with np.savez_compressed."
            )
        return bytes(data)
    raise UploadError(
        f"Cannot read an upload from a {type(data).__name__}; give the file's bytes or its path."
    )


def _open_arrays(raw: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    """Parse the archive (no pickle) and return the required arrays plus ``class_names``."""
    if not raw:
        raise UploadError(f"The file is empty. {EXPECTED}")
    if raw[:6] == b"\x93NUMPY":
        raise UploadError(
            "This is a single .npy array, not an .npz archive of several arrays. " + EXPECTED
        )
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise UploadError(
            "The file is not a valid .npz (a zip archive of NumPy arrays); it may be corrupt "
            f"or in another format. {EXPECTED}"
        )
    # Each entry of the central directory (signature PK\1\2) becomes an object when the
    # archive is opened: count them first, so a file of many empty entries is refused cheaply.
    members = raw.count(b"PK\x01\x02")
    if members > MAX_MEMBERS:
        raise UploadError(
            f"The .npz holds {members:,} entries; at most {MAX_MEMBERS} are accepted. Save only "
            "the arrays x_train, y_train, x_test, y_test and class_names."
        )
    try:
        npz = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as err:
        logger.info("npz upload refused: %s", err)
        raise UploadError(
            f"The file is not a valid .npz archive; it may be corrupt. {EXPECTED}"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise UploadError(f"The file is not an .npz archive of arrays. {EXPECTED}")
    with npz:
        keys = list(npz.files)
        missing = [k for k in REQUIRED if k not in keys]
        if missing:
            held = ", ".join(shown(k) or "''" for k in keys[:6]) if keys else "no arrays"
            if len(keys) > 6:
                held += f" and {len(keys) - 6:,} more"
            raise UploadError(
                f"The .npz is missing {', '.join(missing)} (it holds {held}). {EXPECTED}"
            )
        wanted = [*REQUIRED, *(["class_names"] if "class_names" in keys else [])]
        unpacked = sum(
            info.file_size
            for info in npz.zip.infolist()
            if info.filename.removesuffix(".npy") in wanted
        )
        limit = UNPACKED_FACTOR * max_bytes
        if unpacked > limit:
            raise UploadError(
                f"The arrays unpack to {_size(unpacked)}, more than the limit of {_size(limit)}. "
                "Upload fewer or smaller samples."
            )
        _check_working_memory(npz, wanted)
        arrays: dict[str, np.ndarray] = {}
        for key in wanted:
            try:
                arrays[key] = np.asarray(npz[key])
            except ValueError as err:
                if "pickle" in str(err).lower() or "object" in str(err).lower():
                    raise UploadError(
                        f"Array '{key}' holds Python objects (dtype=object), which are never "
                        "unpickled for safety. Store numeric arrays, and class_names as a "
                        "string array, e.g. np.array(['cat', 'dog'], dtype=str)."
                    ) from err
                logger.info("npz array %r refused: %s", key, err)
                raise UploadError(
                    f"Array '{key}' cannot be read; the file may be corrupt. {EXPECTED}"
                ) from None
            except Exception as err:
                logger.info("npz array %r refused: %s", key, err)
                raise UploadError(
                    f"Array '{key}' cannot be read; the file may be corrupt. {EXPECTED}"
                ) from None
    return arrays


def _declared(npz: np.lib.npyio.NpzFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """An array's shape and dtype from its ``.npy`` header, without reading its data."""
    try:
        with npz.zip.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except Exception as err:  # noqa: BLE001 - a damaged or oversized header lands here
        # numpy's own text may advise loading unsafely: it goes to the log only.
        logger.info("npz array %r header refused: %s", key, err)
        raise UploadError(
            f"Array '{key}' cannot be read: the file is corrupt, or the array's header is "
            "damaged or oversized. Save the arrays again with np.savez(path, x_train=..., "
            "y_train=..., x_test=..., y_test=...)."
        ) from None
    return tuple(int(d) for d in shape), dtype


def _check_working_memory(npz: np.lib.npyio.NpzFile, keys: list[str]) -> None:
    """Refuse an archive whose arrays, with the float32 and int64 copies made of them, would
    take more than the upload memory budget; sized from the headers, before unpacking."""
    budget = upload_memory_budget()
    total = 0
    for key in keys:
        shape, dtype = _declared(npz, key)
        if dtype.hasobject and key != "class_names":
            raise UploadError(
                f"Array '{key}' holds Python objects (dtype=object), which are never "
                "unpickled for safety. Store numeric arrays."
            )
        n = int(np.prod(shape, dtype=np.float64)) if shape else 1
        total += n * dtype.itemsize
        if key.startswith("x_") and len(shape) == 2:
            total += TABLE_COPY_BYTES * n  # a table is standardised in float64
        elif key.startswith("x_"):
            total += 3 * 4 * n  # the float32 copy, its scaled copy and the NCHW copy
        elif key.startswith("y_"):
            total += 8 * n  # int64 labels
        if total > budget:
            raise UploadError(
                f"Reading this file would take about {size_text(total)} of memory or more "
                f"(its arrays unpacked, plus the float32 copies computed on); the limit per "
                f"upload is {size_text(budget)}. Upload fewer or smaller samples."
            )


def _check_x(key: str, x: np.ndarray) -> None:
    if x.dtype.kind not in "iuf":
        raise UploadError(
            f"{key} has dtype {_dtype_text(x.dtype)}, which is not numeric. Expected numbers: "
            "uint8 pixels (0..255), floats in [0, 1] for images, or any numbers for a table."
        )
    if x.ndim not in (2, 3, 4):
        raise UploadError(
            f"{key} has shape {x.shape} ({x.ndim}-D). Expected 2-D (samples, features) for a "
            "table, 3-D (N, H, W) grey images, or 4-D (N, C, H, W) / (N, H, W, C) images "
            "with 1 or 3 channels."
        )


def _check_y(key: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise UploadError(
            f"{key} has shape {y.shape}; expected a 1-D array with one class index per sample "
            "(not one-hot)."
        )
    if y.dtype.kind not in "iufb":
        raise UploadError(
            f"{key} has dtype {_dtype_text(y.dtype)}; expected integer class indices 0, 1, 2, ..."
        )
    return y


def _labels_to_int(key: str, y: np.ndarray) -> np.ndarray:
    """Integer labels, accepting floats that are whole numbers; rejects negatives."""
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.floor(y))
        if bad.any():
            example = y[np.argmax(bad)]
            raise UploadError(
                f"{key} has labels that are not whole numbers (e.g. {example}); labels must be "
                "integer class indices 0, 1, 2, ..."
            )
    if y.min() < 0:
        raise UploadError(
            f"{key} has negative labels (smallest {y.min()}); labels must be class indices "
            "starting at 0."
        )
    if y.max() >= 2**31:
        raise UploadError(
            f"{key} has a label of {y.max()}; labels must be class indices 0 .. C-1 for C classes."
        )
    return y.astype(np.int64)


def _missing_classes(present: np.ndarray, num_classes: int, limit: int = 10) -> tuple[list, int]:
    """The first ``limit`` classes of ``0 .. num_classes-1`` absent from sorted ``present``."""
    n_missing = num_classes - len(present)
    first: list[int] = []
    expected = 0
    for value in [*present.tolist(), num_classes]:
        while expected < value and len(first) < limit:
            first.append(expected)
            expected += 1
        if len(first) >= limit:
            break
        expected = value + 1
    return first, n_missing


def _image_layout(x_shape: tuple[int, ...]) -> str:
    """``"NHW"``, ``"NCHW"`` or ``"NHWC"`` for an image array shape."""
    if len(x_shape) == 3:
        return "NHW"
    _, a, _, c = x_shape
    if c in (1, 3) and a not in (1, 3):
        return "NHWC"
    if a in (1, 3):
        return "NCHW"
    raise UploadError(
        f"4-D x has shape {x_shape} but no axis of 1 or 3 channels. Expected (N, C, H, W) or "
        "(N, H, W, C) with C = 1 (grey) or 3 (colour)."
    )


def _to_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return x[:, None, :, :]
    if layout == "NHWC":
        return x.transpose(0, 3, 1, 2)
    return x


def _scale_images(key: str, x: np.ndarray) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 is divided by 255, other values must already fit."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if lo < 0.0 or hi > 1.0:
        raise UploadError(
            f"{key} pixel values range from {lo:g} to {hi:g} (dtype {x.dtype}); scale pixel "
            "values to [0, 1] or store uint8 (0..255)."
        )
    return x.astype(np.float32)


def load_npz(
    data: bytes | bytearray | memoryview | str | Path,
    *,
    name: str = "upload",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Dataset:
    """Validate an uploaded ``.npz`` and return it as a dataset named ``upload:<name>``.

    Args:
        data: the file's bytes (as received from an upload widget) or a path to it.
        name: a short label, usually the file name; the dataset is called ``upload:<name>``.
        max_bytes: largest accepted file size, checked before the file is parsed.

    Returns:
        A new :class:`Dataset`: images as float32 NCHW in [0, 1], tables standardised with
        the training mean and standard deviation.

    Raises:
        UploadError: the file is too large, corrupt, or its arrays are not as expected; the
            message says what is wrong and what is expected.
    """
    raw = _read_bytes(data, max_bytes)
    arrays = _open_arrays(raw, max_bytes)
    x_tr, x_te = arrays["x_train"], arrays["x_test"]
    _check_x("x_train", x_tr)
    _check_x("x_test", x_te)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise UploadError(
            f"x_train samples have shape {x_tr.shape[1:]} but x_test samples have shape "
            f"{x_te.shape[1:]}; both splits need the same sample shape."
        )
    y_tr = _check_y("y_train", arrays["y_train"])
    y_te = _check_y("y_test", arrays["y_test"])
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if len(x) != len(y):
            raise UploadError(
                f"x_{split} has {len(x):,} samples but y_{split} has {len(y):,} labels; each "
                "sample needs exactly one label."
            )
        if len(x) == 0:
            raise UploadError(
                f"The {split} split is empty (x_{split} has 0 samples); both splits need at "
                "least one sample."
            )
    total = len(x_tr) + len(x_te)
    if total > MAX_SAMPLES:
        raise UploadError(
            f"The file holds {total:,} samples; at most {MAX_SAMPLES:,} (train + test) are "
            "supported. Upload a subset."
        )

    modality = "tabular" if x_tr.ndim == 2 else "image"
    layout = ""
    if modality == "image":
        layout = _image_layout(x_tr.shape)
        h, w = x_tr.shape[1:3] if layout == "NHWC" else x_tr.shape[-2:]
        if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
            raise UploadError(
                f"Images are {h}x{w} pixels; expected between {MIN_SIDE}x{MIN_SIDE} and "
                f"{MAX_SIDE}x{MAX_SIDE} (height x width)."
            )
    elif x_tr.shape[1] == 0:
        raise UploadError("x_train has no features (shape (N, 0)); expected (N, F) with F >= 1.")

    for key, x in (("x_train", x_tr), ("x_test", x_te)):
        if x.dtype.kind == "f":
            n_bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            if n_bad:
                raise UploadError(
                    f"{key} contains {n_bad:,} NaN or infinite values; replace or drop those "
                    "samples so every value is a finite number."
                )

    y_tr = _labels_to_int("y_train", y_tr)
    y_te = _labels_to_int("y_test", y_te)
    num_classes = int(max(y_tr.max(), y_te.max())) + 1
    if num_classes < 2:
        raise UploadError(
            "All labels are 0, so there is only one class; a classifier needs at least 2 "
            "classes (labels 0 and 1 or more)."
        )
    present = np.unique(y_tr)
    if len(present) < num_classes:
        first, n_missing = _missing_classes(present, num_classes)
        listed = ", ".join(map(str, first)) + (" ..." if n_missing > len(first) else "")
        raise UploadError(
            f"Every class 0..{num_classes - 1} must occur in y_train (the largest label is "
            f"{num_classes - 1}), but {n_missing:,} are missing from y_train: {listed}. "
            "Relabel the classes as 0..C-1 or add training samples for them."
        )

    if num_classes > MAX_CLASSES:
        raise UploadError(
            f"The labels name {num_classes:,} classes; at most {MAX_CLASSES:,} are supported."
        )
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.dtype.kind not in "US" or cn.ndim != 1 or len(cn) != num_classes:
            raise UploadError(
                f"class_names has shape {cn.shape} and dtype {_dtype_text(cn.dtype)}; expected a "
                f"1-D string array with one name per class ({num_classes} names), e.g. "
                "np.array(['cat', 'dog'])."
            )
        class_names = [
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
            for v in cn.tolist()
        ]
        longest = max(len(n) for n in class_names)
        if longest > MAX_CLASS_NAME:
            raise UploadError(
                f"A class name is {longest:,} characters long; at most {MAX_CLASS_NAME} are "
                "supported. Shorten the names."
            )
    else:
        class_names = [str(i) for i in range(num_classes)]

    notes: list[str] = []
    if modality == "image":
        was_uint8 = x_tr.dtype == np.uint8
        xtr = _scale_images("x_train", _to_nchw(x_tr, layout))
        xte = _scale_images("x_test", _to_nchw(x_te, layout))
        if layout == "NHWC":
            notes.append("converted from (N, H, W, C) to (N, C, H, W)")
        if was_uint8:
            notes.append("uint8 pixels divided by 255")
        xtr_t, xte_t = image_tensor(xtr), image_tensor(xte)
        shape = tuple(xtr_t.shape[1:])
        bounds = unit_bounds(shape)
        kind = f"{'colour' if shape[0] == 3 else 'grey'} images {shape[1]}x{shape[2]}"
    else:
        xtr_t, xte_t, bounds = standardise(x_tr, x_te)
        if not (torch.isfinite(xtr_t).all() and torch.isfinite(xte_t).all()):
            raise UploadError(
                "The table's values are too large to standardise in float32; rescale the "
                "features (e.g. to units of similar size) and upload again."
            )
        notes.append("standardised with the training mean/std")
        kind = f"rows of {x_tr.shape[1]} features"
    description = (
        f"Uploaded file '{name}': {len(y_tr):,} train / {len(y_te):,} test {kind}, "
        f"{num_classes} classes" + (f" ({', '.join(notes)})" if notes else "") + "."
    )
    return Dataset(
        name=f"upload:{name}",
        x_train=xtr_t,
        y_train=label_tensor(y_tr),
        x_test=xte_t,
        y_test=label_tensor(y_te),
        num_classes=num_classes,
        class_names=class_names,
        modality=modality,
        bounds=bounds,
        description=description,
    )
