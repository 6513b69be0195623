"""What every benchmark script writes with ``--json``: its header, arguments, device,
threads and torch version next to its own rows and checks."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch


def write_json(
    path: Path, ns: argparse.Namespace, header: str, device: Any, threads: int, **fields: Any
) -> None:
    """Write the run's settings and ``fields`` (rows, checks, …) to ``path`` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "header": header,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(ns).items()},
        "device": str(device),
        "threads": threads,
        "torch": torch.__version__,
        **fields,
    }
    path.write_text(json.dumps(payload, indent=2))


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as a timing table prints them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
