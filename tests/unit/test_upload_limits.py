"""Uploads are sized from what they declare before anything is unpacked: a small file that
would unpack (with the float32 copies made of it) past the memory budget is refused with a
message naming the limit, and the refusal itself allocates next to nothing."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch

from robustcore.data import Dataset, load_npz
from robustcore.errors import UploadError, ValidationError
from robustcore.limits import upload_memory_budget
from robustcore.models import load_user_weights

MB = 2**20


def _bomb_npz(n_images: int) -> bytes:
    """An .npz whose x_train header declares n_images uint8 28x28 images of zeros,
    deflate-compressed (about 1000x smaller than it unpacks to), streamed without ever
    holding the array."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (n_images, 28, 28)}
    )
    buf = io.BytesIO()
    small = {
        "y_train": (np.arange(n_images) % 2).astype(np.uint8),
        "x_test": np.zeros((2, 28, 28), np.uint8),
        "y_test": np.array([0, 1], np.uint8),
    }
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x_train.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            chunk = bytes(MB)
            left = n_images * 28 * 28
            while left > 0:
                f.write(chunk[: min(left, MB)])
                left -= MB
        for key, arr in small.items():
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, arr)
    return buf.getvalue()


def test_a_small_npz_that_unpacks_past_the_budget_is_refused_cheaply(monkeypatch):
    monkeypatch.setenv("ROBUSTCORE_UPLOAD_MEMORY_MB", "64")
    data = _bomb_npz(60_000)  # 47 MB of pixels, ~0.2 GB with the float32 copies
    assert len(data) < 1 * MB
    tracemalloc.start()
    try:
        with pytest.raises(UploadError, match="the limit per upload is 64.0 MB") as err:
            load_npz(data, max_bytes=10 * MB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "memory" in str(err.value)
    assert peak < 8 * MB, peak  # nothing was unpacked
    # Within the budget the same kind of file loads.
    monkeypatch.setenv("ROBUSTCORE_UPLOAD_MEMORY_MB", "512")
    ds = load_npz(_bomb_npz(2_000), max_bytes=10 * MB)
    assert ds.x_train.shape == (2_000, 1, 28, 28)


def test_the_budget_setting_is_validated(monkeypatch):
    monkeypatch.setenv("ROBUSTCORE_UPLOAD_MEMORY_MB", "lots")
    with pytest.raises(ValidationError, match="positive number of megabytes"):
        upload_memory_budget()
    monkeypatch.delenv("ROBUSTCORE_UPLOAD_MEMORY_MB")
    assert upload_memory_budget() == 2048 * MB


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_class_names_and_counts_are_capped():
    x = np.zeros((4, 8, 8), np.uint8)
    y = np.array([0, 1, 0, 1])
    long = _npz(x_train=x, y_train=y, x_test=x, y_test=y,
                class_names=np.array(["a" * 1_000_000, "b"]))  # fmt: skip
    with pytest.raises(UploadError, match="at most 64 are supported"):
        load_npz(long)
    many = np.arange(1001)
    xs = np.zeros((1001, 8, 8), np.uint8)
    with pytest.raises(UploadError, match="at most 1,000 are supported"):
        load_npz(_npz(x_train=xs, y_train=many, x_test=xs[:2], y_test=many[:2]))


def test_an_oversized_header_is_not_called_python_objects():
    x = np.zeros((4, 8, 8), np.uint8)
    y = np.array([0, 1, 0, 1])
    raw = bytearray(_npz(x_train=x, y_train=y, x_test=x, y_test=y))
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "x_train.npy":  # a header padded far past numpy's limit
                body = b"\x93NUMPY\x02\x00" + (200_000).to_bytes(4, "little") + b" " * 200_000
            dst.writestr(info.filename, body)
    with pytest.raises(UploadError) as err:
        load_npz(buf.getvalue())
    message = str(err.value)
    assert "x_train" in message and "objects" not in message
    assert "allow_pickle" not in message and "max_header_size" not in message


def test_a_deflate_bombed_weights_file_is_refused_before_unpacking(monkeypatch):
    monkeypatch.setenv("ROBUSTCORE_UPLOAD_MEMORY_MB", "32")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("archive/data/0", "w", force_zip64=True) as f:
            for _ in range(64):
                f.write(bytes(MB))
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    ds = Dataset(
        name="lim", x_train=torch.zeros(4, 1, 8, 8), y_train=torch.tensor([0, 1, 0, 1]),
        x_test=torch.zeros(2, 1, 8, 8), y_test=torch.tensor([0, 1]), num_classes=2,
        class_names=["a", "b"], modality="image",
        bounds=(torch.zeros(1, 8, 8), torch.ones(1, 8, 8)),
    )  # fmt: skip
    with pytest.raises(UploadError, match="unpacks to 64.0 MB; the limit per upload is 32.0 MB"):
        load_user_weights("mlp", ds, buf.getvalue(), max_bytes=10 * MB)
