"""The on-disk model zoo: a trained model is stored once per recipe and reused.

Layout under ``ROBUSTCORE_HOME/zoo``: one folder per key holding ``model.pt`` (a
state_dict, loaded with ``weights_only=True``) and ``meta.json`` (architecture, recipe,
dataset fingerprint, training curves, metrics, library versions). A folder appears by
an atomic rename of a finished temporary folder, so a crash or a cancelled training never
leaves a half-written model behind; a file lock makes two processes asking for the same
recipe train it once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import logging
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..data import Dataset
from ..data import load as load_dataset
from ..device import get_device, preferred_memory_format
from ..errors import ModelError, UploadError, ValidationError, shown
from ..hashing import stable_hash
from ..paths import subdir
from ..progress import split
from .architectures import ARCHITECTURES, build_model, compatible_architectures
from .training import BatchHook, ProgressFn, TrainRecipe, evaluate, fit

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 200 * 2**20
_MEMORY_CACHE_SIZE = 8
CHECK_BATCH = 8
"""Test inputs an uploaded model is run on before it is accepted."""
MAX_WEIGHT_ENTRIES = 20_000
"""Most entries a ``torch.save`` archive may hold (one per tensor storage, plus a few)."""
OBJECT_BYTES = 32
"""Memory per byte of a pickled record or a safetensors header once read into objects
(measured: about 20-28; each small tensor is a Python and a C++ object)."""
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
"""How a ``torch.save`` file of the format before PyTorch 1.6 (one long pickle) begins."""
NOT_WEIGHTS = (
    "This is not a weights file that can be read as tensors only. Expected a state_dict saved "
    "with torch.save(model.state_dict(), path) or a .safetensors file; files holding other "
    "Python objects are refused."
)


@dataclass
class ZooEntry:
    """A model from the zoo together with how it was made and how well it does."""

    key: str
    model: nn.Module
    arch: str
    dataset_name: str
    recipe: dict[str, Any]
    extra: dict[str, Any]
    history: pd.DataFrame
    metrics: dict[str, Any]
    from_cache: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_memory: OrderedDict[tuple[str, str], ZooEntry] = OrderedDict()
_memory_guard = threading.Lock()


def _key_lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


STALE_TMP_SECONDS = 600
"""A zoo ``.tmp-*`` folder older than this is left over from an interrupted write: a
writer makes one only after training and renames it within seconds."""
_cleaned_dirs: set[Path] = set()


def clean_zoo(folder: Path | None = None, *, older_than: float = STALE_TMP_SECONDS) -> int:
    """Remove the temporary folders that interrupted writes left in the zoo (older than
    ``older_than`` seconds); returns how many. Done once per process at first use."""
    folder = folder or zoo_dir()
    removed = 0
    now = time.time()
    for tmp in folder.glob(".tmp-*"):
        try:
            if tmp.is_dir() and now - tmp.stat().st_mtime > older_than:
                shutil.rmtree(tmp, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    if removed:
        logger.info("zoo: removed %d folder(s) left by interrupted writes", removed)
    return removed


def zoo_dir() -> Path:
    folder = subdir("zoo")
    if folder not in _cleaned_dirs:
        _cleaned_dirs.add(folder)
        clean_zoo(folder)
    return folder


def recipe_key(
    arch: str, dataset: Dataset, recipe: TrainRecipe, extra: Mapping[str, Any] | None = None
) -> str:
    """The zoo key: architecture, the dataset's content fingerprint, recipe and extras."""
    return stable_hash(
        {
            "arch": arch,
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "recipe": recipe.to_dict(),
            "extra": dict(extra or {}),
        },
        root="recipe",
    )


def _resolve_dataset(dataset: Dataset | str) -> Dataset:
    return load_dataset(dataset) if isinstance(dataset, str) else dataset


def _freeze(model: nn.Module, device: torch.device) -> nn.Module:
    """Read-only and in eval mode on ``device``; a built-in or user model in the layout
    its batches compute fastest in there (channels-last for convolutional models on the CPU,
    :func:`~robustcore.device.preferred_memory_format`)."""
    model.to(device).eval()
    if not isinstance(model, torch.jit.ScriptModule):
        model.to(memory_format=preferred_memory_format(model, device))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_from_disk(key: str, device: torch.device) -> ZooEntry | None:
    folder = zoo_dir() / key
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    model = build_model(meta["arch"], tuple(meta["input_shape"]), int(meta["num_classes"]))
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return ZooEntry(
        key=key,
        model=_freeze(model, device),
        arch=meta["arch"],
        dataset_name=meta["dataset"],
        recipe=meta["recipe"],
        extra=meta.get("extra", {}),
        history=pd.DataFrame(meta["history"]),
        metrics=meta["metrics"],
        from_cache=True,
        meta=meta,
    )


