"""Time estimates from measured cost: what a run computes, priced on this machine.

An experiment states what it computes as :class:`Work`, in three units per model:

* **forward**: images through one forward pass without gradients (a query, an
  evaluation);
* **gradient**: images through a forward and a backward pass to the input (one step of a
  white-box attack);
* **train**: images through one training step (forward, backward to the weights and the
  optimiser's update).

:func:`price` measures the seconds per image of each unit for a model by timing it on a
batch of the dataset's inputs on this machine, once: prices are cached in
``ROBUSTCORE_HOME/costs.json`` under the machine's signature (processor, core count, torch
threads, device, torch version), the architecture and the input shape. An uploaded model
is priced on the module itself. :func:`estimate` adds everything up.

Models a run takes from the zoo cost nothing when they are already trained there;
:func:`training_work` says what training one costs otherwise (the epochs, the training
method's inner attack, the per-epoch evaluation).

    from robustcore.experiments.estimate import estimate
    est = estimate(WhiteBox.for_dataset(ds).on(target), ds)
    est.seconds, est.describe()
"""

from __future__ import annotations

import json
import math
import os
import platform
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset
from ..device import get_device, in_layout, preferred_memory_format
from ..models import ARCHITECTURES, build_model
from ..models.training import TrainRecipe
from ..paths import home

if TYPE_CHECKING:
    from .base import Experiment, Target

UNITS = ("forward", "gradient", "train")
PRICE_BATCH = 128
"""Images per timed batch (the attacks' and training's batches are of this order)."""
TRAIN_PRICE_N = 512
"""Training images per timed epoch (two epochs; the faster one is the price)."""
MIN_TIMED_S = 0.15
"""Each unit is timed over repeated batches until at least this long has passed."""
BUSY_LOAD = 0.75
"""A price measured at a load average above this share of the cores is measured again."""
_lock = threading.Lock()
_prices: dict[str, dict[str, float]] = {}


@dataclass
class Work:
    """What a run computes: per model key (an architecture's name, or ``upload:<hash>``),
    how many images go through each unit (see the module docstring)."""

    forward: dict[str, float] = field(default_factory=dict)
    gradient: dict[str, float] = field(default_factory=dict)
    train: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls, model: str, *, forward: float = 0.0, gradient: float = 0.0, train: float = 0.0
    ) -> Work:
        """Work on one model."""
        w = cls()
        for unit, n in (("forward", forward), ("gradient", gradient), ("train", train)):
            if n > 0:
                getattr(w, unit)[model] = float(n)
        return w

    def __add__(self, other: Work) -> Work:
        out = Work()
        for unit in UNITS:
            merged = dict(getattr(self, unit))
            for k, v in getattr(other, unit).items():
                merged[k] = merged.get(k, 0.0) + v
            setattr(out, unit, merged)
        return out

    def __mul__(self, k: float) -> Work:
        out = Work()
        for unit in UNITS:
            setattr(out, unit, {m: v * k for m, v in getattr(self, unit).items()})
        return out

    __rmul__ = __mul__

    def models(self) -> list[str]:
        return sorted({m for unit in UNITS for m in getattr(self, unit)})

    def images(self, unit: str) -> float:
        return float(sum(getattr(self, unit).values()))

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {unit: dict(getattr(self, unit)) for unit in UNITS}


def total(parts: list[Work]) -> Work:
    out = Work()
    for p in parts:
        out = out + p
    return out


# -- prices -----------------------------------------------------------------------------------


