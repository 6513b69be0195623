"""Typed exceptions raised by the engine.

Every message says what is wrong and what is expected, so the UI can show it to a
person as it is and an API caller can catch a precise type.
"""

from __future__ import annotations


class RobustcoreError(Exception):
    """Base class of every error the engine raises on purpose."""


class ValidationError(RobustcoreError, ValueError):
    """An argument, slider value or CLI flag is outside what is accepted."""


class DatasetError(RobustcoreError):
    """A dataset name is unknown or its files cannot be read."""


class DatasetUnavailableError(DatasetError):
    """A downloadable dataset is not on disk and cannot be downloaded (offline)."""


class UploadError(DatasetError, ValidationError):
    """An uploaded file is corrupt, too large or has the wrong content."""


class ModelError(RobustcoreError):
    """An architecture is unknown, incompatible with the data, or weights do not fit."""


class RunError(RobustcoreError):
    """A job failed; the message is the original error's."""


class JobCancelled(RobustcoreError):
    """Raised inside a job when the user cancelled it."""


def shown(text: object, limit: int = 40) -> str:
    """A name, dtype or library text from an uploaded file, fit for a message: unprintable
    characters become ``?`` and it is cut to ``limit`` characters (ending in ``…``)."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"
