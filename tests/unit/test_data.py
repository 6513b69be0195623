"""Unit tests of robustcore.data: built-ins, torchvision loaders on fake files, uploads."""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

import robustcore.data as rdata
from robustcore.data import (
    DATASETS,
    DEFAULT_DATASET,
    Dataset,
    DatasetInfo,
    builtin,
    list_datasets,
    load,
    load_npz,
)
from robustcore.data import upload as upload_mod
from robustcore.errors import (
    DatasetError,
    DatasetUnavailableError,
    UploadError,
    ValidationError,
)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Keep every test away from ~/.robustcore."""
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path / "home"))


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset():
    names = [info.name for info in list_datasets()]
    assert names == list(DATASETS)
    assert DEFAULT_DATASET == "mnist5k" and DEFAULT_DATASET in DATASETS
    expected = {"mnist5k", "digits", "breast_cancer", "mnist", "fashion_mnist", "cifar10", "gtsrb"}
    assert set(names) == expected
    assert all(isinstance(info, DatasetInfo) for info in list_datasets())
    offline = {info.name for info in list_datasets() if info.offline}
    assert offline == {"mnist5k", "digits", "breast_cancer"}
    assert DATASETS["breast_cancer"].modality == "tabular"


def test_unknown_name_lists_known_names():
    with pytest.raises(DatasetError) as exc:
        load("imagenet")
    msg = str(exc.value)
    assert "imagenet" in msg
    for name in DATASETS:
        assert name in msg


def test_builtin_rejects_options():
    with pytest.raises(ValidationError, match="takes no options"):
        load("digits", root="/tmp")


def test_download_rejects_unknown_option(tmp_path):
    with pytest.raises(ValidationError, match="colour"):
        load("mnist", root=tmp_path, colour=True)


# --------------------------------------------------------------------------- built-ins


def _check_image_dataset(ds: Dataset, shape: tuple[int, ...], num_classes: int) -> None:
    assert ds.modality == "image"
    assert ds.input_shape == shape
    assert ds.x_train.dtype == torch.float32 and ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    assert ds.x_train.is_contiguous() and ds.x_test.is_contiguous()
    assert ds.num_classes == num_classes == len(ds.class_names)
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) <= 1.0
    assert float(ds.x_test.min()) >= 0.0 and float(ds.x_test.max()) <= 1.0
    lo, hi = ds.bounds
    assert torch.equal(lo, torch.zeros(shape)) and torch.equal(hi, torch.ones(shape))
    assert int(ds.y_train.min()) >= 0 and int(ds.y_train.max()) < num_classes
    assert ds.description


def test_mnist5k_shapes_split_and_determinism():
    ds = load("mnist5k")
    assert ds.name == "mnist5k"
    _check_image_dataset(ds, (1, 28, 28), 10)
    assert ds.n_train == 4000 and ds.n_test == 1000
    assert ds.class_names == [str(i) for i in range(10)]
    assert torch.bincount(ds.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(ds.y_test, minlength=10).tolist() == [100] * 10
    assert float(ds.x_train.max()) == 1.0  # scaled from 0..255
    assert load("mnist5k") is ds  # cached
    fresh = builtin.load_mnist5k()
    assert fresh is not ds and fresh.fingerprint() == ds.fingerprint()


def test_digits():
    ds = load("digits")
    _check_image_dataset(ds, (1, 8, 8), 10)
    assert ds.n_train + ds.n_test == 1797
    assert ds.n_test == 360
    assert float(ds.x_train.max()) == 1.0
    assert builtin.load_digits().fingerprint() == ds.fingerprint()


def test_breast_cancer_standardised_with_train_stats():
    ds = load("breast_cancer")
    assert ds.modality == "tabular" and ds.input_shape == (30,)
    assert ds.n_train + ds.n_test == 569 and ds.n_test == 114
    assert ds.num_classes == 2 and ds.class_names == ["malignant", "benign"]
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(ds.x_train.std(0, unbiased=False), torch.ones(30), atol=1e-3)
    lo, hi = ds.bounds
    assert lo.shape == hi.shape == (30,) and lo.dtype == hi.dtype == torch.float32
    for x in (ds.x_train, ds.x_test):
        assert bool((x >= lo).all()) and bool((x <= hi).all())
    assert torch.equal(ds.clip(ds.x_test), ds.x_test)
    # stratified: both splits keep the same class proportions
    p_train = ds.y_train.float().mean().item()
    p_test = ds.y_test.float().mean().item()
    assert abs(p_train - p_test) < 0.01


def test_standardise_guards_constant_feature():
    x_tr = np.array([[1.0, 5.0], [3.0, 5.0]])
    x_te = np.array([[2.0, 5.0]])
    xtr, xte, (lo, hi) = builtin.standardise(x_tr, x_te)
    assert torch.isfinite(xtr).all() and torch.isfinite(xte).all()
    assert xtr[:, 1].tolist() == [0.0, 0.0]
    assert lo.tolist() == [-1.0, 0.0] and hi.tolist() == [1.0, 0.0]


# --------------------------------------------------------------------------- torchvision fakes


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, folder: str, n_train: int = 12, n_test: int = 5) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0] = 255
        _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


@pytest.mark.parametrize(
    ("name", "folder", "first_class"),
    [("mnist", "MNIST", "0 - zero"), ("fashion_mnist", "FashionMNIST", "T-shirt/top")],
)
def test_mnist_like_from_fake_files(tmp_path, name, folder, first_class):
    _fake_mnist(tmp_path, folder)
    ds = load(name, root=tmp_path, download=False)
    assert ds.name == name
    _check_image_dataset(ds, (1, 28, 28), 10)
    assert ds.n_train == 12 and ds.n_test == 5
    assert ds.class_names[0] == first_class
    assert ds.y_train.tolist() == [i % 10 for i in range(12)]
    assert float(ds.x_train[0, 0, 0, 0]) == 1.0


def _fake_cifar(root: Path, per_batch: int = 4) -> None:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for fname in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        entry = {"data": data, "labels": [i % 10 for i in range(per_batch)]}
        (base / fname).write_bytes(pickle.dumps(entry))
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))


def _no_md5(monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def test_cifar10_from_fake_files(tmp_path, monkeypatch):
    _fake_cifar(tmp_path)
    _no_md5(monkeypatch)
    ds = load("cifar10", root=tmp_path, download=False)
    _check_image_dataset(ds, (3, 32, 32), 10)
    assert ds.n_train == 20 and ds.n_test == 4
    assert ds.class_names[1] == "automobile"
    # channel-first conversion: pixel (c=1, h=0, w=2) is byte 1*1024 + 0*32 + 2 of the row
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    expected = raw["data"][0, 1 * 1024 + 2] / 255.0
    assert float(ds.x_train[0, 1, 0, 2]) == pytest.approx(expected, abs=1e-6)


def _fake_gtsrb(root: Path) -> None:
    from PIL import Image

    base = root / "gtsrb"
    rng = np.random.default_rng(2)
    for cls in (0, 1, 2):
        d = base / "GTSRB" / "Training" / f"{cls:05d}"
        d.mkdir(parents=True)
        for j in range(2):
            arr = rng.integers(0, 256, size=(35 + j, 40, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"{j:05d}_00000.ppm")
    test_dir = base / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for j, cls in enumerate((2, 0, 42)):
        Image.fromarray(np.full((30, 33, 3), 255, dtype=np.uint8)).save(test_dir / f"{j:05d}.ppm")
        rows.append(f"{j:05d}.ppm;33;30;1;1;32;29;{cls}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")


def test_gtsrb_from_fake_files(tmp_path):
    _fake_gtsrb(tmp_path)
    ds = load("gtsrb", root=tmp_path, download=False)
    assert ds.num_classes == 43 and ds.class_names[42] == "class 42"
    _check_image_dataset(ds, (3, 32, 32), 43)
    assert ds.n_train == 6 and ds.n_test == 3
    assert sorted(ds.y_train.tolist()) == [0, 0, 1, 1, 2, 2]
    assert ds.y_test.tolist() == [2, 0, 42]
    assert torch.allclose(ds.x_test, torch.ones_like(ds.x_test))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "gtsrb"])
def test_missing_without_download_is_unavailable(tmp_path, name):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetUnavailableError) as exc:
        load(name, root=root, download=False)
    msg = str(exc.value)
    assert f"'{name}'" in msg
    assert str(root) in msg
    assert "connect to the internet" in msg and "mnist5k, digits and breast_cancer" in msg
    assert not root.exists()  # nothing created on the way


def test_default_root_is_under_robustcore_home(tmp_path):
    with pytest.raises(DatasetUnavailableError) as exc:
        load("mnist", download=False)
    assert str(tmp_path / "home" / "data") in str(exc.value)


@pytest.mark.parametrize("error", [URLError("no network"), RuntimeError("boom"), OSError(101, "x")])
def test_download_failure_maps_to_unavailable(tmp_path, monkeypatch, error):
    class Failing:
        classes = [str(i) for i in range(10)]

        def __init__(self, root, train=True, download=False, **kwargs):
            if download:
                raise error
            raise RuntimeError("Dataset not found. You can use download=True to download it")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Failing)
    with pytest.raises(DatasetUnavailableError) as exc:
        load("fashion_mnist", root=tmp_path, download=True)
    msg = str(exc.value)
    assert "'fashion_mnist'" in msg and "download failed" in msg
    assert type(error).__name__ in msg


def test_failed_real_download_leaves_no_partial_files(tmp_path, monkeypatch):
    """torchvision's own MNIST.download runs, the network step fails half-way."""
    import torchvision.datasets.mnist as tv_mnist

    def half_download(url, download_root, filename=None, md5=None, **kwargs):
        Path(download_root, filename).write_bytes(b"partial")
        raise URLError("offline")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", half_download)
    root = tmp_path / "data"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    with pytest.raises(DatasetUnavailableError, match="'mnist'"):
        load("mnist", root=root)
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]


