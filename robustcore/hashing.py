"""Canonical JSON and stable content hashes for cache keys (run specs, model recipes).

Only plain JSON values are accepted: dict (with text keys), list, tuple, str, int, float,
bool and None; tuples count as lists. Anything else (a tensor, an array, an object) is
refused with a :class:`~robustcore.errors.ValidationError` naming where it sits. NaN and
infinities are refused. Types are kept (``1`` and ``1.0`` differ); floats are written in
Python's shortest round-trip form.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError


def _path_text(path: tuple[str | int, ...], root: str) -> str:
    return root + "".join(f"[{part!r}]" for part in path)


def _plain(value: Any, path: tuple[str | int, ...], root: str) -> Any:
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{_path_text(path, root)} is {value!r}; specs must hold finite numbers "
                "(NaN and infinity have no JSON form)."
            )
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{_path_text(path, root)} has a non-text key {key!r} of type "
                    f"{type(key).__name__}; spec dictionaries must have string keys."
                )
            out[str.__str__(key)] = _plain(item, (*path, key), root)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, index), root) for index, item in enumerate(value)]
    raise ValidationError(
        f"{_path_text(path, root)} has type {type(value).__name__}; specs must be plain JSON "
        "values (dict, list, tuple, str, int, float, bool, None)."
    )


def to_plain(value: Any, *, root: str = "spec") -> Any:
    """A copy of ``value`` made only of built-in JSON types (tuples become lists)."""
    return _plain(value, (), root)


def canonical_json(value: Any, *, root: str = "spec") -> str:
    """JSON text that is identical for equal values regardless of key order."""
    return json.dumps(
        to_plain(value, root=root),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def stable_hash(value: Any, *, length: int = 20, root: str = "spec") -> str:
    """First ``length`` hex digits of the SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value, root=root).encode("utf-8")).hexdigest()[:length]


_MASK64 = (1 << 64) - 1


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SplitMix64 steps): nearby inputs give unrelated seeds
    (a noise stream per seed, phase and call)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & _MASK64)) & _MASK64
        h = (h * 0xBF58476D1CE4E5B9) & _MASK64
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 29
    return h & ((1 << 63) - 1)
