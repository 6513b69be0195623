"""A White-box what-if that changes only PGD's steps: from scratch against from cells.

The White-box page's default run (``WhiteBox.page_default`` on the sidebar's default model)
runs first and leaves its cells (clean accuracy, FGSM, PGD, C&W, the two sanity checks
that attack again) in a fresh result store. Its what-if, the same run with PGD at
``--steps`` steps (40, the page's what-if default), is then timed twice:

* **from scratch**: every part computed, as every run was before cells (``cells=None``);
* **from cells**: assembled from the stored cells, computing only PGD's sweep and its
  convergence check; the parts it reused are listed from its progress messages.

Both must give the same result (tables, metrics and artifacts equal, timings aside); the
script exits 1 when they do not.

    python bench/whatif_cells.py [--dataset mnist5k] [--steps 40] [--threads N]
        [--json out.json]

``ROBUSTCORE_HOME`` holds the model zoo (the default model is trained there when new); the
cells go to a temporary store. ``--threads`` defaults to all cores up to 8.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from clock import Stopwatch  # noqa: E402

from robustcore.data import load  # noqa: E402
from robustcore.device import model_device  # noqa: E402
from robustcore.experiments import Target  # noqa: E402
from robustcore.experiments.whitebox import WhiteBox  # noqa: E402
from robustcore.models import TrainRecipe, default_architecture, train_entry  # noqa: E402
from robustcore.runs import ResultStore  # noqa: E402
from robustcore.runs.cells import CellCache  # noqa: E402


def same(a, b) -> bool:
    """Equal tables (timings aside), artifacts and metrics (C&W's seconds aside)."""
    if list(a.tables) != list(b.tables) or list(a.artifacts) != list(b.artifacts):
        return False
    for name, ta in a.tables.items():
        tb = b.tables[name]
        if "seconds" in ta:
            ta, tb = ta.drop(columns="seconds"), tb.drop(columns="seconds")
        try:
            pd.testing.assert_frame_equal(ta, tb, check_exact=True)
        except AssertionError:
            return False
    if any(not np.array_equal(v, b.artifacts[k]) for k, v in a.artifacts.items()):
        return False
    ma = {k: v for k, v in a.metrics.items() if k != "cw_seconds"}
    mb = {k: v for k, v in b.metrics.items() if k != "cw_seconds"}
    return ma.keys() == mb.keys() and all(
        ma[k] == mb[k] or (ma[k] != ma[k] and mb[k] != mb[k]) for k in ma
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--steps", type=int, default=40, help="PGD steps of the what-if")
    ap.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ds = load(args.dataset)
    arch = default_architecture(ds)
    model = train_entry(arch, ds, TrainRecipe()).model
    device = model_device(model)
    first = WhiteBox.page_default(ds, Target.zoo(arch, TrainRecipe()))
    what_if = first.replace(pgd=first.pgd.replace(steps=args.steps))

    with tempfile.TemporaryDirectory() as tmp:
        cells = CellCache(ResultStore(Path(tmp) / "runs.sqlite"))
        with Stopwatch(device) as sw_first:
            first.run(ds, model, cells=cells)
        with Stopwatch(device) as sw_scratch:
            scratch = what_if.run(ds, model)
        messages: list[str] = []
        with Stopwatch(device) as sw_cells:
            assembled = what_if.run(ds, model, lambda f, m="": messages.append(m), cells=cells)
    reused = [m.split(": reused")[0] for m in messages if ": reused" in m]
    identical = same(scratch, assembled)
    rows = [
        ("page default (fills the cells)", sw_first.seconds, "—"),
        (f"what-if PGD {args.steps} steps, from scratch", sw_scratch.seconds, "—"),
        (f"what-if PGD {args.steps} steps, from cells", sw_cells.seconds, ", ".join(reused)),
    ]
    print(f"White-box what-if on {arch} / {ds.name} ({device}, {args.threads} threads)\n")
    print("| run | seconds | parts reused |\n|---|---:|---|")
    for name, seconds, parts in rows:
        print(f"| {name} | {seconds:.1f} | {parts} |")
    print(
        f"\nfrom cells ÷ from scratch: {sw_cells.seconds / sw_scratch.seconds:.2f}; "
        f"same result: {'yes' if identical else 'NO'}"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "arch": arch,
                    "dataset": ds.name,
                    "device": str(device),
                    "threads": args.threads,
                    "steps": args.steps,
                    "first_s": sw_first.seconds,
                    "scratch_s": sw_scratch.seconds,
                    "cells_s": sw_cells.seconds,
                    "reused": reused,
                    "identical": identical,
                },
                indent=2,
            )
        )
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