def test_failed_cifar_download_removes_partial_archive(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def half_download(url, download_root, filename=None, md5=None, **kwargs):
        Path(download_root, filename).write_bytes(b"partial")
        raise ConnectionResetError("socket closed")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", half_download)
    with pytest.raises(DatasetUnavailableError, match="ConnectionResetError"):
        load("cifar10", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_true_uses_files_already_on_disk(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise AssertionError("network must not be used")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    _fake_mnist(tmp_path, "MNIST")
    assert load("mnist", root=tmp_path).n_train == 12


# --------------------------------------------------------------------------- uploads


def _npz(compressed: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _valid_images(n_train: int = 20, n_test: int = 6, **override) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    arrays = {
        "x_train": rng.integers(0, 256, size=(n_train, 8, 8, 3), dtype=np.uint8),
        "y_train": np.arange(n_train) % 3,
        "x_test": rng.integers(0, 256, size=(n_test, 8, 8, 3), dtype=np.uint8),
        "y_test": np.arange(n_test) % 3,
    }
    arrays.update(override)
    return arrays


def _valid_table(**override) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    arrays = {
        "x_train": rng.normal(5.0, 3.0, size=(30, 4)),
        "y_train": (np.arange(30) % 2).astype(np.float64),  # whole-number floats are fine
        "x_test": rng.normal(5.0, 3.0, size=(10, 4)),
        "y_test": np.arange(10) % 2,
    }
    arrays.update(override)
    return arrays


def test_upload_nhwc_uint8_images():
    arrays = _valid_images(class_names=np.array(["cat", "dog", "bird"]))
    ds = load_npz(_npz(**arrays), name="pets.npz")
    assert ds.name == "upload:pets.npz"
    assert ds.modality == "image" and ds.input_shape == (3, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.is_contiguous()
    assert ds.num_classes == 3 and ds.class_names == ["cat", "dog", "bird"]
    expected = torch.from_numpy(arrays["x_train"]).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(ds.x_train, expected)
    assert ds.y_test.tolist() == (np.arange(6) % 3).tolist()
    assert torch.equal(ds.bounds[1], torch.ones(3, 8, 8))
    assert "pets.npz" in ds.description and "20 train / 6 test" in ds.description


def test_upload_grey_float_images_and_path(tmp_path):
    rng = np.random.default_rng(5)
    arrays = {
        "x_train": rng.random((6, 9, 10)).astype(np.float32),
        "y_train": np.array([0, 1, 0, 1, 0, 1]),
        "x_test": rng.random((2, 9, 10)),
        "y_test": np.array([1, 0]),
    }
    path = tmp_path / "grey.npz"
    path.write_bytes(_npz(**arrays))
    ds = load_npz(path, name="grey")
    assert ds.input_shape == (1, 9, 10) and ds.class_names == ["0", "1"]
    assert torch.allclose(ds.x_train[:, 0], torch.from_numpy(arrays["x_train"]))


def test_upload_nchw_kept():
    x = np.random.default_rng(6).random((4, 1, 8, 8))
    ds = load_npz(
        _npz(x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=x, y_test=np.array([0, 1, 1, 0]))
    )
    assert ds.input_shape == (1, 8, 8)


def test_upload_tabular_standardised():
    arrays = _valid_table()
    ds = load_npz(_npz(**arrays), name="table")
    assert ds.modality == "tabular" and ds.input_shape == (4,)
    assert ds.num_classes == 2 and ds.y_train.dtype == torch.int64
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(ds.x_train.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    mean, std = arrays["x_train"].mean(0), arrays["x_train"].std(0)
    expected_test = torch.from_numpy((arrays["x_test"] - mean) / std).float()
    assert torch.allclose(ds.x_test, expected_test, atol=1e-5)
    lo, hi = ds.bounds
    for x in (ds.x_train, ds.x_test):
        assert bool((x >= lo).all()) and bool((x <= hi).all())
    assert "standardised" in ds.description


def _fails(data: bytes, match: str, **kwargs) -> UploadError:
    with pytest.raises(UploadError) as exc:
        load_npz(data, **kwargs)
    assert match in str(exc.value), str(exc.value)
    return exc.value


def test_upload_error_is_a_validation_and_dataset_error():
    err = _fails(b"junk", "not a valid .npz")
    assert isinstance(err, ValidationError) and isinstance(err, DatasetError)


def test_upload_too_large_checked_before_parsing():
    err = _fails(b"x" * 5000, "larger than the limit", max_bytes=1000)
    assert str(err).count("MB") >= 2
    assert "5,000 bytes" in str(err) and "1,000 bytes" in str(err)


def test_upload_too_large_path(tmp_path):
    path = tmp_path / "big.npz"
    path.write_bytes(b"\0" * 3 * 2**20)
    _fails(path, "3.00 MB", max_bytes=2**20)


def test_upload_missing_path(tmp_path):
    _fails(tmp_path / "nope.npz", "No file at")


def test_upload_corrupt_files():
    good = _npz(**_valid_images())
    _fails(b"", "empty")
    _fails(b"PK\x03\x04 not really a zip", "not a valid .npz")
    _fails(good[: len(good) // 2], "not a valid .npz")
    flipped = bytearray(good)
    flipped[200] ^= 0xFF  # inside the first stored array: CRC mismatch when read
    _fails(bytes(flipped), "corrupt")


def test_upload_single_npy():
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    _fails(buf.getvalue(), "single .npy")


def test_upload_missing_keys():
    arrays = _valid_images()
    del arrays["y_test"]
    err = _fails(_npz(**arrays), "missing y_test")
    assert "x_train, y_train" in str(err)


def test_upload_object_arrays_never_unpickled():
    arrays = _valid_images(y_train=np.array([0, 1, 2] * 6 + [0, 1], dtype=object))
    _fails(_npz(**arrays), "dtype=object")
    names = np.array(["a", "b", "c"], dtype=object)
    _fails(_npz(**_valid_images(class_names=names)), "dtype=object")


def test_upload_non_numeric_x():
    arrays = _valid_table(x_train=np.array([["a", "b", "c", "d"]] * 30))
    _fails(_npz(**arrays), "not numeric")


@pytest.mark.parametrize("shape", [(20,), (20, 2, 8, 8, 3)])
def test_upload_bad_ndim(shape):
    x = np.zeros(shape, dtype=np.uint8)
    arrays = _valid_images(x_train=x, x_test=x[:6])
    _fails(_npz(**arrays), "Expected 2-D (samples, features)")


def test_upload_4d_without_channel_axis():
    arrays = _valid_images(
        x_train=np.zeros((20, 5, 8, 8), np.uint8), x_test=np.zeros((6, 5, 8, 8), np.uint8)
    )
    _fails(_npz(**arrays), "no axis of 1 or 3 channels")


def test_upload_split_shapes_differ():
    arrays = _valid_images(x_test=np.zeros((6, 9, 9, 3), np.uint8))
    _fails(_npz(**arrays), "same sample shape")


def test_upload_length_mismatch():
    arrays = _valid_images(y_train=np.arange(19) % 3)
    err = _fails(_npz(**arrays), "exactly one label")
    assert "x_train has 20" in str(err) and "y_train has 19" in str(err)


def test_upload_empty_split():
    arrays = _valid_images(x_test=np.zeros((0, 8, 8, 3), np.uint8), y_test=np.zeros(0, np.int64))
    _fails(_npz(**arrays), "test split is empty")


def test_upload_one_hot_labels():
    arrays = _valid_images(y_train=np.eye(3)[np.arange(20) % 3])
    _fails(_npz(**arrays), "not one-hot")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_upload_non_finite(bad):
    x = _valid_table()["x_train"]
    x[3, 2] = bad
    _fails(_npz(**_valid_table(x_train=x)), "NaN or infinite")


def test_upload_fractional_labels():
    y = (np.arange(30) % 2).astype(np.float64)
    y[4] = 0.5
    _fails(_npz(**_valid_table(y_train=y)), "not whole numbers")


def test_upload_negative_labels():
    y = np.arange(10) % 2
    y[0] = -1
    _fails(_npz(**_valid_table(y_test=y)), "negative labels")


def test_upload_single_class():
    _fails(
        _npz(**_valid_table(y_train=np.zeros(30, np.int64), y_test=np.zeros(10, np.int64))),
        "at least 2 classes",
    )


def test_upload_class_missing_from_train():
    y = np.array([0, 1, 3, 5] * 5)
    err = _fails(_npz(**_valid_images(y_train=y)), "missing from y_train: 2, 4")
    assert "0..5" in str(err)
    # a class seen only in the test split is also reported
    y_test = np.array([0, 1, 2, 0, 1, 7])
    _fails(_npz(**_valid_images(y_test=y_test)), "missing from y_train: 3, 4, 5, 6")


def test_upload_huge_label_reports_a_few_missing():
    y = np.arange(20) % 3
    y[0] = 10**6
    err = _fails(_npz(**_valid_images(y_train=y)), "missing from y_train: 3, 4, 5")
    assert "..." in str(err)


@pytest.mark.parametrize(
    "names", [np.array(["a", "b"]), np.array([["a", "b", "c"]]), np.array([1, 2, 3])]
)
def test_upload_bad_class_names(names):
    _fails(_npz(**_valid_images(class_names=names)), "one name per class (3 names)")


def test_upload_float_images_out_of_range():
    x = np.random.default_rng(7).random((20, 8, 8, 3)) * 255
    _fails(_npz(**_valid_images(x_train=x)), "scale pixel values to [0, 1] or store uint8")


@pytest.mark.parametrize("side", [4, 300])
def test_upload_image_size_limits(side):
    x = np.zeros((20, side, side), np.uint8)
    arrays = _valid_images(x_train=x, x_test=x[:6])
    _fails(_npz(**arrays), "between 8x8 and 256x256")


def test_upload_too_many_samples(monkeypatch):
    monkeypatch.setattr(upload_mod, "MAX_SAMPLES", 25)
    _fails(_npz(**_valid_images()), "at most 25")


def test_upload_zip_bomb_refused():
    zeros = np.zeros((300_000, 4))  # 9.6 MB unpacked, a few KB packed
    arrays = _valid_table(x_train=zeros, y_train=np.arange(300_000) % 2)
    data = _npz(compressed=True, **arrays)
    assert len(data) < 2**20
    _fails(data, "unpack to", max_bytes=2**20)


def test_rdata_exports():
    for name in (
        "load",
        "load_npz",
        "DATASETS",
        "DEFAULT_DATASET",
        "list_datasets",
        "Dataset",
        "DatasetInfo",
    ):
        assert hasattr(rdata, name)
