"""Resource limits for what users upload, checked before the work is done.

A small file can unpack to a huge one (a zip bomb), and a dataset's arrays are copied to
float32 before anything runs on them. Every upload is therefore sized from what it
*declares* (array headers, zip entries) before anything is decompressed, against a memory
budget per upload. The budget is the server's setting ``ROBUSTCORE_UPLOAD_MEMORY_MB``
(default :data:`DEFAULT_UPLOAD_MEMORY_MB`).
"""

from __future__ import annotations

import os

from .errors import ValidationError

MB = 2**20
DEFAULT_UPLOAD_MEMORY_MB = 2048
"""Working memory one upload may take by default (its arrays and their float32 copies)."""
MAX_CLASSES = 1000
"""Most classes an uploaded dataset may have."""
MAX_CLASS_NAME = 64
"""Longest class name (characters) an uploaded dataset may give."""


def upload_memory_budget() -> int:
    """Bytes of working memory one upload may take (``ROBUSTCORE_UPLOAD_MEMORY_MB``)."""
    raw = os.environ.get("ROBUSTCORE_UPLOAD_MEMORY_MB", "").strip()
    if not raw:
        return DEFAULT_UPLOAD_MEMORY_MB * MB
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(
            f"ROBUSTCORE_UPLOAD_MEMORY_MB must be a positive number of megabytes, got {raw!r}."
        )
    return value * MB


def size_text(n: int) -> str:
    """Bytes as a short text: 1.5 GB, 20.0 MB, 512 kB."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= MB:
        return f"{n / MB:.1f} MB"
    return f"{max(1, n // 1024)} kB"