def _remember(key: str, device: torch.device, entry: ZooEntry) -> None:
    with _memory_guard:
        _memory[(key, str(device))] = entry
        _memory.move_to_end((key, str(device)))
        while len(_memory) > _MEMORY_CACHE_SIZE:
            _memory.popitem(last=False)


def lookup(key: str, *, device: torch.device | None = None) -> ZooEntry | None:
    """The stored model with this key, or ``None``. Models come frozen and in eval mode."""
    device = device or get_device()
    with _memory_guard:
        hit = _memory.get((key, str(device)))
    if hit is not None:
        return dataclasses.replace(hit, from_cache=True)
    entry = _load_from_disk(key, device)
    if entry is not None:
        _remember(key, device, entry)
    return entry


def train_entry(
    arch: str,
    dataset: Dataset | str,
    recipe: TrainRecipe | Mapping[str, Any] | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    batch_hook: BatchHook | None = None,
    progress: ProgressFn | None = None,
    device: torch.device | None = None,
) -> ZooEntry:
    """Return the zoo's model for this recipe, training and storing it first if needed.

    Args:
        arch: one of :data:`~robustcore.models.architectures.ARCHITECTURES`.
        dataset: a :class:`~robustcore.data.Dataset` or a registry name.
        recipe: a :class:`TrainRecipe` or a dict of its fields (missing ones default).
        extra: extra settings that change training (a defense's options); they are part of
            the key, so a different value never reuses a model.
        batch_hook: a per-batch transform (see :func:`~robustcore.models.training.fit`).
            It must be described by ``extra``; passing one without ``extra`` is an error.
        progress: ``progress(fraction, message)``; may raise to cancel.
        device: compute device (default :func:`robustcore.device.get_device`).

    The returned model is shared with other callers: treat it as read-only (its parameters
    have ``requires_grad=False``); ``copy.deepcopy`` it before fine-tuning.
    """
    if arch not in ARCHITECTURES:
        raise ModelError(f"Unknown architecture {arch!r}. Available: {', '.join(ARCHITECTURES)}.")
    if batch_hook is not None and not extra:
        raise ValidationError("A batch_hook changes training: describe it in `extra` too.")
    ds = _resolve_dataset(dataset)
    if recipe is None:
        recipe = TrainRecipe()
    elif not isinstance(recipe, TrainRecipe):
        recipe = TrainRecipe.from_dict(recipe)
    device = device or get_device()
    key = recipe_key(arch, ds, recipe, extra)
    hit = lookup(key, device=device)
    if hit is not None:
        return hit
    with _key_lock(key), _file_lock(zoo_dir() / f".{key}.lock"):
        hit = lookup(key, device=device)
        if hit is not None:
            return hit
        model = build_model(arch, ds.input_shape, ds.num_classes, seed=recipe.seed)
        t0 = time.perf_counter()
        derived_from = None
        if recipe.method == "distillation" and not extra and batch_hook is None:
            history, derived_from = _fit_distilled(model, arch, ds, recipe, device, progress)
        else:
            history = fit(
                model, ds, recipe, device=device, progress=progress, batch_hook=batch_hook
            )
        seconds = time.perf_counter() - t0
        metrics = history_metrics(history, seconds)
        if derived_from is not None:
            # The T = 1 student's training is what this model cost; scaling took `seconds`.
            metrics["train_seconds"] = float(derived_from.metrics.get("train_seconds", seconds))
            metrics["derived_from"] = derived_from.key
        from ..versions import library_versions

        meta = {
            "key": key,
            "arch": arch,
            "dataset": ds.name,
            "fingerprint": ds.fingerprint(),
            "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes,
            "recipe": recipe.to_dict(),
            "extra": dict(extra or {}),
            "history": history.to_dict(orient="list"),
            "metrics": metrics,
            "created": time.time(),
            "versions": library_versions(),
        }
        tmp = zoo_dir() / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            torch.save(
                {k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "model.pt"
            )
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            tmp.rename(zoo_dir() / key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    entry = ZooEntry(
        key=key,
        model=_freeze(model, device),
        arch=arch,
        dataset_name=ds.name,
        recipe=recipe.to_dict(),
        extra=dict(extra or {}),
        history=history,
        metrics=metrics,
        from_cache=False,
        meta=meta,
    )
    _remember(key, device, entry)
    return entry


def _fit_distilled(
    model: nn.Module,
    arch: str,
    ds: Dataset,
    recipe: TrainRecipe,
    device: torch.device,
    progress: ProgressFn | None,
) -> tuple[pd.DataFrame, ZooEntry | None]:
    """Defensive distillation through the zoo, without training anything twice.

    :func:`~robustcore.defenses.training.fit_distilled` trains both networks in the
    parametrisation Z = T · g(x), in which the training of g does not depend on T: the
    teacher is the recipe's undefended model (the same seed, data and loss; checked bit for
    bit by the tests), and the student at T is the student at T = 1 with its logits
    multiplied by T. So the teacher comes from the zoo, the T = 1 student is trained once,
    and every other temperature is derived from it in milliseconds. Returns the history and
    the zoo entry the model was derived from (``None`` when it was trained here).
    """
    from ..defenses.training.distillation import fit_distilled, scale_logits

    t = float(recipe.temperature)
    if t != 1.0:
        base = train_entry(arch, ds, recipe.replace(temperature=1.0), progress=progress,
                           device=device)  # fmt: skip
        model.load_state_dict({k: v.detach().cpu() for k, v in base.model.state_dict().items()})
        model.to(device)
        scale_logits(model, t, ds.x_test[:8].to(device), ds.num_classes)
        return base.history.copy(), base
    # The student's messages already say "student: …" (run_epochs' phase).
    teach_p, student_p = split(progress, {"teacher": 1.0, "": 1.0})
    teacher = train_entry(arch, ds, recipe.undefended(), progress=teach_p, device=device)
    history = fit_distilled(
        model, ds, recipe, device=device, progress=student_p, teacher=teacher.model,
        teacher_history=teacher.history,
    )  # fmt: skip
    return history, None


def history_metrics(history: pd.DataFrame, seconds: float) -> dict[str, Any]:
    """The zoo's headline numbers from a training history: those of the epoch whose
    weights were kept (the last one, unless the overfitting watchdog kept an earlier one),
    with the watchdog's decision and the per-epoch robust accuracy where there is one."""
    kept = history[history["kept"].astype(bool)] if "kept" in history else history
    row = (kept if len(kept) else history).iloc[-1]
    metrics: dict[str, Any] = {
        "train_acc": float(row["train_acc"]),
        "test_acc": float(row["test_acc"]),
        "test_loss": float(row["test_loss"]),
        "train_seconds": seconds,
        "kept_epoch": int(row["epoch"]),
        "epochs_run": int(history["epoch"].iloc[-1]),
    }
    if "robust_acc" in history:
        metrics["robust_acc"] = float(row["robust_acc"])
    events = [e for e in history.get("event", pd.Series(dtype=str)).tolist() if e]
    metrics["watchdog"] = events[-1] if events else ""
    return metrics


def train(
    arch: str,
    dataset: Dataset | str,
    *,
    extra: Mapping[str, Any] | None = None,
    batch_hook: BatchHook | None = None,
    progress: ProgressFn | None = None,
    device: torch.device | None = None,
    **recipe: Any,
) -> nn.Module:
    """The design contract: ``train(arch, dataset, **recipe) -> nn.Module`` (see
    :func:`train_entry`, which also returns the training curves and metrics)."""
    return train_entry(
        arch, dataset, recipe, extra=extra, batch_hook=batch_hook, progress=progress, device=device
    ).model


def list_zoo() -> pd.DataFrame:
    """One row per stored model: key, architecture, dataset, test accuracy, recipe."""
    rows = []
    for meta_path in sorted(zoo_dir().glob("*/meta.json")):
        if meta_path.parent.name.startswith("."):
            continue  # a write in progress, or one an interruption left behind
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if meta.get("key") != meta_path.parent.name:
            continue
        rows.append(
            {
                "key": meta["key"],
                "arch": meta["arch"],
                "dataset": meta["dataset"],
                "test_acc": meta["metrics"]["test_acc"],
                "created": meta.get("created"),
                **{f"recipe.{k}": v for k, v in meta["recipe"].items()},
            }
        )
    return pd.DataFrame(rows)


def _first_sentence(exc: BaseException, limit: int = 100) -> str:
    """The first sentence of a library's error, short and printable, for a message."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return shown(re.split(r"(?<=[.!?])\s", text)[0].rstrip("."), limit)


def _check_outputs(model: nn.Module, dataset: Dataset, device: torch.device) -> None:
    """Run the model on the first test inputs: logits of the right shape for two batch
    sizes, finite, depending on the input, from finite weights."""
    x = dataset.x_test[:CHECK_BATCH].to(device)
    dims = ", ".join(map(str, x.shape[1:]))
    try:
        with torch.inference_mode():
            out = model(x)
            one = model(x[:1])
    except Exception as exc:  # noqa: BLE001 - any failure of a user model is reported
        logger.info("user model failed on its check inputs: %s", exc)
        raise ModelError(
            f"The model fails on a batch of the dataset's inputs, shape (N, {dims}) "
            f"({_first_sentence(exc)}); it must map such a batch to logits."
        ) from None
    for got, n in ((out, len(x)), (one, 1)):
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (n, dataset.num_classes):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ModelError(
                f"The model must return logits of shape (batch, {dataset.num_classes}) for "
                f"{shown(dataset.name)}; for a batch of {n} it returned {shown(shape)}."
            )
    if not out.dtype.is_floating_point:
        raise ModelError(
            f"The model must return floating-point logits; it returned {out.dtype} values."
        )
    if not bool(torch.isfinite(out).all()):
        raise ModelError(
            "The model returns NaN or infinite logits on the first test inputs; check the "
            "weights (a diverged training or a damaged file)."
        )
    differs = (x != x[:1]).flatten(1).any(1)
    if bool(differs.any()) and bool((out[differs] == out[:1]).all()):
        raise ModelError(
            "The model returns the same logits for different inputs, so it ignores its input "
            "and no attack on it means anything; check that these are the trained weights."
        )
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelError(
                f"Weight '{shown(name)}' holds NaN or infinite values; check the weights (a "
                "diverged training or a damaged file)."
            )


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise UploadError(
            f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB."
        )
    if not data:
        raise UploadError("The file is empty.")


def _looks_like_safetensors(data: bytes) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


def _check_unpacked_size(data: bytes) -> None:
    """A ``torch.save`` file is a zip archive: refuse one whose entries unpack to more than
    the upload memory budget, from the sizes it declares, before anything is unpacked (a
    deflate-compressed entry can make a small file huge). Its pickled records count
    :data:`OBJECT_BYTES` times (each tensor they describe becomes objects), and the entries
    are counted before the archive is listed (each listed entry is an object too)."""
    import zipfile

    from ..limits import size_text, upload_memory_budget

    entries = data.count(b"PK\x01\x02")  # the central directory's entry signature
    if entries > MAX_WEIGHT_ENTRIES:
        raise UploadError(
            f"This weights file holds {entries:,} entries; at most {MAX_WEIGHT_ENTRIES:,} are "
            "accepted. Save the model's state_dict with torch.save(model.state_dict(), path)."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        return  # torch.load reports it
    unpacked = sum(info.file_size for info in infos)
    records = sum(info.file_size for info in infos if info.filename.endswith(".pkl"))
    budget = upload_memory_budget()
    if unpacked > budget:
        raise UploadError(
            f"This weights file unpacks to {size_text(unpacked)}; the limit per upload is "
            f"{size_text(budget)}."
        )
    if unpacked + OBJECT_BYTES * records > budget:
        raise UploadError(
            f"This weights file describes its tensors in {size_text(records)} of pickled "
            f"records, which would take about {size_text(OBJECT_BYTES * records)} of memory to "
            f"read; the limit per upload is {size_text(budget)}."
        )


def _check_header_size(data: bytes) -> None:
    """A safetensors header is JSON listing every tensor: refuse one that would take more
    than the budget once read (:data:`OBJECT_BYTES` per byte), before reading it."""
    from ..limits import size_text, upload_memory_budget

    header = int.from_bytes(data[:8], "little")
    budget = upload_memory_budget()
    if len(data) + OBJECT_BYTES * header > budget:
        raise UploadError(
            f"This safetensors file lists its tensors in a {size_text(header)} header, which "
            f"would take about {size_text(OBJECT_BYTES * header)} of memory to read; the limit "
            f"per upload is {size_text(budget)}."
        )


def _read_state_dict(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file or of a ``torch.save`` state_dict (weights-only
    loader). Neither format can run code; a library's own error text is logged, not shown
    (it may advise turning the safety off). Only the zip format of ``torch.save`` (PyTorch
    1.6 and later) is read: the older format is one pickle, whose objects are made before
    anything about them can be checked."""
    import zipfile

    if _looks_like_safetensors(data):
        _check_header_size(data)
        try:
            from safetensors.torch import load as load_safetensors

            state = load_safetensors(data)
        except Exception as exc:  # noqa: BLE001 - any malformed file lands here
            logger.info("safetensors upload refused: %s", exc)
            raise UploadError(
                "This safetensors file is damaged or malformed: its header and its tensor "
                "data do not agree. Save the weights again with safetensors.torch.save_file."
            ) from None
        return dict(state)
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if data.startswith(LEGACY_MAGIC):
            raise UploadError(
                "This .pt file is in the format of PyTorch before 1.6, which is not read here. "
                "Load it and save it again with torch.save in a current PyTorch, or as "
                ".safetensors."
            )
        raise UploadError(NOT_WEIGHTS)
    _check_unpacked_size(data)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or unsafe files all land here
        logger.info("weights upload refused: %s", exc)
        raise UploadError(NOT_WEIGHTS) from None
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model_state_dict"):
            if wrapper in state and isinstance(state[wrapper], Mapping):
                state = state[wrapper]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise UploadError("Expected a state_dict: a mapping from parameter names to tensors.")
    return dict(state)


def _misfit(state: Mapping[str, torch.Tensor], model: nn.Module) -> str:
    """Why ``state`` does not load into ``model``, in a few words: the first wrong shape,
    missing weight and foreign name (torch's own text lists every name)."""
    own = model.state_dict()
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    foreign = [k for k in state if k not in own]
    parts = []
    if wrong:
        k = wrong[0]
        more = f" ({len(wrong) - 1} more shapes differ)" if len(wrong) > 1 else ""
        parts.append(
            f"'{shown(k)}' has shape {shown(tuple(state[k].shape))} where it needs "
            f"{tuple(own[k].shape)}{more}"
        )
    if missing:
        parts.append(f"{len(missing):,} of its weights are missing, e.g. '{shown(missing[0])}'")
    if foreign:
        parts.append(f"{len(foreign):,} names are not its own, e.g. '{shown(foreign[0])}'")
    return "; ".join(parts) or "the weights do not load"


def _check_dtypes(state: Mapping[str, torch.Tensor], model: nn.Module) -> None:
    """Refuse weights that load_state_dict would silently cast: complex values, or integers
    or booleans where the architecture has floating-point parameters."""
    own = model.state_dict()
    for key, value in state.items():
        if value.is_complex():
            raise ModelError(f"Weight '{shown(key)}' holds complex numbers; weights must be real.")
        want = own.get(key)
        if want is not None and want.is_floating_point() and not value.is_floating_point():
            raise ModelError(
                f"Weight '{shown(key)}' is {value.dtype}; this architecture needs floating-point "
                "weights there. Save the trained model's own state_dict."
            )


def load_user_weights(
    arch: str,
    dataset: Dataset | str,
    data: bytes,
    *,
    device: torch.device | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> nn.Module:
    """Load weights into ``arch``: a state_dict saved with ``torch.save(model.state_dict(),
    path)`` or a safetensors file (``safetensors.torch.save_file``).

    A ``.pt`` file is read with ``torch.load(..., weights_only=True)``: tensors only, never
    arbitrary pickled objects; safetensors holds nothing but tensors. A dict wrapping the
    weights under ``state_dict`` or ``model_state_dict`` is accepted too. ``arch="auto"``
    tries every architecture that fits the dataset and keeps the one whose parameter names
    and shapes match exactly.
    """
    _check_size(data, max_bytes)
    ds = _resolve_dataset(dataset)
    device = device or get_device()
    state = _read_state_dict(data)
    candidates = compatible_architectures(ds.modality, ds.input_shape) if arch == "auto" else [arch]
    errors = []
    for name in candidates:
        model = build_model(name, ds.input_shape, ds.num_classes)
        _check_dtypes(state, model)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            logger.info("weights do not fit %s: %s", name, exc)
            errors.append((name, _misfit(state, model)))
            continue
        model = _freeze(model, device)
        _check_outputs(model, ds, device)
        model.robustcore_arch = name  # type: ignore[attr-defined]
        return model
    if arch == "auto":
        raise ModelError(
            f"These weights match none of the architectures for {shown(ds.name)} "
            f"({', '.join(candidates)}; input {ds.input_shape}, {ds.num_classes} classes). "
            "Save the state_dict of one of them."
        )
    raise ModelError(
        f"These weights do not fit the {arch!r} architecture for {shown(ds.name)} "
        f"(input {ds.input_shape}, {ds.num_classes} classes): {errors[0][1]}."
    )


def model_accuracy(model: nn.Module, dataset: Dataset) -> float:
    """Clean test accuracy of any model on the dataset's test split."""
    return evaluate(model, dataset.x_test, dataset.y_test)[1]
