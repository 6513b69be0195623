"""Run specifications and the keys that identify them.

A *spec* is a plain dictionary that says everything a run depends on, for example::

    {"kind": "whitebox.sweep", "seed": 0, "model": "mnist-cnn",
     "attack": {"name": "pgd", "eps": [0.1, 0.2, 0.3], "steps": 40}}

By convention it has a ``"kind"`` (required, a string) and a ``"seed"``. Two specs with the
same content get the same key, whatever the order of their dictionary entries, so a result
computed once can be found again and served from the store.

Rules for the content:

* Only plain JSON values are allowed: dict (with string keys), list, tuple, str, int,
  float, bool and None. Tuples count as lists. Anything else (a tensor, a numpy array, an
  object) is refused with a :class:`~robustcore.errors.ValidationError` that names where it
  sits, so the caller can convert it (``float(x)``, ``x.tolist()``) first.
* NaN and infinities are refused: they have no JSON form and would never compare equal.
* Types are kept: ``1`` and ``1.0`` give *different* keys, as do ``0.0`` and ``-0.0``.
  Floats are written with Python's shortest round-trip form, so ``0.1`` and
  ``0.10000000000000001`` (the same float) give the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..hashing import canonical_json as _canonical_json
from ..hashing import stable_hash, to_plain

KEY_LENGTH = 20
"""Number of hex digits of the sha256 digest kept in a key."""


def checked_plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A checked, plain copy of ``spec``: tuples become lists, subclasses become base types.

    Raises:
        ValidationError: ``spec`` is not a mapping, has no string ``"kind"``, or holds a
            value that is not plain JSON (the message names the offending place).
    """
    if not isinstance(spec, Mapping):
        raise ValidationError(f"a spec must be a dict, got {type(spec).__name__}")
    kind = spec.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise ValidationError(
            "spec['kind'] is missing or not a non-empty string; every spec needs a kind "
            "such as 'train' or 'whitebox.sweep'"
        )
    return to_plain(spec, root="spec")


def canonical_json(spec: Mapping[str, Any]) -> str:
    """The spec written as canonical JSON: sorted keys, no spaces, no NaN.

    This is the text that is hashed into :func:`spec_key` and stored with a run.
    """
    return _canonical_json(checked_plain(spec))


def spec_key(spec: Mapping[str, Any]) -> str:
    """The key of a spec: the first 20 hex digits of the sha256 of its canonical JSON.

    Raises:
        ValidationError: see :func:`checked_plain`.
    """
    return stable_hash(checked_plain(spec), length=KEY_LENGTH)
