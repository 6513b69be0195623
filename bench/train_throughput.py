"""Training throughput and the forward+backward floor of each architecture.

The floor (one forward plus one backward pass of a batch with respect to the input) is the
yardstick the gradient-attack benchmarks compare against: an attack step cannot be cheaper.

    python bench/train_throughput.py [--dataset mnist5k] [--batch 256] [--repeats 20]

Prints one row per architecture: seconds per training epoch, training images per second,
milliseconds per forward+backward of one batch w.r.t. the input (the attack-step floor), and
the ratio of a full training step to that floor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from clock import Stopwatch  # noqa: E402

from robustcore.data import load  # noqa: E402
from robustcore.device import configure_threads, get_device  # noqa: E402
from robustcore.models import TrainRecipe, build_model, compatible_architectures, fit  # noqa: E402


def floor_ms(model, x, y, repeats: int, device: torch.device) -> float:
    """Median milliseconds of forward + backward to the input for one batch."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    times = []
    for _ in range(repeats + 3):
        xa = x.clone().requires_grad_(True)
        with Stopwatch(device) as sw:
            loss = F.cross_entropy(model(xa), y)
            (grad,) = torch.autograd.grad(loss, xa)
        times.append(sw.seconds)
    times = sorted(times[3:])
    return 1000 * times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3, help="the first epoch is a warm-up")
    ns = ap.parse_args()
    threads = configure_threads()
    device = get_device()
    ds = load(ns.dataset)
    x = ds.x_test[: ns.batch].to(device)
    y = ds.y_test[: ns.batch].to(device)
    print(f"# {ds.name} on {device} ({threads} threads), torch {torch.__version__}")
    print("| arch | s / epoch | train img/s | floor ms / batch | train step / floor |")
    print("|---|---:|---:|---:|---:|")
    for arch in compatible_architectures(ds.modality, ds.input_shape):
        model = build_model(arch, ds.input_shape, ds.num_classes, seed=0)
        recipe = TrainRecipe(epochs=max(1, ns.epochs), batch_size=ns.batch)
        history = fit(model, ds, recipe, device=device)
        later = history["seconds"].iloc[1:] if len(history) > 1 else history["seconds"]
        sec_epoch = float(later.median())  # includes the per-epoch test-set evaluation
        steps = -(-ds.n_train // ns.batch)
        fl = floor_ms(model, x, y, ns.repeats, device)
        step_ms = 1000 * sec_epoch / steps
        print(
            f"| {arch} | {sec_epoch:.2f} | {ds.n_train / sec_epoch:,.0f} | {fl:.2f} | "
            f"{step_ms / fl:.2f}× |"
        )


if __name__ == "__main__":
    main()
