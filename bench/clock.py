"""How the benchmarks time a block of work on a device.

On a GPU, kernels run asynchronously: a wall clock read right after a call measures the
launch, not the work. :class:`Stopwatch` therefore synchronises the device, records a CUDA
event before and after the block, waits for the second one and reports the time between
them. Elsewhere it is ``time.perf_counter`` around the block.

    with Stopwatch(device) as sw:
        x_adv = attack(x, y)
    seconds = sw.seconds
"""

from __future__ import annotations

import time
from typing import Any

import torch


class Stopwatch:
    """Seconds spent in a ``with`` block on ``device`` (CUDA events on a GPU)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.seconds = float("nan")
        self._cuda = self.device.type == "cuda"
        self._start: Any = None

    def __enter__(self) -> Stopwatch:
        if self._cuda:
            torch.cuda.synchronize(self.device)
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            self.seconds = self._start.elapsed_time(end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._start
