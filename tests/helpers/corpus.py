"""A generated corpus of malformed and hostile uploads, for tests/unit/test_reliability_corpus.py.

Every file is made here, deterministically (each family has its own seeded generator), in
memory; the test writes them under its tmp_path and loads each with the loader the sidebar
uses: :func:`robustcore.data.load_npz` for datasets, :func:`robustcore.models.load_user_weights`
for ``.pt`` / ``.safetensors`` weights and :func:`robustcore.models.load_onnx` for ONNX.
Nothing is downloaded and nothing is checked in.

A hostile file that would run code does so by creating a *marker* file under ``sandbox``
(``os.system("touch ...")``, ``open(..., "w")``, ...): the test asserts the marker never
appears. The ``*-bomb`` families would take far more memory than the upload budget if a
loader unpacked them; they run in a subprocess (:func:`run_manifest`) that measures each
load's peak resident memory, with a small budget (``ROBUSTCORE_UPLOAD_MEMORY_MB``).

Families are ``(name, kind, generator)``; a generator takes ``(rng, sandbox, budget)`` and
returns ``[(case name, bytes, markers), ...]``. ``kind`` is ``npz``, ``weights`` (with the
architecture in ``kind[8:]``, e.g. ``weights:auto``) or ``onnx``.
"""

from __future__ import annotations

import builtins
import gc
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MB = 2**20
IMAGE_SHAPE = (1, 12, 12)
"""The input shape of the dataset the model files are loaded for."""
NUM_CLASSES = 3


@dataclass
class Case:
    family: str
    name: str
    kind: str
    data: bytes
    markers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"

    @property
    def suffix(self) -> str:
        return {"npz": ".npz", "onnx": ".onnx"}.get(self.kind, ".pt")


# --------------------------------------------------------------------------- payloads


