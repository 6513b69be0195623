"""Black-box evasion attacks: robustcore's SimBA and ZOO against ART's on one model and images.

Each attack runs on the same trained model (the default recipe, through the zoo), the same
correctly classified test images and the same device, in robustcore
(``robustcore.attacks.evasion``, through a :class:`QueryModel` that counts every query) and
in the Adversarial Robustness Toolbox (ART) 1.20.1 (``SimBA``, ``ZooAttack``; its queries are
counted by wrapping the classifier's ``predict`` and adding up the rows it is asked for).
Every row reports seconds in all and per image, the success rate, the mean L2 norm of the
successful perturbations, the mean queries per image (all images) and the median queries of
the successful ones, ``÷ query cost`` (robustcore: the total time divided by the time its
query service spent in the model's forward passes, at the batch sizes the attack sent, in
the same run; target ≤ 1.5×) and ``ART ÷ ours``: ART's seconds per image divided by
robustcore's on the same images.

    python bench/blackbox.py [--n 100] [--art-n 10] [--attacks simba-pixel,simba-dct,zoo]
        [--eps 0.2] [--simba-iters 1000] [--zoo-queries 5000] [--threads N] [--json out.json]

ART attacks one image at a time and is slow, so it runs on the first ``--art-n`` images;
robustcore runs on those same images (the rows the ratio is taken from) and on all ``--n``
(a batch as a page would attack). Settings, made equal where the algorithms allow:

* SimBA: the same step ε, basis (pixel, or DCT with the same 4×4 low-frequency block and
  stride 1) and number of directions per image (ART's ``max_iter``). ART always sends two
  queries per direction; robustcore sends the second only when the first did not help, and
  skips probes the data bounds clip back onto the current point, so it gets the same
  maximum spend, ``1 + 2·max_iter`` queries.
* ZOO: robustcore's defaults (7×7 attack space, c = 10, ADAM lr 0.1, 128 coordinates per
  iteration, stop at the first success), and the same at full resolution (784 coordinates)
  for a like-for-like row. ART: c = 10, lr 0.1, 128 coordinates, no binary search, as many
  iterations as robustcore's query budget allows (2·128 + 1 queries each), at full
  resolution: ART's resizing works on channels-last 32×32 images only and its importance
  sampling starts above 32×32, so neither applies to MNIST. ART's ZOO reads the model's
  logits (its design), robustcore's the probabilities the service returns; ART does not
  stop at the first success but runs every iteration to shrink the perturbation.

``--threads`` defaults to all cores up to 8; on a shared machine one thread gives far
steadier numbers. On the CPU a query costs one forward pass of one image whatever the batch
(measured: 0.22 ms for the default model at one thread, batch 1 to 128), so there the gain
comes from needing fewer queries; on a GPU whole batches of queries add the gain of
batching on top.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from clock import Stopwatch  # noqa: E402
from report import write_json  # noqa: E402
from torch import nn  # noqa: E402

from robustcore.attacks.evasion import ZOO, QueryModel, SimBA  # noqa: E402
from robustcore.data import load  # noqa: E402
from robustcore.device import configure_threads, get_device  # noqa: E402
from robustcore.models import train_entry  # noqa: E402

ATTACKS = ("simba-pixel", "simba-dct", "zoo")


@dataclass
class Row:
    library: str
    attack: str
    settings: str
    images: int
    seconds: float
    success_rate: float
    mean_l2: float
    mean_queries: float
    median_queries: float
    art_over_ours: float | None = None
    forward_seconds: float | None = None  # robustcore: the service's forward passes

    @property
    def over_queries(self) -> float | None:
        """Total time ÷ the cost of the queries (their forward passes, at the batch sizes
        the attack actually sent, timed in the same run)."""
        if not self.forward_seconds:
            return None
        return self.seconds / self.forward_seconds

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.images if self.images else float("nan")


@dataclass
class Outcome:
    x_adv: torch.Tensor
    queries: torch.Tensor  # per image (ART: only the mean is known, spread evenly)
    seconds: float
    forward_seconds: float | None = None


def score(lib: str, attack: str, settings: str, out: Outcome, model: nn.Module, x, y) -> Row:
    """Success, L2 and queries measured by the evaluator (the model itself, not counted)."""
    x_adv = out.x_adv.to(x.device)
    with torch.inference_mode():
        fooled = model(x_adv).argmax(dim=1) != y
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    q = out.queries.float()
    return Row(
        library=lib,
        attack=attack,
        settings=settings,
        images=int(x.shape[0]),
        seconds=out.seconds,
        forward_seconds=out.forward_seconds,
        success_rate=float(fooled.float().mean()),
        mean_l2=float(l2[fooled].mean()) if bool(fooled.any()) else float("nan"),
        mean_queries=float(q.mean()),
        median_queries=float(q[fooled.cpu()].median())
        if lib != "art" and bool(fooled.any())
        else float("nan"),  # fmt: skip
    )


# ---------------------------------------------------------------- the two libraries


def run_ours(
    attack, run_args: dict, model: nn.Module, x, y, device, api_batch: int | None
) -> Outcome:
    kwargs = {} if api_batch is None else {"batch_size": api_batch}
    api = QueryModel(model, **kwargs)
    with Stopwatch(device) as sw:
        res = attack.run(api, x, y, **run_args)
    seconds = sw.seconds
    assert torch.equal(res.queries, api.queries), "query counts must agree"
    return Outcome(res.x_adv, res.queries.cpu(), seconds, api.forward_seconds)


class RowCounter:
    """Wraps an ART classifier's ``predict`` and counts the rows (queries) it answers."""

    def __init__(self, clf) -> None:
        self.rows = 0
        self._predict = clf.predict
        clf.predict = self

    def __call__(self, x, *args, **kwargs):
        self.rows += int(np.asarray(x).shape[0])
        return self._predict(x, *args, **kwargs)


