"""Canonical JSON and stable content hashes for cache keys (specs, model recipes)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError


def _plain(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{path} is {value}; specs must hold finite numbers.")
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{path} has a non-text key {k!r}; keys must be text.")
            out[k] = _plain(v, f"{path}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise ValidationError(
        f"{path} has type {type(value).__name__}; specs must be plain JSON values "
        "(numbers, text, booleans, lists, dicts)."
    )


def canonical_json(value: Any, *, root: str = "spec") -> str:
    """JSON text that is identical for equal values regardless of key order."""
    return json.dumps(_plain(value, root), sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(value: Any, *, length: int = 20, root: str = "spec") -> str:
    """First ``length`` hex digits of the SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value, root=root).encode()).hexdigest()[:length]
