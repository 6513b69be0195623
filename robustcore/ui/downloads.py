"""Download buttons for tables, JSON and binary artifacts."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from ..models.zoo import zoo_dir


def download_bytes(
    data: bytes,
    file_name: str,
    *,
    mime: str,
    label: str | None = None,
    key: str | None = None,
    container: Any = st,
) -> None:
    """A download button for raw bytes (weights, images, archives)."""
    container.download_button(
        label or f"Download {file_name}",
        data,
        file_name=file_name,
        mime=mime,
        key=key or f"dl.{file_name}",
    )


def download_table(df: pd.DataFrame, file_name: str, **kwargs: Any) -> None:
    """A CSV download of ``df`` (keyword arguments as in :func:`download_bytes`)."""
    download_bytes(df.to_csv(index=False).encode(), file_name, mime="text/csv", **kwargs)


def download_json(obj: Any, file_name: str, **kwargs: Any) -> None:
    """A JSON download of a plain object (spec, metrics, versions)."""
    data = json.dumps(obj, indent=2, default=str).encode()
    download_bytes(data, file_name, mime="application/json", **kwargs)


def download_run(result: Any, file_name: str, **kwargs: Any) -> None:
    """A typed result's key, spec, metrics, seed and library versions as JSON (``label``
    defaults to "Run (JSON)"; other keyword arguments as in :func:`download_bytes`)."""
    kwargs.setdefault("label", "Run (JSON)")
    download_json(result.as_json(), file_name, **kwargs)


def download_zoo_weights(zoo_key: str, file_name: str, **kwargs: Any) -> None:
    """A download of a zoo model's stored state_dict (``model.pt``), when it is on disk
    (keyword arguments as in :func:`download_bytes`)."""
    weights = zoo_dir() / zoo_key / "model.pt"
    if zoo_key and weights.exists():
        download_bytes(weights.read_bytes(), file_name, mime="application/octet-stream", **kwargs)