class Payload:
    """A pickled object whose unpickling calls ``fn(*args)`` (``__reduce__``); the callable
    is pickled by reference (``posix.system``, ``builtins.open``, ...)."""

    def __init__(self, fn: Callable, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def payloads(sandbox: Path, tag: str) -> list[tuple[str, Payload, str]]:
    """``(name, payload, marker path)``: each payload, if ever run, creates its marker."""
    out = []

    def marker(name: str) -> str:
        return str(sandbox / f"PWNED-{tag}-{name}")

    m = marker("system")
    out.append(("os-system", Payload(os.system, f"touch {m}"), m))
    m = marker("open")
    out.append(("builtins-open", Payload(builtins.open, m, "w"), m))
    m = marker("mkdir")
    out.append(("os-mkdir", Payload(os.mkdir, m), m))
    m = marker("eval")
    out.append(("builtins-eval", Payload(builtins.eval, f"open({m!r}, 'w')"), m))
    m = marker("exec")
    out.append(("builtins-exec", Payload(builtins.exec, f"open({m!r}, 'w').write('x')"), m))
    m = marker("subprocess")
    out.append(("subprocess-call", Payload(subprocess.call, ["touch", m]), m))
    m = marker("copy")
    out.append(("shutil-copy", Payload(shutil.copyfile, "/etc/hostname", m), m))
    return out


# --------------------------------------------------------------------------- npz helpers


def npz(compressed: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npy_header(header: str, body: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """An ``.npy`` member with a hand-written header dict (any text, even hostile)."""
    raw = header.encode("latin1")
    size = 10 + len(raw) + 1
    pad = (-size) % 64
    raw = raw + b" " * pad + b"\n"
    length = struct.pack("<H", len(raw)) if version[0] == 1 else struct.pack("<I", len(raw))
    return b"\x93NUMPY" + bytes(version) + length + raw + body


def zip_members(members: list[tuple[str, bytes]], deflate: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, body in members:
            zf.writestr(name, body)
    return buf.getvalue()


def fast_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A stored zip archive written directly (zipfile takes seconds for 100,000s of entries),
    with the ZIP64 end records when there are 65,535 entries or more."""
    local, central, offset = [], [], 0
    for name, body in entries:
        n, crc = name.encode(), zlib.crc32(body)
        head = (
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, len(body), len(body), len(n), 0
            )
            + n
            + body
        )
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                0,
                0,
                0x21,
                crc,
                len(body),
                len(body),
                len(n),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + n
        )
        local.append(head)
        offset += len(head)
    cd = b"".join(central)
    count = len(entries)
    tail = b""
    if count >= 0xFFFF:
        tail = struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(cd), offset
        ) + struct.pack("<IIQI", 0x07064B50, 0, offset + len(cd), 1)
    eocd = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(cd), offset, 0
    )
    return b"".join(local) + cd + tail + eocd


def base_arrays(rng: np.random.Generator, n: int = 12, side: int = 8) -> dict[str, np.ndarray]:
    """A valid grey-image dataset: 3 classes, every class in the training split."""
    return {
        "x_train": rng.integers(0, 256, (n, side, side), dtype=np.uint8),
        "y_train": np.arange(n) % 3,
        "x_test": rng.integers(0, 256, (4, side, side), dtype=np.uint8),
        "y_test": np.arange(4) % 3,
    }


def valid_npz(rng: np.random.Generator, compressed: bool = False) -> bytes:
    return npz(compressed, **base_arrays(rng))


def with_(rng, **changes) -> bytes:
    """The base dataset with some arrays replaced (``None`` drops one)."""
    arrays = base_arrays(rng)
    arrays.update(changes)
    return npz(**{k: v for k, v in arrays.items() if v is not None})


def _member_data_ranges(raw: bytes) -> list[tuple[str, int, int]]:
    """``(name, start, end)`` of each member's stored bytes in a zip archive."""
    out = []
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 :][:4])
            start = info.header_offset + 30 + name_len + extra_len
            out.append((info.filename, start, start + info.compress_size))
    return out


# --------------------------------------------------------------------------- dataset families


def ds_truncated(rng, sandbox, budget):
    out = []
    for i in range(24):
        raw = valid_npz(rng, compressed=i % 2 == 1)
        cut = int(rng.integers(1, len(raw) - 1))
        out.append((f"cut{i}-at{cut}", raw[:cut], ()))
    return out


def ds_bitflip(rng, sandbox, budget):
    """Bytes flipped inside the array data of stored members: the zip CRC no longer fits."""
    out = []
    for i in range(30):
        raw = bytearray(valid_npz(rng))
        ranges = _member_data_ranges(bytes(raw))
        name, start, end = ranges[int(rng.integers(len(ranges)))]
        header_end = start + 10 + struct.unpack("<H", raw[start + 8 : start + 10])[0]
        for _ in range(int(rng.integers(1, 5))):
            raw[int(rng.integers(header_end, end))] ^= int(rng.integers(1, 256))
        out.append((f"flip{i}-{name}", bytes(raw), ()))
    return out


def ds_junk_prefix(rng, sandbox, budget):
    prefixes = [
        b"GIF89a",
        b"#!/bin/sh\nrm -rf /\n",
        b"<html><script>alert(1)</script>",
        b"\x7fELF\x02\x01\x01",
        b"%PDF-1.7\n",
        b"\x00",
    ]
    prefixes += [rng.bytes(int(rng.integers(1, 4096))) for _ in range(4)]
    return [(f"prefix{i}", p + valid_npz(rng), ()) for i, p in enumerate(prefixes)]


def ds_not_npz(rng, sandbox, budget):
    (_, evil, m), *_ = payloads(sandbox, "notnpz")
    arrays = base_arrays(rng)
    gz = zlib.compress(npz(**arrays))
    cases = [
        ("empty", b"", ()),
        ("random-1k", rng.bytes(1024), ()),
        ("random-64k", rng.bytes(65536), ()),
        ("text", b"x_train,y_train\n1,2\n" * 50, ()),
        ("json", json.dumps({"x_train": [[1, 2]], "y_train": [0]}).encode(), ()),
        ("zlib-of-npz", gz, ()),
        ("single-npy", npy(arrays["x_train"]), ()),
        ("pickle-payload", pickle.dumps({"x_train": evil}), (m,)),
        ("zip-magic-only", b"PK\x03\x04" + rng.bytes(100), ()),
        ("empty-zip", zip_members([]), ()),
        ("zip-of-text", zip_members([("readme.txt", b"hello")]), ()),
        ("nested-zip", zip_members([("x_train.npy", npz(**arrays))]), ()),
        # CSV is not an accepted format: a table saved as text is refused as not an .npz.
        ("csv", b"f1,f2,label\n0.1,0.2,0\n0.3,0.4,1\n", ()),
        ("csv-semicolon-bom", "\ufefff1;f2;label\n0,1;0,2;0\n".encode(), ()),
        ("csv-formula", b"=cmd|' /C calc'!A0,1\n", ()),
        ("tsv-gzip", zlib.compress(b"f1\tf2\tlabel\n1\t2\t0\n"), ()),
    ]
    return cases


def _stream_bomb(
    declared: tuple[int, ...], real_bytes: int, names: tuple[int, int] | None = None
) -> bytes:
    """An .npz whose x_train header declares ``declared`` uint8 pixels, deflate-compressed,
    with ``real_bytes`` zero bytes really in the stream (a zip bomb when large); ``names``
    (count, length) adds class_names of that many empty strings of that width, streamed."""

    def streamed(zf, member: str, header: dict, size: int) -> None:
        raw = io.BytesIO()
        np.lib.format.write_array_header_1_0(raw, header)
        with zf.open(member, "w", force_zip64=True) as f:
            f.write(raw.getvalue())
            chunk = bytes(MB)
            left = size
            while left > 0:
                f.write(chunk[: min(left, MB)])
                left -= MB

    n = declared[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        streamed(
            zf,
            "x_train.npy",
            {"descr": "|u1", "fortran_order": False, "shape": declared},
            real_bytes,
        )
        if names:
            count, width = names
            streamed(
                zf,
                "class_names.npy",
                {"descr": f"<U{width}", "fortran_order": False, "shape": (count,)},
                count * width * 4,
            )
        for key, arr in {
            "y_train": (np.arange(min(n, 10**6)) % 3).astype(np.uint8),
            "x_test": np.zeros((2, *declared[1:]), np.uint8),
            "y_test": np.array([0, 1], np.uint8),
        }.items():
            zf.writestr(f"{key}.npy", npy(arr))
    return buf.getvalue()


def _patch_central_size(raw: bytes, member: str, size: int) -> bytes:
    """Rewrite a member's uncompressed size in the central directory (a lying zip)."""
    raw = bytearray(raw)
    name = member.encode()
    pos = raw.find(b"PK\x01\x02" + b"\x00" * 0, 0)
    while pos >= 0:
        n_len = struct.unpack("<H", raw[pos + 28 : pos + 30])[0]
        if raw[pos + 46 : pos + 46 + n_len] == name:
            raw[pos + 24 : pos + 28] = struct.pack("<I", min(size, 0xFFFFFFFE))
        pos = raw.find(b"PK\x01\x02", pos + 4)
    return bytes(raw)


def ds_bomb(rng, sandbox, budget):
    """Small files that declare (or really unpack to) several times the memory budget."""
    over = 8 * budget
    side = 28
    n = over // (side * side)
    small = base_arrays(rng)
    many = fast_zip(
        [(f"{k}.npy", npy(v)) for k, v in small.items()]
        + [(f"extra{i}.npy", b"") for i in range(150_000)]
    )
    return [
        (
            "deflate-zeros",
            _stream_bomb((budget // 8 // (side * side) * 8, side, side), budget // 8 * 8 + 0),
            (),
        ),
        ("declared-huge-tiny-data", _stream_bomb((n, side, side), 4096), ()),
        ("declared-1e6x256x256", _stream_bomb((10**6, 256, 256), 0), ()),
        (
            "shape-overflow",
            zip_members(
                [
                    (
                        "x_train.npy",
                        npy_header(
                            "{'descr': '|u1', 'fortran_order': False, "
                            "'shape': (4294967296, 4294967296, 4294967296), }"
                        ),
                    ),
                    *[(f"{k}.npy", npy(v)) for k, v in small.items() if k != "x_train"],
                ]
            ),
            (),
        ),
        ("central-dir-lies", _patch_central_size(npz(**small), "x_train.npy", 2**32 - 2), ()),
        (
            "labels-declared-1e9",
            zip_members(
                [
                    (
                        "y_train.npy",
                        npy_header(
                            "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000,), }"
                        ),
                    ),
                    *[(f"{k}.npy", npy(v)) for k, v in small.items() if k != "y_train"],
                ]
            ),
            (),
        ),
        (
            "class-names-itemsize",
            zip_members(
                [
                    (
                        "class_names.npy",
                        npy_header(
                            f"{{'descr': '<U{over}', 'fortran_order': False, 'shape': (3,), }}"
                        ),
                    ),
                    *[(f"{k}.npy", npy(v)) for k, v in small.items()],
                ]
            ),
            (),
        ),
        ("class-names-real", _stream_bomb((12, 8, 8), 12 * 64, names=(3, 2 * budget // 12)), ()),
        ("members-150k", many, ()),
        (
            "x-test-declared-huge",
            zip_members(
                [
                    (
                        "x_test.npy",
                        npy_header(
                            "{'descr': '<f8', 'fortran_order': False, "
                            f"'shape': ({over // 8}, 8, 8), }}"
                        ),
                    ),
                    *[(f"{k}.npy", npy(v)) for k, v in small.items() if k != "x_test"],
                ]
            ),
            (),
        ),
    ]


def ds_x_dtype(rng, sandbox, budget):
    arrays = base_arrays(rng)
    x = arrays["x_train"]
    evil = payloads(sandbox, "xdtype")
    obj = np.empty(x.shape[0], dtype=object)
    for i in range(len(obj)):
        obj[i] = evil[i % len(evil)][1]
    cases = [
        ("object-payload", with_(rng, x_train=obj), tuple(p[2] for p in evil)),
        ("object-lists", with_(rng, x_train=np.array([[1, 2], [3]] * 6, dtype=object)), ()),
        ("complex64", with_(rng, x_train=x.astype(np.complex64)), ()),
        ("complex128", with_(rng, x_train=x.astype(np.complex128)), ()),
        ("unicode", with_(rng, x_train=x.astype(str)), ()),
        ("bytes", with_(rng, x_train=x.astype("S3")), ()),
        ("bool", with_(rng, x_train=x > 127), ()),
        ("datetime64", with_(rng, x_train=x.astype("datetime64[s]")), ()),
        ("timedelta64", with_(rng, x_train=x.astype("timedelta64[s]")), ()),
        (
            "structured",
            with_(rng, x_train=np.zeros((12, 8, 8), dtype=[("a", "u1"), ("b", "f4")])),
            (),
        ),
        ("void", with_(rng, x_train=np.zeros((12, 8, 8), dtype="V4")), ()),
        (
            "structured-long-names",
            with_(
                rng,
                x_train=np.zeros((12, 8, 8), dtype=[("\x1b[2J" + "n" * 500, "u1"), ("b", "f4")]),
            ),
            (),
        ),
        ("x-test-complex", with_(rng, x_test=arrays["x_test"].astype(np.complex64)), ()),
        ("x-test-object", with_(rng, x_test=np.array([None] * 4, dtype=object)), ()),
        ("longdouble-complex", with_(rng, x_train=x.astype(np.clongdouble)), ()),
    ]
    return cases


def ds_y_dtype(rng, sandbox, budget):
    y = base_arrays(rng)["y_train"]
    evil = payloads(sandbox, "ydtype")
    obj = np.empty(len(y), dtype=object)
    for i in range(len(obj)):
        obj[i] = evil[i % len(evil)][1]
    frac = y.astype(float)
    frac[3] = 1.5
    nan, inf, ninf = (y.astype(float) for _ in range(3))
    nan[0], inf[1], ninf[2] = np.nan, np.inf, -np.inf
    neg = y.copy()
    neg[4] = -1
    return [
        ("object-payload", with_(rng, y_train=obj), tuple(p[2] for p in evil)),
        ("complex", with_(rng, y_train=y.astype(np.complex64)), ()),
        ("strings", with_(rng, y_train=np.array(["cat", "dog", "eel"] * 4)), ()),
        ("bytes", with_(rng, y_train=np.array([b"a", b"b", b"c"] * 4)), ()),
        ("datetime", with_(rng, y_train=y.astype("datetime64[D]")), ()),
        ("fractional", with_(rng, y_train=frac), ()),
        ("nan", with_(rng, y_train=nan), ()),
        ("inf", with_(rng, y_train=inf), ()),
        ("minus-inf", with_(rng, y_train=ninf), ()),
        ("negative", with_(rng, y_train=neg), ()),
        (
            "uint64-huge",
            with_(rng, y_train=np.array([0, 1, 2] * 3 + [2**63] * 3, np.uint64)),
            (),
        ),
        ("int-2e40", with_(rng, y_test=np.array([0, 1, 2, 2**40])), ()),
    ]


def ds_x_nonfinite(rng, sandbox, budget):
    out = []
    specs = [
        ("f32-nan-train", np.float32, np.nan, "x_train"),
        ("f32-inf-test", np.float32, np.inf, "x_test"),
        ("f32-minf-train", np.float32, -np.inf, "x_train"),
        ("f64-nan-test", np.float64, np.nan, "x_test"),
        ("f16-inf-train", np.float16, np.inf, "x_train"),
    ]
    for name, dtype, value, key in specs:
        arrays = base_arrays(rng)
        x = (arrays[key] / 255.0).astype(dtype)
        x.flat[int(rng.integers(x.size))] = value
        out.append((name, with_(rng, **{key: x}), ()))
    for name, value in (("tab-nan", np.nan), ("tab-inf", np.inf), ("tab-minf", -np.inf)):
        x = rng.normal(size=(12, 5))
        x[int(rng.integers(12)), int(rng.integers(5))] = value
        out.append((name, with_(rng, x_train=x, x_test=rng.normal(size=(4, 5))), ()))
    big = rng.normal(size=(12, 5)) * 1e308
    out.append(("tab-overflow", with_(rng, x_train=big, x_test=big[:4]), ()))
    f32 = (rng.normal(size=(12, 5)) * 3e38).astype(np.float32)
    out.append(("tab-f32-huge", with_(rng, x_train=f32, x_test=f32[:4]), ()))
    return out


def ds_x_shape(rng, sandbox, budget):
    def u8(*shape):
        return rng.integers(0, 256, shape, dtype=np.uint8)

    t = base_arrays(rng)["x_test"]
    return [
        ("scalar", with_(rng, x_train=np.uint8(3)), ()),
        ("rank1", with_(rng, x_train=u8(12), x_test=u8(4)), ()),
        ("rank5", with_(rng, x_train=u8(12, 1, 8, 8, 1), x_test=u8(4, 1, 8, 8, 1)), ()),
        ("rank6", with_(rng, x_train=u8(12, 1, 1, 8, 8, 1), x_test=u8(4, 1, 1, 8, 8, 1)), ()),
        ("4d-no-channel-5", with_(rng, x_train=u8(12, 5, 8, 8), x_test=u8(4, 5, 8, 8)), ()),
        ("4d-no-channel-2", with_(rng, x_train=u8(12, 8, 8, 2), x_test=u8(4, 8, 8, 2)), ()),
        ("side-4", with_(rng, x_train=u8(12, 4, 4), x_test=u8(4, 4, 4)), ()),
        ("side-7x8", with_(rng, x_train=u8(12, 7, 8), x_test=u8(4, 7, 8)), ()),
        ("side-257", with_(rng, x_train=u8(12, 257, 257), x_test=u8(4, 257, 257)), ()),
        ("side-8x300", with_(rng, x_train=u8(12, 8, 300), x_test=u8(4, 8, 300)), ()),
        ("nhwc-side-2", with_(rng, x_train=u8(12, 2, 2, 3), x_test=u8(4, 2, 2, 3)), ()),
        ("zero-features", with_(rng, x_train=np.zeros((12, 0)), x_test=np.zeros((4, 0))), ()),
        ("zero-width", with_(rng, x_train=u8(12, 8, 0), x_test=u8(4, 8, 0)), ()),
        ("split-sides-differ", with_(rng, x_test=u8(4, 9, 9)), ()),
        (
            "split-features-differ",
            with_(rng, x_train=rng.normal(size=(12, 5)), x_test=rng.normal(size=(4, 6))),
            (),
        ),
        ("split-ranks-differ", with_(rng, x_test=u8(4, 1, 8, 8)), ()),
        ("empty-train", with_(rng, x_train=u8(0, 8, 8), y_train=np.zeros(0, int)), ()),
        ("empty-test", with_(rng, x_test=u8(0, 8, 8), y_test=np.zeros(0, int)), ()),
        ("x-test-2d", with_(rng, x_test=t.reshape(4, 64)), ()),
        (
            "all-empty",
            with_(
                rng,
                x_train=u8(0, 8, 8),
                y_train=np.zeros(0, int),
                x_test=u8(0, 8, 8),
                y_test=np.zeros(0, int),
            ),
            (),
        ),
    ]


def ds_y_shape(rng, sandbox, budget):
    y = np.arange(12) % 3
    return [
        ("one-hot", with_(rng, y_train=np.eye(3)[y]), ()),
        ("two-columns", with_(rng, y_train=np.stack([y, y], 1)), ()),
        ("rank3", with_(rng, y_train=y.reshape(12, 1, 1)), ()),
        ("row-vector", with_(rng, y_train=y.reshape(1, 12)), ()),
        ("scalar", with_(rng, y_train=np.int64(1)), ()),
        ("train-short", with_(rng, y_train=y[:11]), ()),
        ("train-long", with_(rng, y_train=np.arange(13) % 3), ()),
        ("test-short", with_(rng, y_test=np.array([0, 1, 2])), ()),
        ("test-empty", with_(rng, y_test=np.zeros(0, int)), ()),
        ("test-one-hot", with_(rng, y_test=np.eye(3)[[0, 1, 2, 0]]), ()),
    ]


def ds_missing_keys(rng, sandbox, budget):
    arrays = base_arrays(rng)
    out = [(f"no-{k}", with_(rng, **{k: None}), ()) for k in arrays]
    out.append(("only-x", npz(x_train=arrays["x_train"], x_test=arrays["x_test"]), ()))
    out.append(("upper-case", npz(**{k.upper(): v for k, v in arrays.items()}), ()))
    out.append(("renamed", npz(X=arrays["x_train"], Y=arrays["y_train"]), ()))
    out.append(("no-npy-suffix", zip_members([(k, npy(v)) for k, v in arrays.items()]), ()))
    out.append(
        ("in-subfolder", zip_members([(f"data/{k}.npy", npy(v)) for k, v in arrays.items()]), ())
    )
    out.append(("positional", _positional(arrays), ()))
    many = {f"array_{i:05d}_" + "n" * 40: np.zeros(1, np.uint8) for i in range(2000)}
    out.append(("2000-other-arrays", npz(**many), ()))
    out.append(("empty-names", zip_members([(".npy", npy(arrays["x_train"]))]), ()))
    return out


def _positional(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, *arrays.values())  # arr_0, arr_1, ...
    return buf.getvalue()


def ds_classes(rng, sandbox, budget):
    x = base_arrays(rng)["x_train"]
    evil = payloads(sandbox, "classes")
    names = np.empty(3, dtype=object)
    for i in range(3):
        names[i] = evil[i][1]
    xs = rng.integers(0, 256, (1002, 8, 8), dtype=np.uint8)
    return [
        ("one-class", with_(rng, y_train=np.zeros(12, int), y_test=np.zeros(4, int)), ()),
        ("class-missing-from-train", with_(rng, y_train=np.arange(12) % 2 * 2), ()),
        (
            "1001-classes",
            with_(rng, x_train=xs[:1001], y_train=np.arange(1001), y_test=np.array([0, 1, 2, 3])),
            (),
        ),
        ("label-2e31", with_(rng, y_test=np.array([0, 1, 2, 2**31])), ()),
        ("label-5000", with_(rng, y_train=np.append(np.arange(11) % 3, 5000)), ()),
        ("names-too-few", with_(rng, class_names=np.array(["a", "b"])), ()),
        ("names-too-many", with_(rng, class_names=np.array(list("abcd"))), ()),
        ("names-numeric", with_(rng, class_names=np.arange(3)), ()),
        ("names-2d", with_(rng, class_names=np.array([["a", "b", "c"]])), ()),
        ("names-65-chars", with_(rng, class_names=np.array(["a" * 65, "b", "c"])), ()),
        ("names-100k-chars", with_(rng, class_names=np.array(["z" * 100_000, "b", "c"])), ()),
        ("names-object-payload", with_(rng, class_names=names), tuple(p[2] for p in evil[:3])),
        ("names-empty", with_(rng, class_names=np.array([], dtype=str)), ()),
        ("names-bytes-300", with_(rng, class_names=np.array([b"q" * 300, b"b", b"c"])), ()),
        ("names-scalar", with_(rng, class_names=np.array("abc")), ()),
        (
            "x-too-many-classes-test-only",
            with_(rng, x_test=x[:4], y_test=np.array([0, 1, 2, 7])),
            (),
        ),
    ]


def ds_pixel_range(rng, sandbox, budget):
    a = base_arrays(rng)
    x, t = a["x_train"], a["x_test"]
    return [
        ("f32-0-255", with_(rng, x_train=x.astype(np.float32), x_test=t.astype(np.float32)), ()),
        ("f32-negative", with_(rng, x_train=(x / 255.0 - 0.5).astype(np.float32)), ()),
        ("f32-just-over-1", with_(rng, x_train=np.full((12, 8, 8), 1.0001, np.float32)), ()),
        ("f64-1e10", with_(rng, x_test=np.full((4, 8, 8), 1e10)), ()),
        ("uint16", with_(rng, x_train=x.astype(np.uint16) * 257), ()),
        ("int8-negative", with_(rng, x_train=(x.astype(np.int16) - 128).astype(np.int8)), ()),
        ("int64-big", with_(rng, x_test=t.astype(np.int64) * 2**40), ()),
        (
            "nhwc-f32-255",
            with_(
                rng,
                x_train=rng.random((12, 8, 8, 3)).astype(np.float32) * 255,
                x_test=rng.random((4, 8, 8, 3)).astype(np.float32),
            ),
            (),
        ),
    ]


def _with_flag(
    raw: bytes,
    member: str,
    *,
    method: int | None = None,
    flags: int | None = None,
    attr: int | None = None,
) -> bytes:
    """Rewrite a member's compression method / flag bits (local and central headers) or its
    external attributes (central header)."""
    raw = bytearray(raw)
    name = member.encode()
    for sig, off_flags, off_method, name_at in (
        (b"PK\x03\x04", 6, 8, 30),
        (b"PK\x01\x02", 8, 10, 46),
    ):
        pos = raw.find(sig)
        while pos >= 0:
            n_len = struct.unpack("<H", raw[pos + (26 if sig == b"PK\x03\x04" else 28) :][:2])[0]
            if raw[pos + name_at : pos + name_at + n_len] == name:
                if flags is not None:
                    raw[pos + off_flags : pos + off_flags + 2] = struct.pack("<H", flags)
                if method is not None:
                    raw[pos + off_method : pos + off_method + 2] = struct.pack("<H", method)
                if attr is not None and sig == b"PK\x01\x02":
                    raw[pos + 5] = 3  # made on unix
                    raw[pos + 38 : pos + 42] = struct.pack("<I", attr)
            pos = raw.find(sig, pos + 4)
    return bytes(raw)


def ds_members(rng, sandbox, budget):
    arrays = base_arrays(rng)
    members = [(f"{k}.npy", npy(v)) for k, v in arrays.items()]
    raw = zip_members(members)
    rest = [(n, b) for n, b in members if n != "x_train.npy"]
    (_, evil, m), *_ = payloads(sandbox, "members")
    return [
        ("unknown-method", _with_flag(raw, "x_train.npy", method=99), ()),
        ("encrypted-flag", _with_flag(raw, "x_train.npy", flags=1), ()),
        (
            "symlink-to-passwd",
            _with_flag(
                zip_members([("x_train.npy", b"/etc/passwd"), *rest]),
                "x_train.npy",
                attr=0o120777 << 16,
            ),
            (),
        ),
        ("dotdot-names", zip_members([(f"../{n}", b) for n, b in members]), ()),
        ("absolute-names", zip_members([(f"/tmp/{n}", b) for n, b in members]), ()),
        ("x-is-pickle", zip_members([("x_train.npy", pickle.dumps(evil)), *rest]), (m,)),
        ("x-is-zip", zip_members([("x_train.npy", raw), *rest]), ()),
        ("x-is-empty", zip_members([("x_train.npy", b""), *rest]), ()),
        ("x-is-text", zip_members([("x_train.npy", b"1,2,3\n4,5,6\n"), *rest]), ()),
        ("x-is-directory", zip_members([("x_train.npy/", b""), *rest]), ()),
    ]


def ds_npy_header(rng, sandbox, budget):
    a = base_arrays(rng)
    rest = [(f"{k}.npy", npy(v)) for k, v in a.items() if k != "x_train"]
    body = a["x_train"].tobytes()
    m = str(sandbox / "PWNED-npy-header")

    def case(name, header, version=(1, 0), markers=()):
        return (
            name,
            zip_members([("x_train.npy", npy_header(header, body, version)), *rest]),
            markers,
        )

    return [
        case(
            "code-in-descr",
            f"{{'descr': __import__('os').system('touch {m}'), "
            "'fortran_order': False, 'shape': (12, 8, 8), }",
            markers=(m,),
        ),
        case(
            "code-in-shape",
            f"{{'descr': '|u1', 'fortran_order': False, 'shape': open('{m}', 'w'), }}",
            markers=(m,),
        ),
        case("bad-descr", "{'descr': '<q9', 'fortran_order': False, 'shape': (12, 8, 8), }"),
        case("negative-shape", "{'descr': '|u1', 'fortran_order': False, 'shape': (-12, 8, 8), }"),
        case("float-shape", "{'descr': '|u1', 'fortran_order': False, 'shape': (12.5, 8, 8), }"),
        case("string-shape", "{'descr': '|u1', 'fortran_order': False, 'shape': 'abc', }"),
        case("missing-shape", "{'descr': '|u1', 'fortran_order': False, }"),
        case("not-a-dict", "[1, 2, 3]"),
        case(
            "version-9",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (12, 8, 8), }",
            version=(9, 9),
        ),
        case("object-descr", "{'descr': '|O', 'fortran_order': False, 'shape': (12, 8, 8), }"),
    ]


# --------------------------------------------------------------------------- model helpers


def image_dataset():
    """The 1x12x12, 3-class dataset the model files are loaded for."""
    import torch

    from robustcore.data import Dataset

    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % NUM_CLASSES
    x = torch.rand(64, *IMAGE_SHAPE, generator=g)
    return Dataset(
        name="corpus",
        x_train=x,
        y_train=y,
        x_test=x[:16].clone(),
        y_test=y[:16].clone(),
        num_classes=NUM_CLASSES,
        class_names=["a", "b", "c"],
        modality="image",
        bounds=(torch.zeros(IMAGE_SHAPE), torch.ones(IMAGE_SHAPE)),
    )


def mlp_state(seed: int = 0) -> dict:
    import torch

    from robustcore.models import build_model

    torch.manual_seed(seed)
    return {
        k: v.detach().clone()
        for k, v in build_model("mlp", IMAGE_SHAPE, NUM_CLASSES).state_dict().items()
    }


def saved(obj, legacy: bool = False) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def safetensors_bytes(header: dict | bytes, body: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


# --------------------------------------------------------------------------- weights families


def w_pickle(rng, sandbox, budget):
    out = []
    for i, (name, evil, m) in enumerate(payloads(sandbox, "pt")):
        out.append((f"{name}-in-state-dict", saved({"1.weight": evil}), (m,)))
        proto = [0, 2, 4, 5, 3, 1, 2][i]
        out.append((f"{name}-raw-pickle-p{proto}", pickle.dumps(evil, protocol=proto), (m,)))
    (_, evil, m), (_, evil2, m2), *_ = payloads(sandbox, "pt-legacy")
    out.append(("legacy-format-payload", saved({"w": evil}, legacy=True), (m,)))
    zipped = zip_members(
        [
            ("archive/data.pkl", pickle.dumps(evil2, protocol=2)),
            ("archive/version", b"3\n"),
            ("archive/byteorder", b"little"),
        ]
    )
    out.append(("zip-data-pkl-payload", zipped, (m2,)))
    return out


def w_torchscript(rng, sandbox, budget):
    import torch

    from robustcore.models import build_model

    def script(module) -> bytes:
        buf = io.BytesIO()
        torch.jit.save(module, buf)
        return buf.getvalue()

    class Touch(torch.nn.Module):
        def forward(self, x):
            return x * 2

    mlp = build_model("mlp", IMAGE_SHAPE, NUM_CLASSES).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(mlp, torch.zeros(1, *IMAGE_SHAPE))
    return [
        ("scripted-linear", script(torch.jit.script(torch.nn.Linear(2, 2))), ()),
        ("scripted-mlp-same-names", script(torch.jit.script(mlp)), ()),
        ("traced-mlp", script(traced), ()),
        ("scripted-custom", script(torch.jit.script(Touch())), ()),
        (
            "code-only-archive",
            zip_members(
                [
                    ("archive/code/__torch__.py", b"import os\n"),
                    ("archive/constants.pkl", b"\x80\x02)."),
                    ("archive/version", b"3\n"),
                ]
            ),
            (),
        ),
    ]


def w_truncated(rng, sandbox, budget):
    raw = saved(mlp_state())
    cuts = sorted({int(c) for c in rng.integers(1, len(raw) - 1, 10)})
    return [(f"cut-at-{c}", raw[:c], ()) for c in cuts]


def w_bitflip(rng, sandbox, budget):
    """Bytes flipped in the pickled record of a state_dict (names, shapes, strides)."""
    raw = saved(mlp_state())
    (_, start, end), *_ = [r for r in _member_data_ranges(raw) if r[0].endswith("data.pkl")]
    out = []
    for i in range(12):
        b = bytearray(raw)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(start, end))] ^= int(rng.integers(1, 256))
        out.append((f"flip{i}", bytes(b), ()))
    return out


def w_safetensors(rng, sandbox, budget):
    from safetensors.torch import save as st_save

    state = {k: v.contiguous() for k, v in mlp_state().items()}
    good = st_save(state)
    n = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8 : 8 + n])
    body = good[8 + n :]

    def edited(fn) -> bytes:
        h = json.loads(json.dumps(header))
        fn(h)
        return safetensors_bytes(h, body)

    key = "1.weight"

    def set_(field_, value, k=key):
        def fn(h):
            h[k][field_] = value

        return fn

    flipped = bytearray(good)
    for _ in range(3):
        flipped[8 + int(rng.integers(n))] ^= 0x20
    return [
        ("truncated-half", good[: len(good) // 2], ()),
        ("truncated-header", good[: 8 + n // 2], ()),
        ("header-length-huge", struct.pack("<Q", 2**62) + good[8:], ()),
        ("header-length-past-end", struct.pack("<Q", len(good)) + good[8:], ()),
        ("header-not-json", safetensors_bytes(b"{not json at all" + b" " * 8, body), ()),
        ("header-json-list", safetensors_bytes(b'[{"a": 1}]', body), ()),
        ("header-bitflips", bytes(flipped), ()),
        ("offsets-past-end", edited(set_("data_offsets", [0, len(body) + 4096])), ()),
        ("offsets-reversed", edited(set_("data_offsets", [64, 0])), ()),
        ("offsets-negative", edited(set_("data_offsets", [-4, 60])), ()),
        ("shape-huge", edited(set_("shape", [2**40, 2**40])), ()),
        ("shape-negative", edited(set_("shape", [-256, 144])), ()),
        ("shape-wrong-product", edited(set_("shape", [256, 143])), ()),
        ("dtype-unknown", edited(set_("dtype", "F128")), ()),
        ("dtype-wider", edited(set_("dtype", "F64")), ()),
        (
            "offsets-overlap",
            edited(
                lambda h: h["1.bias"].update(
                    data_offsets=h["1.weight"]["data_offsets"][:1]
                    + [h["1.weight"]["data_offsets"][0] + 1024]
                )
            ),
            (),
        ),
        ("metadata-not-strings", edited(lambda h: h.update(__metadata__={"a": [1, 2]})), ()),
        ("entry-not-dict", edited(lambda h: h.update({"5.bias": 3})), ()),
        ("empty-header", safetensors_bytes(b"{}", b""), ()),
        ("wrong-names", st_save({f"net.{k}": v for k, v in state.items()}), ()),
    ]


def _legacy_numel_lie(numel: int) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"1.weight": torch.zeros(3)}, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    i = raw.find(b"cpu")
    j = raw.find(b"K\x03", i)
    return raw[:j] + b"J" + numel.to_bytes(4, "little") + raw[j + 2 :]


def _views_archive(n: int) -> bytes:
    """A ``torch.save`` archive of ``n`` one-element tensors viewing one storage, its pickle
    written op by op (torch.save takes seconds for 100,000s of tensors): a small file that
    unpickles into ``n`` tensor objects."""
    storage = (
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000"
        b"X\x03\x00\x00\x00cpuK\x01tQ"
    )
    tensor = (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + storage
        + b"K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR"
    )
    body = b"".join(
        b"X" + struct.pack("<I", len(k)) + k + tensor for k in (f"t{i}".encode() for i in range(n))
    )
    pkl = b"\x80\x02}(" + body + b"u."
    return zip_members(
        [
            ("archive/data.pkl", pkl),
            ("archive/data/0", bytes(4)),
            ("archive/version", b"3\n"),
            ("archive/byteorder", b"little"),
        ]
    )


def w_bomb(rng, sandbox, budget):
    import torch
    from safetensors.torch import save as st_save

    over = 2 * budget
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("archive/data/0", "w", force_zip64=True) as f:
            for _ in range(over // MB):
                f.write(bytes(MB))
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    n_views = 200_000
    views = _views_archive(n_views)
    st_header = {
        f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n_views)
    }
    entries = fast_zip(
        [(f"archive/data/{i}", b"") for i in range(150_000)]
        + [("archive/data.pkl", b"\x80\x02}q\x00.")]
    )
    lying = _patch_central_size(saved(mlp_state()), "archive/data/0", 2**32 - 2)
    nones = b"\x80\x02(" + b"N" * (4 * budget // 8) + b"l."
    return [
        ("deflate-zeros", deflated.getvalue(), ()),
        ("central-dir-lies", lying, ()),
        ("zip-150k-entries", entries, ()),
        ("200k-shared-views", views, ()),
        ("safetensors-200k-tensors", safetensors_bytes(st_header, b""), ()),
        ("legacy-storage-numel-1e9", _legacy_numel_lie(10**9), ()),
        ("pickle-list-of-nones", nones, ()),
        ("st-one-huge-tensor-claim", st_save({"w": torch.zeros(4)})[:8] + b"{" + b" " * 7, ()),
    ]


def w_state(rng, sandbox, budget):
    import torch

    good = mlp_state()
    names = list(good)
    out = [
        ("renamed", saved({f"model.{k}": v for k, v in good.items()}), ()),
        ("missing-one", saved({k: v for k, v in good.items() if k != names[-1]}), ()),
        ("extra-one", saved({**good, "extra.weight": torch.zeros(3)}), ()),
        ("wrong-shape", saved({**good, names[0]: torch.zeros(256, 100)}), ()),
        ("transposed", saved({**good, names[0]: good[names[0]].t().contiguous()}), ()),
        ("empty-dict", saved({}), ()),
        ("a-list", saved(list(good.values())), ()),
        ("a-tensor", saved(good[names[0]]), ()),
        ("nested-non-tensor", saved({"state_dict": {"a": {"b": torch.zeros(1)}}}), ()),
        ("int-values", saved({k: 1 for k in good}), ()),
        ("str-values", saved({k: "w" for k in good}), ()),
        ("none", saved(None), ()),
        ("key-100k-chars", saved({**good, "k" * 100_000: torch.zeros(1)}), ()),
        ("key-control-chars", saved({"\x1b[31mred\x00\n" + k: v for k, v in good.items()}), ()),
        ("scalar-tensors", saved({k: torch.tensor(0.0) for k in good}), ()),
    ]
    return out


def w_values(rng, sandbox, budget):
    import torch

    good = mlp_state()
    first = next(iter(good))
    out = []
    for dtype in (torch.int64, torch.int8, torch.bool, torch.complex64, torch.complex128):
        out.append((f"dtype-{str(dtype)[6:]}", saved({**good, first: good[first].to(dtype)}), ()))
    for label, value in (
        ("nan", float("nan")),
        ("inf", float("inf")),
        ("minus-inf", -float("inf")),
    ):
        w = good[first].clone()
        w[0, 0] = value
        out.append((label, saved({**good, first: w}), ()))
    out.append(("overflow-1e38", saved({k: torch.full_like(v, 3e38) for k, v in good.items()}), ()))
    zeros = {k: torch.zeros_like(v) for k, v in good.items()}
    out.append(("all-zero-input-independent", saved(zeros), ()))
    first_zero = {**good, first: torch.zeros_like(good[first])}
    out.append(("first-layer-zero-input-independent", saved(first_zero), ()))
    return out


# --------------------------------------------------------------------------- ONNX helpers


def onnx_model(
    nodes,
    inits=(),
    *,
    out_shape=("N", NUM_CLASSES),
    in_shape=("N", *IMAGE_SHAPE),
    opsets=(("", 17),),
    functions=(),
    sparse=(),
    inputs=None,
    out_type=None,
) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        list(nodes),
        "corpus",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", out_type or TensorProto.FLOAT, list(out_shape))],
        list(inits),
        sparse_initializer=list(sparse),
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
        functions=list(functions),
    )
    return model.SerializeToString()


def _w(name: str, arr) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(arr), name)


def mlp_nodes(rng, out: int = NUM_CLASSES, w1=None):
    """Flatten -> Gemm(8) -> Relu -> Gemm(out): a valid classifier on 1x12x12 inputs."""
    from onnx import helper

    inits = [
        _w("W1", rng.normal(size=(8, 144)).astype(np.float32) if w1 is None else w1),
        _w("B1", np.zeros(8, np.float32)),
        _w("W2", rng.normal(size=(out, 8)).astype(np.float32)),
        _w("B2", np.zeros(out, np.float32)),
    ]
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W1", "B1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], transB=1),
    ]
    return nodes, inits


def _head(src: str, rng):
    """Nodes mapping a (N, F) tensor ``src`` to (N, 3) logits via ReduceMean and a Gemm."""
    from onnx import helper

    return (
        [
            helper.make_node("ReduceMean", [src], ["m"], axes=[1], keepdims=1),
            helper.make_node("Gemm", ["m", "WH", "BH"], ["y"], transB=1),
        ],
        [
            _w("WH", rng.normal(size=(NUM_CLASSES, 1)).astype(np.float32)),
            _w("BH", np.arange(NUM_CLASSES, dtype=np.float32)),
        ],
    )


def onnx_ops(rng, sandbox, budget):
    from onnx import helper

    def swapped(op: str, domain: str = "", **attrs):
        nodes, inits = mlp_nodes(rng)
        nodes[2] = helper.make_node(op, ["h"], ["r"], domain=domain, **attrs)
        opsets = (("", 17),) + (((domain, 1),) if domain else ())
        return onnx_model(nodes, inits, opsets=opsets)

    body = helper.make_graph(
        [helper.make_node("Relu", ["h"], ["r"])],
        "b",
        [],
        [helper.make_tensor_value_info("r", 1, None)],
    )
    nodes, inits = mlp_nodes(rng)
    nodes[2] = helper.make_node("If", ["h"], ["r"], then_branch=body, else_branch=body)
    with_if = onnx_model(nodes, inits)
    fn = helper.make_function(
        "local.fn",
        "Relu2",
        ["a"],
        ["b"],
        [helper.make_node("Relu", ["a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    nodes, inits = mlp_nodes(rng)
    nodes[2] = helper.make_node("Relu2", ["h"], ["r"], domain="local.fn")
    with_fn = onnx_model(nodes, inits, opsets=(("", 17), ("local.fn", 1)), functions=[fn])
    return [
        ("custom-domain", swapped("Relu", "com.evil"), ()),
        ("custom-op-long-name", swapped("X" * 10_000, "com.evil\n\x1b[2J"), ()),
        ("ms-domain", swapped("Gelu", "com.microsoft"), ()),
        ("unknown-standard-op", swapped("FrobnicateAll"), ()),
        ("random-normal-like", swapped("RandomNormalLike"), ()),
        ("string-normalizer", swapped("StringNormalizer"), ()),
        ("resize", swapped("Resize"), ()),
        ("einsum", swapped("Einsum", equation="ij->ij"), ()),
        ("if-subgraph", with_if, ()),
        ("local-function", with_fn, ()),
        ("empty-op-type", swapped(""), ()),
    ]


def onnx_external(rng, sandbox, budget):
    from onnx import AttributeProto, TensorProto, helper, numpy_helper

    def external(t, location: str):
        t.data_location = TensorProto.EXTERNAL
        t.ClearField("raw_data")
        t.ClearField("float_data")
        e = t.external_data.add()
        e.key, e.value = "location", location
        return t

    out = []
    for loc in (
        "/etc/passwd",
        "../../../../etc/passwd",
        "/proc/self/environ",
        str(sandbox / "weights.bin"),
    ):
        nodes, inits = mlp_nodes(rng)
        external(inits[0], loc)
        out.append(
            (f"initializer-{loc.strip('/').replace('/', '_')[:20]}", onnx_model(nodes, inits), ())
        )
    nodes, inits = mlp_nodes(rng)
    b1 = inits.pop(1)
    const = helper.make_node("Constant", [], ["B1"], value=external(b1, "/etc/passwd"))
    out.append(("constant-node", onnx_model([const, *nodes], inits), ()))
    nodes, inits = mlp_nodes(rng)
    inits.pop(1)
    values = external(numpy_helper.from_array(np.zeros(1, np.float32), "B1"), "/etc/passwd")
    sp = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([0], np.int64)), [8])
    out.append(("sparse-initializer", onnx_model(nodes, inits, sparse=[sp]), ()))
    nodes, inits = mlp_nodes(rng)
    inits.pop(1)
    const = helper.make_node("Constant", [], ["B1"])
    attr = const.attribute.add()
    attr.name, attr.type = "sparse_value", AttributeProto.SPARSE_TENSOR
    attr.sparse_tensor.CopyFrom(sp)
    out.append(("constant-sparse-value", onnx_model([const, *nodes], inits), ()))
    nodes, inits = mlp_nodes(rng)
    node = nodes[2]
    attr = node.attribute.add()
    attr.name, attr.type = "payload", AttributeProto.TENSORS
    attr.tensors.append(
        external(numpy_helper.from_array(np.zeros(3, np.float32), "t"), "/etc/shadow")
    )
    out.append(("tensors-attribute", onnx_model(nodes, inits), ()))
    return out


def onnx_garbage(rng, sandbox, budget):
    nodes, inits = mlp_nodes(rng)
    good = onnx_model(nodes, inits)
    out = [
        ("random-bytes", rng.bytes(2048), ()),
        ("text", b"ir_version: 8\ngraph { node { op_type: 'Relu' } }\n", ()),
        ("empty-graph", onnx_model([], []), ()),
        ("a-pt-file", saved(mlp_state()), ()),
        ("an-npz", valid_npz(rng), ()),
        ("varint-garbage", b"\x08" + b"\xff" * 20, ()),
    ]
    for _ in range(4):
        cut = int(rng.integers(8, len(good) - 8))
        out.append((f"truncated-{cut}", good[:cut], ()))
    return out


def onnx_bitflip(rng, sandbox, budget):
    """Bytes flipped in the graph's structure (the part before the weight data)."""
    nodes, inits = mlp_nodes(rng)
    good = onnx_model(nodes, [])
    out = []
    for i in range(6):
        b = bytearray(good)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
        out.append((f"flip{i}", bytes(b) + b"", ()))
    return out


def onnx_wrong_output(rng, sandbox, budget):
    from onnx import TensorProto, helper

    out = []
    for n_out in (2, 5, 1000):
        nodes, inits = mlp_nodes(rng, out=n_out)
        out.append((f"{n_out}-classes", onnx_model(nodes, inits, out_shape=("N", n_out)), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes.append(helper.make_node("Flatten", ["g"], ["y"], axis=0))  # (1, N * 3)
    out.append(("flattened-batch", onnx_model(nodes, inits, out_shape=(1, "M")), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes.append(helper.make_node("Unsqueeze", ["g", "AX"], ["y"]))
    out.append(
        (
            "extra-axis",
            onnx_model(nodes, [*inits, _w("AX", np.array([2]))], out_shape=("N", 3, 1)),
            (),
        )
    )
    const = helper.make_node("Constant", [], ["y"], value=_w("c", np.ones((2, 3), np.float32)))
    out.append(("constant-batch-of-2", onnx_model([const]), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes.append(helper.make_node("Cast", ["g"], ["y"], to=TensorProto.INT64))
    out.append(("int64-logits", onnx_model(nodes, inits, out_type=TensorProto.INT64), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes.append(helper.make_node("Transpose", ["g"], ["y"], perm=[1, 0]))
    out.append(("transposed", onnx_model(nodes, inits, out_shape=(3, "N")), ()))
    return out


def onnx_nonfinite(rng, sandbox, budget):
    from onnx import helper

    out = []
    for label, value in (("nan-weights", np.nan), ("inf-weights", np.inf)):
        w = rng.normal(size=(8, 144)).astype(np.float32)
        w[:] = value
        nodes, inits = mlp_nodes(rng, w1=w)
        out.append((label, onnx_model(nodes, inits), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes.append(helper.make_node("Div", ["g", "Z"], ["y"]))
    out.append(("divide-by-zero", onnx_model(nodes, [*inits, _w("Z", np.float32(0))]), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes += [
        helper.make_node("Sub", ["g", "BIG"], ["s"]),  # far below zero
        helper.make_node("Sqrt", ["s"], ["y"]),
    ]
    out.append(("sqrt-negative", onnx_model(nodes, [*inits, _w("BIG", np.float32(1e6))]), ()))
    nodes, inits = mlp_nodes(rng)
    nodes[3].output[0] = "g"
    nodes.append(helper.make_node("Pow", ["g", "E"], ["y"]))
    out.append(("pow-overflow", onnx_model(nodes, [*inits, _w("E", np.float32(1e4))]), ()))
    return out


def onnx_input_independent(rng, sandbox, budget):
    from onnx import helper

    out = []
    nodes, inits = mlp_nodes(rng, w1=np.zeros((8, 144), np.float32))
    out.append(("zero-first-layer", onnx_model(nodes, inits), ()))
    nodes, inits = mlp_nodes(rng)
    nodes.insert(1, helper.make_node("Mul", ["f0", "Z"], ["f"]))
    nodes[0].output[0] = "f0"
    out.append(("times-zero", onnx_model(nodes, [*inits, _w("Z", np.float32(0))]), ()))
    nodes, inits = mlp_nodes(rng)
    nodes.insert(1, helper.make_node("Sub", ["f0", "f0"], ["f"]))
    nodes[0].output[0] = "f0"
    out.append(("x-minus-x", onnx_model(nodes, inits), ()))
    nodes, inits = mlp_nodes(rng)
    nodes.insert(1, helper.make_node("Clip", ["f0", "LO", "LO"], ["f"]))
    nodes[0].output[0] = "f0"
    out.append(("clipped-to-a-point", onnx_model(nodes, [*inits, _w("LO", np.float32(0.5))]), ()))
    return out


def onnx_wrong_input(rng, sandbox, budget):
    from onnx import TensorProto, helper

    out = []
    w = rng.normal(size=(8, 3 * 32 * 32)).astype(np.float32)
    nodes, inits = mlp_nodes(rng, w1=w)
    out.append(("expects-3x32x32", onnx_model(nodes, inits, in_shape=("N", 3, 32, 32)), ()))
    nodes, inits = mlp_nodes(rng)
    out.append(("expects-rank-2", onnx_model(nodes[1:], inits, in_shape=("N", 144)), ()))
    nodes, inits = mlp_nodes(rng)
    two = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 12, 12]),
        helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", 8]),
    ]
    nodes[1] = helper.make_node("Gemm", ["f", "W1", "B1"], ["h0"], transB=1)
    nodes.insert(2, helper.make_node("Add", ["h0", "x2"], ["h"]))
    out.append(("two-inputs", onnx_model(nodes, inits, inputs=two), ()))
    nodes, inits = mlp_nodes(rng)
    ints = [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1, 12, 12])]
    out.append(("int64-input", onnx_model(nodes, inits, inputs=ints), ()))
    return out


def onnx_bomb(rng, sandbox, budget):
    """Tiny graphs of accepted operators whose forward pass would take several times the
    budget: padding, doubling concatenations, broadcast outer products, padded convs."""
    from onnx import helper

    side = int((8 * budget / 4) ** 0.5)  # a padded image of 8x the budget per sample
    pad = (side - 12) // 2
    out = []
    nodes = [
        helper.make_node("Pad", ["x", "P"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
    ]
    h, i = _head("f", rng)
    out.append(
        (
            "pad",
            onnx_model(nodes + h, [_w("P", np.array([0, 0, pad, pad, 0, 0, pad, pad])), *i]),
            (),
        )
    )
    doublings = int(np.ceil(np.log2(8 * budget / (144 * 4))))
    nodes = [helper.make_node("Flatten", ["x"], ["c0"], axis=1)]
    for k in range(doublings):
        nodes.append(helper.make_node("Concat", [f"c{k}", f"c{k}"], [f"c{k + 1}"], axis=1))
    h, i = _head(f"c{doublings}", rng)
    out.append(("concat-doubling", onnx_model(nodes + h, i), ()))
    width = 8 * budget // 4 // 144
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Unsqueeze", ["f", "A2"], ["col"]),  # (N, 144, 1)
        helper.make_node("Mul", ["col", "V"], ["o"]),  # (N, 144, width)
        helper.make_node("Flatten", ["o"], ["g"], axis=1),
    ]
    h, i = _head("g", rng)
    out.append(
        (
            "broadcast-outer",
            onnx_model(
                nodes + h, [_w("A2", np.array([2])), _w("V", np.ones((1, width), np.float32)), *i]
            ),
            (),
        )
    )
    nodes = [
        helper.make_node("Conv", ["x", "CW"], ["c"], pads=[pad, pad, pad, pad]),
        helper.make_node("Flatten", ["c"], ["f"], axis=1),
    ]
    h, i = _head("f", rng)
    out.append(
        ("conv-pads", onnx_model(nodes + h, [_w("CW", np.ones((1, 1, 1, 1), np.float32)), *i]), ())
    )
    # Pads computed from the input's values (about ``pad`` for a batch of 8 inputs in [0, 1]).
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "K"], ["sk"]),
        helper.make_node("Cast", ["sk"], ["si0"], to=7),
        helper.make_node("Unsqueeze", ["si0", "A0"], ["si"]),
        helper.make_node("Concat", ["Z2", "si", "si", "Z2", "si", "si"], ["dyn"], axis=0),
        helper.make_node("Pad", ["x", "dyn"], ["p"]),
        helper.make_node("Flatten", ["p"], ["g"], axis=1),
    ]
    h, i = _head("g", rng)
    out.append(
        (
            "data-dependent-pad",
            onnx_model(
                nodes + h,
                [
                    _w("K", np.float32(pad / (72.0 * 8))),
                    _w("A0", np.array([0])),
                    _w("Z2", np.zeros(2, np.int64)),
                    *i,
                ],
            ),
            (),
        )
    )
    return out


# --------------------------------------------------------------------------- registry


DATASET_FAMILIES: list[tuple[str, str, Callable]] = [
    ("npz-truncated", "npz", ds_truncated),
    ("npz-bitflip", "npz", ds_bitflip),
    ("npz-junk-prefix", "npz", ds_junk_prefix),
    ("not-npz", "npz", ds_not_npz),
    ("x-dtype", "npz", ds_x_dtype),
    ("y-dtype", "npz", ds_y_dtype),
    ("x-nonfinite", "npz", ds_x_nonfinite),
    ("x-shape", "npz", ds_x_shape),
    ("y-shape", "npz", ds_y_shape),
    ("missing-keys", "npz", ds_missing_keys),
    ("classes", "npz", ds_classes),
    ("pixel-range", "npz", ds_pixel_range),
    ("zip-members", "npz", ds_members),
    ("npy-header", "npz", ds_npy_header),
]
MODEL_FAMILIES: list[tuple[str, str, Callable]] = [
    ("pt-pickle-payload", "weights:mlp", w_pickle),
    ("torchscript", "weights:auto", w_torchscript),
    ("pt-truncated", "weights:mlp", w_truncated),
    ("pt-bitflip", "weights:mlp", w_bitflip),
    ("safetensors-malformed", "weights:auto", w_safetensors),
    ("state-dict-wrong", "weights:mlp", w_state),
    ("weight-values", "weights:mlp", w_values),
    ("onnx-operators", "onnx", onnx_ops),
    ("onnx-external-data", "onnx", onnx_external),
    ("onnx-garbage", "onnx", onnx_garbage),
    ("onnx-bitflip", "onnx", onnx_bitflip),
    ("onnx-wrong-output", "onnx", onnx_wrong_output),
    ("onnx-nonfinite", "onnx", onnx_nonfinite),
    ("onnx-input-independent", "onnx", onnx_input_independent),
    ("onnx-wrong-input", "onnx", onnx_wrong_input),
]
BOMB_FAMILIES: list[tuple[str, str, Callable]] = [
    ("npz-bomb", "npz", ds_bomb),
    ("pt-bomb", "weights:mlp", w_bomb),
    ("onnx-bomb", "onnx", onnx_bomb),
]


def memory_edge(budget: int) -> list[Case]:
    """Valid datasets whose ``x_train`` holds 1/40 .. 1/4 of the budget in raw bytes, in five
    layouts: each must load, or be refused for memory, within the budget (the fractions put
    a file of each layout just under the estimate's limit)."""
    rng = np.random.default_rng(17)
    layouts = {
        "u8-nhwc-32x32x3": (np.uint8, (32, 32, 3)),
        "f32-grey-28x28": (np.float32, (28, 28)),
        "f64-table-100": (np.float64, (100,)),
        "f32-table-100": (np.float32, (100,)),
        "u8-table-100": (np.uint8, (100,)),
    }
    out = []
    for name, (dtype, shape) in layouts.items():
        per = int(np.prod(shape)) * np.dtype(dtype).itemsize
        for part in (36, 16, 14, 8):
            n = budget // part // per
            if dtype == np.uint8:
                x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            else:
                x = rng.random((n, *shape), dtype=dtype)
            y = np.arange(n) % 2
            data = npz(x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
            out.append(Case("memory-edge", f"{name}-1of{part}", "npz", data))
    return out


def generate(family: str, kind: str, fn: Callable, sandbox: Path, budget: int) -> list[Case]:
    """The family's cases, from a generator seeded by the family's name."""
    rng = np.random.default_rng(zlib.crc32(family.encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            Case(family, name, kind, data, tuple(markers))
            for name, data, markers in fn(rng, sandbox, budget)
        ]


# --------------------------------------------------------------------------- loading


def load_case(case: Case, path: Path, dataset=None):
    """Load one file from disk with the loader the sidebar uses; returns what it returns."""
    import torch

    from robustcore.data import load_npz
    from robustcore.models import load_onnx, load_user_weights

    data = path.read_bytes()
    if case.kind == "npz":
        return load_npz(data, name=path.name, max_bytes=200 * MB)
    if case.kind.startswith("weights"):
        arch = case.kind.split(":", 1)[1]
        return load_user_weights(
            arch, dataset, data, device=torch.device("cpu"), max_bytes=200 * MB
        )
    return load_onnx(data, dataset, device=torch.device("cpu"), max_bytes=200 * MB)


def outcome(case: Case, path: Path, dataset=None) -> dict:
    """What loading the file gave: ``error`` (the class name, ``None`` when it loaded),
    ``mro`` (class names), ``message``."""
    try:
        load_case(case, path, dataset)
    except BaseException as exc:  # noqa: BLE001 - every outcome is recorded
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {
            "error": type(exc).__name__,
            "mro": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc),
        }
    return {"error": None, "mro": [], "message": ""}


def _status(field_: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field_} in /proc/self/status")


def run_manifest(manifest: Path) -> None:
    """Subprocess entry: load each file of the manifest, recording its outcome and the peak
    resident memory the load took above what the process held before (VmHWM, reset through
    /proc/self/clear_refs before each file). Writes ``results.json`` next to the manifest."""
    import ctypes

    import torch

    cases = json.loads(manifest.read_text())
    dataset = image_dataset()
    torch.set_num_threads(1)
    libc = ctypes.CDLL(None)
    # Warm up: the loaders' lazy imports and first allocations are not the files' doing.
    rng = np.random.default_rng(0)
    warm = manifest.parent / "warm"
    warm.mkdir(exist_ok=True)
    nodes, inits = mlp_nodes(rng)
    for kind, data in (
        ("npz", valid_npz(rng)),
        ("weights:mlp", saved(mlp_state())),
        ("onnx", onnx_model(nodes, inits)),
    ):
        path = warm / kind.replace(":", "-")
        path.write_bytes(data)
        outcome(Case("warm", kind, kind, b""), path, dataset)
    gc.collect()
    gc.freeze()  # what is loaded so far stays: each collect below scans only new objects
    results = []
    for entry in cases:
        case = Case(entry["family"], entry["name"], entry["kind"], b"")
        path = Path(entry["path"])
        gc.collect()
        libc.malloc_trim(0)  # hand freed memory back, so the next peak is measured afresh
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status("VmRSS")
        start = time.perf_counter()
        result = outcome(case, path, dataset)
        result["peak"] = _status("VmHWM") - base
        result["seconds"] = time.perf_counter() - start
        results.append({**entry, **result})
    (manifest.parent / "results.json").write_text(json.dumps(results))


if __name__ == "__main__":
    run_manifest(Path(sys.argv[1]))