def machine_signature() -> str:
    """What the prices depend on besides the model: processor, cores, threads, device."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    device = get_device()
    dev = str(device)
    if device.type == "cuda":
        dev += f" {torch.cuda.get_device_name(device)}"
    threads = torch.get_num_threads()
    return f"{cpu} · {os.cpu_count()} cores · {threads} threads · {dev} · torch {torch.__version__}"


def _costs_file():
    return home() / "costs.json"


def _load_prices() -> dict[str, dict[str, float]]:
    path = _costs_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: v
        for k, v in data.items()
        if isinstance(v, dict)
        and all(isinstance(v.get(u), (int, float)) and v[u] > 0 for u in UNITS)
    }


def _save_prices(prices: Mapping[str, Mapping[str, float]]) -> None:
    path = _costs_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(prices, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _timed(fn, images: int) -> float:
    """Seconds per image of ``fn`` (one batch of ``images``), after one warm-up call."""
    fn()
    reps, spent = 0, 0.0
    best = math.inf
    while spent < MIN_TIMED_S or reps < 5:
        t0 = time.perf_counter()
        fn()
        if get_device().type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        reps += 1
        if reps >= 50:
            break
    return best / images


def measure(model: nn.Module, dataset: Dataset, batch: int = PRICE_BATCH) -> dict[str, float]:
    """Seconds per image of a forward pass, an input gradient and a training step of
    ``model`` on this machine (a copy is trained, so ``model`` is left as it is)."""
    import copy

    device = get_device()
    net = copy.deepcopy(model).to(device)
    for p in net.parameters():
        p.requires_grad_(True)
    fmt = preferred_memory_format(net, device)
    net.to(memory_format=fmt)
    n = min(batch, dataset.n_test)
    reps = math.ceil(batch / n)
    x = in_layout(dataset.x_test[:n].repeat(reps, *[1] * (dataset.x_test.ndim - 1))[:batch], fmt)
    x = x.to(device)
    y = dataset.y_test[:n].repeat(reps)[:batch].to(device)
    b = x.shape[0]

    def forward() -> None:
        with torch.inference_mode():
            net(x)

    def gradient() -> None:
        xg = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(net(xg), y)
        torch.autograd.grad(loss, xg)

    net.eval()
    out = {"forward": _timed(forward, b), "gradient": _timed(gradient, b)}
    out["train"] = _train_price(net, dataset, device)
    return out


def _train_price(net: nn.Module, dataset: Dataset, device: torch.device) -> float:
    """Seconds per training image of the real training loop (its batches, bookkeeping and
    optimiser, at the default recipe's batch size): the faster of two epochs on
    :data:`TRAIN_PRICE_N` images, without the per-epoch evaluation, which
    :func:`training_work` counts as forward passes."""
    import dataclasses

    from ..models.training import run_epochs

    n = min(TRAIN_PRICE_N, dataset.n_train)
    sub = dataclasses.replace(
        dataset,
        x_train=dataset.x_train[:n],
        y_train=dataset.y_train[:n],
        x_test=dataset.x_test[:16],
        y_test=dataset.y_test[:16],
        _fingerprint=None,
    )
    history = run_epochs(net, sub, TrainRecipe(epochs=2), device=device)
    return float(history["seconds"].min()) / n


def _price_key(model_key: str, dataset: Dataset) -> str:
    return (
        f"{machine_signature()} | {model_key} | {tuple(dataset.input_shape)} | "
        f"{dataset.num_classes} classes"
    )


def price(model_key: str, dataset: Dataset, module: nn.Module | None = None) -> dict[str, float]:
    """Seconds per image of each unit for ``model_key`` on ``dataset``'s inputs here:
    measured once, then read from ``ROBUSTCORE_HOME/costs.json``. ``module`` is the model
    itself for keys that are not built-in architectures (uploads)."""
    key = _price_key(model_key, dataset)
    with _lock:
        fresh = key in _prices  # measured or checked by this process
        if not fresh:
            _prices.update(_load_prices())
        hit = _prices.get(key)
        if hit is not None and all(u in hit for u in UNITS):
            # A price measured while the processor was busy is measured again once per
            # process, and the lower one kept: other work only ever slows a timing down.
            if fresh or hit.get("load", 0.0) <= BUSY_LOAD * (os.cpu_count() or 1):
                return {u: hit[u] for u in UNITS}
    if module is None:
        if model_key not in ARCHITECTURES:
            raise KeyError(f"No model to price for {model_key!r}.")
        module = build_model(model_key, dataset.input_shape, dataset.num_classes, seed=0)
    measured: dict[str, float] = dict(measure(module, dataset))
    measured["load"] = _load_average()
    with _lock:
        _prices.update(_load_prices())
        old = _prices.get(key)
        if old is not None and all(u in old for u in UNITS):
            for u in UNITS:
                measured[u] = min(measured[u], old[u])
            measured["load"] = min(measured["load"], old.get("load", measured["load"]))
        _prices[key] = measured
        try:
            _save_prices(_prices)
        except OSError:
            pass  # a read-only home only costs a measurement per process
    return {u: measured[u] for u in UNITS}


def _load_average() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return 0.0


# -- training through the zoo ----------------------------------------------------------------


def in_zoo(arch: str, dataset: Dataset, recipe: TrainRecipe, extra: Mapping | None = None) -> bool:
    """Whether the zoo already holds this model (training it again costs nothing)."""
    from ..models.zoo import recipe_key, zoo_dir

    return (zoo_dir() / recipe_key(arch, dataset, recipe, extra) / "meta.json").exists()


def training_work(
    arch: str, dataset: Dataset, recipe: TrainRecipe, extra: Mapping | None = None
) -> Work:
    """What training ``arch`` by ``recipe`` through the zoo costs (nothing when it is there)."""
    if in_zoo(arch, dataset, recipe, extra):
        return Work()
    from ..defenses.training.monitor import EVAL_N, MONITOR_STEPS, WATCH_N

    n = recipe.train_size or dataset.n_train
    n = min(n, dataset.n_train)
    epochs = recipe.epochs
    per_epoch = Work.of(arch, train=n, forward=dataset.n_test)
    method = recipe.method
    if method == "distillation":
        if recipe.temperature != 1.0 and not extra:
            return training_work(arch, dataset, recipe.replace(temperature=1.0))
        teacher = training_work(arch, dataset, recipe.undefended())
        # The student: soft labels from the teacher, then standard steps.
        return teacher + Work.of(arch, forward=n) + per_epoch * epochs
    if method in ("fgsm_rs", "pgd_at", "trades"):
        steps = 1 if method == "fgsm_rs" else recipe.adv_steps
        share = recipe.adv_share if method != "trades" else 1.0
        inner = Work.of(arch, gradient=n * share * steps)
        extra_train = Work.of(arch, train=n) if method == "trades" else Work()
        monitor = Work.of(arch, gradient=(EVAL_N + WATCH_N) * MONITOR_STEPS)
        return (per_epoch + inner + extra_train + monitor) * epochs
    return per_epoch * epochs


def target_work(target: Target | None, dataset: Dataset) -> Work:
    """What getting the target costs: training a zoo model that is not there yet."""
    if target is None or target.source != "zoo":
        return Work()
    assert target.arch is not None and target.recipe is not None
    return training_work(target.arch, dataset, target.recipe)


def model_key(target: Target | None) -> str:
    """The key the target's work is priced under."""
    if target is None:
        return "small_cnn"
    base = f"upload:{target.fingerprint}" if target.source == "upload" else str(target.arch)
    if target.inference is not None:
        from ..hashing import stable_hash

        return f"{base}+{stable_hash(target.inference.spec(), root='inference')}"
    return base


def _priced_module(target: Target, dataset: Dataset) -> nn.Module | None:
    """The module a target's work is priced on when its key is not a built-in
    architecture: an upload itself, or any model behind its inference-time defense (an
    untrained one of the architecture: the cost does not depend on the weights)."""
    if target.source == "upload":
        if target.model is None:
            return None
        model = target.model
    elif target.inference is not None:
        model = build_model(str(target.arch), dataset.input_shape, dataset.num_classes, seed=0)
    else:
        return None
    if target.inference is None:
        return model
    return target.inference.wrap(model, bounds=dataset.bounds)


# -- estimates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """How long a run should take on this machine, and from what."""

    seconds: float
    work: Work
    prices: dict[str, dict[str, float]]

    def describe(self) -> str:
        return f"about {format_seconds(self.seconds)}"

    def breakdown(self) -> str:
        """One line per model: images per unit × the measured price."""
        lines = []
        for m in self.work.models():
            p = self.prices.get(m, {})
            parts = []
            for unit in UNITS:
                n = getattr(self.work, unit).get(m, 0.0)
                if n:
                    parts.append(f"{n:,.0f} {unit} images × {p.get(unit, 0) * 1e3:.3f} ms")
            lines.append(f"{m}: " + "; ".join(parts))
        return "\n".join(lines)


def format_seconds(s: float) -> str:
    if s < 1.5:
        return "a second"
    if s < 90:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min" if s >= 600 else f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def estimate_work(
    work: Work, dataset: Dataset, modules: Mapping[str, nn.Module] | None = None
) -> Estimate:
    """Seconds for ``work`` at this machine's measured prices."""
    modules = dict(modules or {})
    prices: dict[str, dict[str, float]] = {}
    seconds = 0.0
    for m in work.models():
        p = price(m, dataset, modules.get(m))
        prices[m] = p
        for unit in UNITS:
            seconds += getattr(work, unit).get(m, 0.0) * p[unit]
    return Estimate(seconds=seconds, work=work, prices=prices)


def estimate(experiment: Experiment, dataset: Dataset) -> Estimate | None:
    """How long ``experiment`` should take on ``dataset`` here (``None`` when it does not
    say what it computes). Counts the target's training when the zoo lacks it."""
    work = experiment.work(dataset)
    if work is None:
        return None
    if experiment.needs_model:
        work = target_work(experiment.target, dataset) + work
    modules: dict[str, Any] = {}
    t = experiment.target
    module = _priced_module(t, dataset) if t is not None else None
    if module is not None:
        modules[model_key(t)] = module
    return estimate_work(work, dataset, modules)