def art_classifier(model: nn.Module, input_shape, num_classes: int, device, probs: bool):
    from art.estimators.classification import PyTorchClassifier

    net = nn.Sequential(model, nn.Softmax(dim=1)).eval() if probs else model
    return PyTorchClassifier(
        model=net,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )


def run_art(make: Callable, clf, x, y, num_classes: int, seed: int = 0) -> Outcome:
    counter = RowCounter(clf)
    atk = make(clf)
    np.random.seed(seed)  # ART's SimBA draws its direction order from NumPy's generator
    onehot = np.eye(num_classes, dtype=np.float32)[y.cpu().numpy()]
    t0 = time.perf_counter()
    x_adv = atk.generate(x.cpu().numpy(), onehot)
    seconds = time.perf_counter() - t0
    clf.predict = counter._predict
    n = int(x.shape[0])
    return Outcome(torch.from_numpy(np.asarray(x_adv)), torch.full((n,), counter.rows / n), seconds)


# ---------------------------------------------------------------------------- main


def fmt(v: float, spec: str) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def fmt_row(r: Row) -> str:
    ratio = "—" if r.art_over_ours is None else f"{r.art_over_ours:.1f}×"
    floor = "—" if r.over_queries is None else f"{r.over_queries:.2f}×"
    return (
        f"| {r.library} | {r.attack} | {r.settings} | {r.images} | {r.seconds:.2f} | "
        f"{r.seconds_per_image:.4f} | {100 * r.success_rate:.1f} % | {fmt(r.mean_l2, '.2f')} | "
        f"{fmt(r.mean_queries, ',.0f')} | {fmt(r.median_queries, ',.0f')} | {floor} | {ratio} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--arch", default="small_cnn")
    ap.add_argument("--epochs", type=int, default=5, help="training epochs (zoo-cached)")
    ap.add_argument("--n", type=int, default=100, help="images for robustcore's batch rows")
    ap.add_argument("--art-n", type=int, default=10, help="images for ART (one at a time)")
    ap.add_argument("--attacks", default=",".join(ATTACKS), help=f"from {','.join(ATTACKS)}")
    ap.add_argument("--libs", default="robustcore,art", help="which libraries to run")
    ap.add_argument("--eps", type=float, default=0.2, help="SimBA step (the paper's 0.2)")
    ap.add_argument("--simba-iters", type=int, default=1000, help="SimBA directions per image")
    ap.add_argument("--zoo-queries", type=int, default=5000, help="ZOO query budget per image")
    ap.add_argument("--api-batch", type=int, default=None, help="QueryModel batch_size")
    ap.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: all cores up to 8)"
    )
    ap.add_argument("--json", type=Path, default=None, help="write the rows and settings here")
    ns = ap.parse_args()
    for flag in ("epochs", "n", "art_n", "simba_iters", "zoo_queries"):
        if getattr(ns, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1")
    libs = set(ns.libs.split(","))

    threads = configure_threads(ns.threads)
    device = get_device()
    ds = load(ns.dataset)
    entry = train_entry(ns.arch, ds, {"epochs": ns.epochs, "seed": 0}, device=device)
    model = entry.model.eval()
    x_all, y_all = ds.x_test.to(device), ds.y_test.to(device)
    with torch.inference_mode():
        right = (model(x_all[:2000]).argmax(1) == y_all[:2000]).nonzero().flatten()
    x, y = x_all[right[: ns.n]], y_all[right[: ns.n]]
    art_n = min(ns.art_n, int(x.shape[0]))
    xa, ya = x[:art_n], y[:art_n]
    header = (
        f"# {ns.arch} on {ds.name} ({ns.epochs} epochs), {x.shape[0]} correctly classified "
        f"test images (ART: the first {art_n}), {device} with {threads} threads, "
        f"torch {torch.__version__}"
    )
    print(header, flush=True)

    iters = ns.simba_iters
    simba_budget = 1 + 2 * iters
    zoo_iters = max(1, (ns.zoo_queries - 1) // (2 * 128 + 1))
    rows: list[Row] = []
    for name in [a.strip() for a in ns.attacks.split(",") if a.strip()]:
        if name not in ATTACKS:
            raise SystemExit(f"unknown attack {name!r}: choose from {', '.join(ATTACKS)}")
        ours: list[tuple[str, object, dict]] = []
        art_make = None
        if name.startswith("simba"):
            basis = name.split("-")[1]
            s = f"ε={ns.eps:g}, {iters} directions (≤ {simba_budget} queries)"
            if basis == "dct":
                s += ", 4×4 low-frequency block, stride 1"
            ours.append((s, SimBA(basis=basis), {"eps": ns.eps, "max_queries": simba_budget}))

            def art_make(clf, basis=basis):
                from art.attacks.evasion import SimBA as ArtSimBA

                return ArtSimBA(
                    clf,
                    attack="px" if basis == "pixel" else "dct",
                    max_iter=iters,
                    epsilon=ns.eps,
                    freq_dim=4,
                    stride=1,
                    verbose=False,
                )

            art_settings = s + ", 2 queries per direction"
        else:
            zoo, budget = ZOO(), {"max_queries": ns.zoo_queries}
            ours.append((f"defaults: 7×7 attack space, ≤ {ns.zoo_queries} queries", zoo, budget))
            ours.append(
                (
                    f"full resolution (784 coordinates), ≤ {ns.zoo_queries} queries",
                    zoo.replace(resize=0),
                    budget,
                )  # fmt: skip
            )

            def art_make(clf):
                from art.attacks.evasion import ZooAttack

                return ZooAttack(
                    clf,
                    confidence=0.0,
                    learning_rate=0.1,
                    max_iter=zoo_iters,
                    binary_search_steps=1,
                    initial_const=10.0,
                    abort_early=False,
                    use_resize=False,
                    use_importance=False,
                    nb_parallel=128,
                    batch_size=1,
                    variable_h=1e-4,
                    verbose=False,
                )

            art_settings = (
                f"c=10, lr 0.1, 128 coordinates × {zoo_iters} iterations, full resolution, "
                "on logits, no early stop"
            )
        same_images: list[Row] = []
        if "robustcore" in libs:
            for settings, attack, run_args in ours:
                warm = {**run_args, "max_queries": 3}
                run_ours(attack, warm, model, xa[:2], ya[:2], device, None)
                out = run_ours(attack, run_args, model, xa, ya, device, ns.api_batch)
                same_images.append(score("robustcore", name, settings, out, model, xa, ya))
                rows.append(same_images[-1])
                print(f"  robustcore {name} ({art_n} images): {out.seconds:.2f} s", file=sys.stderr)
                if x.shape[0] > art_n:
                    out = run_ours(attack, run_args, model, x, y, device, ns.api_batch)
                    rows.append(score("robustcore", name, settings, out, model, x, y))
                    print(f"  robustcore {name} ({x.shape[0]} images): {out.seconds:.2f} s",
                          file=sys.stderr)  # fmt: skip
        if "art" in libs and art_make is not None:
            clf = art_classifier(
                model, ds.input_shape, ds.num_classes, device, probs=name.startswith("simba")
            )
            out = run_art(art_make, clf, xa, ya, ds.num_classes)
            row = score("art", name, art_settings, out, model, xa, ya)
            if same_images:
                row.art_over_ours = row.seconds_per_image / same_images[0].seconds_per_image
            rows.append(row)
            print(f"  art {name} ({art_n} images): {out.seconds:.2f} s", file=sys.stderr)

    print()
    print(
        "| library | attack | settings | images | seconds | s/image | success | "
        "mean L2 (fooled) | mean queries | median queries (fooled) | ÷ query cost | "
        "ART ÷ ours (s/image) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(fmt_row(r))
    print()
    checks = []
    for r in rows:
        if r.library != "art" or r.art_over_ours is None:
            continue
        ours = next(o for o in rows if o.library == "robustcore" and o.attack == r.attack)
        fast = r.art_over_ours >= 20
        good = ours.success_rate >= r.success_rate
        checks.append(
            f"{r.attack}: ART takes {r.art_over_ours:.1f}× robustcore's time per image "
            f"(target ≥ 20×): {'met' if fast else 'MISSED'}; success {100 * ours.success_rate:.0f} "
            f"% vs ART's {100 * r.success_rate:.0f} % (target ≥): {'met' if good else 'MISSED'}"
        )
    for r in rows:
        if r.over_queries is not None:
            met = "met" if r.over_queries <= 1.5 else "MISSED"
            checks.append(
                f"{r.attack} on {r.images} images: {r.seconds:.2f} s in all ÷ "
                f"{r.forward_seconds:.2f} s of query forward passes = {r.over_queries:.2f}× "
                f"(target ≤ 1.5×): {met}"
            )
    for line in checks:
        print(f"- {line}")
    if ns.json:
        write_json(
            ns.json,
            ns,
            header,
            device,
            threads,
            rows=[asdict(r) | {"seconds_per_image": r.seconds_per_image} for r in rows],
            checks=checks,
        )


if __name__ == "__main__":
    main()
