"""Download buttons for tables, JSON and binary artifacts."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st


def download_table(
    df: pd.DataFrame,
    file_name: str,
    *,
    label: str | None = None,
    key: str | None = None,
    container: Any = st,
) -> None:
    """A CSV download of ``df``."""
    container.download_button(
        label or f"Download {file_name}",
        df.to_csv(index=False).encode(),
        file_name=file_name,
        mime="text/csv",
        key=key or f"dl.{file_name}",
    )


def download_json(
    obj: Any,
    file_name: str,
    *,
    label: str | None = None,
    key: str | None = None,
    container: Any = st,
) -> None:
    """A JSON download of a plain object (spec, metrics, versions)."""
    container.download_button(
        label or f"Download {file_name}",
        json.dumps(obj, indent=2, default=str).encode(),
        file_name=file_name,
        mime="application/json",
        key=key or f"dl.{file_name}",
    )


def download_bytes(
    data: bytes,
    file_name: str,
    *,
    mime: str,
    label: str | None = None,
    key: str | None = None,
    container: Any = st,
) -> None:
    container.download_button(
        label or f"Download {file_name}",
        data,
        file_name=file_name,
        mime=mime,
        key=key or f"dl.{file_name}",
    )
