"""Adversarial training: robustcore's trainers against ART's, their cost and what they buy.

Five sections, each a Markdown table on stdout (progress goes to stderr), all on
``mnist5k`` (4,000 training and 1,000 test images) with ``small_cnn``, Adam at lr 1e-3 and
batch size 128. Robust accuracy is always measured by robustcore's PGD with 40 steps of
2.5 ε / 40 and 5 random restarts (an input counts as robust only if no restart fools it),
on the first ``--eval-n`` test images, at the training ε; clean accuracy is on all 1,000
test images. Seconds per epoch are training time only (robustcore's ``seconds`` column;
ART's ``fit`` of one epoch, timed around the call), the median over the epochs.

1. ``speed`` – trainer speed against ART 1.20.1: PGD-AT (``AdversarialTrainerMadryPGD``)
   and TRADES (``AdversarialTrainerTRADESPyTorch``) from the same initial weights, at the
   same ε (``--speed-eps``, default 0.1, where neither library needs an ε warm-up, which
   ART does not have), 10 inner steps of the same absolute size, batch size, epochs and
   optimiser. Reported: seconds per epoch, PGD-40 and clean accuracy, ART's seconds per
   epoch ÷ robustcore's, and whether robustcore is at least 2× faster at equal or better
   robust accuracy (at most 2 points below ART's). What cannot be made equal is in the
   ``settings`` column. robustcore's models are the ε = 0.1 models of section 3.
2. ``passes`` – the cost of an adversarial epoch in training passes: seconds per epoch ÷
   (standard training's seconds per epoch × (attack steps + 1)); FGSM-RS counts one attack
   step. Target ≤ 1.15. The epochs are those of the other sections' trainings in this run
   when there are any (same batch size and data), else ``--passes-epochs`` epochs each.
3. ``robustness`` – PGD-AT and TRADES at ε = 0.3 (with a linear ε warm-up) and 0.1,
   FGSM-RS at both, and the undefended (standard) model: PGD-40 accuracy at the training
   ε, clean accuracy, training time. Targets: at ε = 0.3 robust accuracy ≥ 50 % and at
   least 40 points above the undefended model's; at ε = 0.1 ≥ 85 %; FGSM-RS within 5
   points of PGD-AT's robust accuracy in less than PGD-AT's training time.
4. ``watchdog`` – FGSM without random start and a step of 2 ε (Wong et al.'s recipe for
   catastrophic overfitting) with and without the watchdog: per-epoch PGD-10 accuracy on
   the watched training images, whether and when the watchdog stopped, the epoch it kept,
   and the final PGD-40 accuracy of both models. The default ε is 0.2 (``--watch-eps``):
   measured on this data (10–20 epochs), at ε = 0.3 the PGD accuracy never rises above
   10 % (there is nothing to lose), at 0.25 and 0.1 it does not fall 20 points in 10
   epochs, at 0.2 it peaks at 50 % in epoch 4 and falls below 30 % by epoch 16 – a slow
   decay, not the collapse within one epoch that Wong et al. saw on CIFAR-10.
5. ``distillation`` – defensive distillation at T = 1, 10, 100: clean accuracy, the
   success rate (``fooled_rate``: the share of the correctly classified images among the
   first 100 test images that the attack makes wrong) of PGD-40 at ε = 0.3 on the model
   itself (naive), of the same PGD on the logits divided by T (adaptive, Carlini & Wagner
   2016, through ``LogitsDividedBy``), and of C&W L2 (default settings). Target: at
   T = 100 the naive attack's success at most half of its success at T = 1, the adaptive
   attack's at least 95 %.

    python bench/adversarial_training.py [--only speed passes robustness watchdog distillation]
        [--epochs N] [--eval-n 500] [--threads 2] [--quick] [--json out.json]

``--epochs`` replaces every section's own number of epochs (listed in ``--help``);
``--quick`` is a smoke run (500 training images, 1 epoch, ``--eval-n`` 50), whose numbers
mean nothing. The default epochs come from measured learning curves (the monitor's PGD-10
accuracy on held-out images): at ε = 0.3 with 5 warm-up epochs PGD-AT passes 50 % in
epoch 6 and TRADES in epoch 7 (PGD-40×5 on 500 images: TRADES 67 % after 15 epochs,
PGD-AT 72 % after 20); at ε = 0.1 PGD-AT passes 85 % in epoch 5 and TRADES in epoch 4
(PGD-AT after 10 epochs: 89 % under PGD-40×5). Section wall times measured on this
project's idle 2-core CPU (2026-12-01): speed 1505 s (before the pool-first reorder of
small_cnn, which made robustcore's PGD-AT epoch 20 → 14 s), passes 75 s, robustness 973 s,
watchdog 255 s; distillation 2315 s on a machine loaded by other jobs. The timings of
sections 1 and 2 are only as steady as the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TQDM_DISABLE", "1")  # ART's progress bars

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from report import write_json  # noqa: E402
from torch import nn  # noqa: E402

from robustcore.attacks.evasion import PGD, CarliniWagnerL2  # noqa: E402
from robustcore.data import load  # noqa: E402
from robustcore.defenses.training import LogitsDividedBy  # noqa: E402
from robustcore.defenses.training.monitor import WATCH_N  # noqa: E402
from robustcore.device import configure_threads, get_device  # noqa: E402
from robustcore.evaluation.metrics import fooled_rate  # noqa: E402
from robustcore.models import TrainRecipe, build_model, evaluate, fit  # noqa: E402

SECTIONS = ("speed", "passes", "robustness", "watchdog", "distillation")
DATASET = "mnist5k"
ARCH = "small_cnn"
BATCH = 128
LR = 1e-3
STEPS = 10  # inner attack steps of PGD-AT and TRADES
EVAL_STEPS, EVAL_RESTARTS = 40, 5
TEMPERATURES = (1.0, 10.0, 100.0)
DISTIL_IMAGES = 100
FGSM_GAP = 0.05  # "within a few points of PGD-AT": at most 5 points below it

# Epochs of each section's trainings (``--epochs`` replaces them all).
EPOCHS = {
    "eps03": 15,  # PGD-AT, TRADES and FGSM-RS at ε = 0.3 ...
    "warmup03": 5,  # ... of which the first ones ramp ε up linearly
    "eps01": 10,  # PGD-AT, TRADES and FGSM-RS at ε = 0.1, and ART's trainers (section 1)
    "standard": 10,  # the undefended model
    "watchdog": 20,  # FGSM without random start
    "distillation": 10,  # teacher and student, each
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(v: float | None) -> str:
    return "—" if v is None or v != v else f"{100 * v:.1f} %"


def n_epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def yes(ok: bool) -> str:
    return "met" if ok else "MISSED"


@dataclass
class Trained:
    """One training run of this benchmark: the model, its epoch table and wall time."""

    model: nn.Module
    history: pd.DataFrame
    wall: float  # seconds of the whole fit (training, per-epoch monitor, test evaluation)
    evals: dict[float, float] = field(default_factory=dict)  # ε → PGD-40 accuracy

    @property
    def sec_epoch(self) -> float:
        return float(self.history["seconds"].median())

    @property
    def train_seconds(self) -> float:
        return float(self.history["seconds"].sum())


class Bench:
    """Shared state: data, eval images, and the trained models (one per recipe)."""

    def __init__(self, ns: argparse.Namespace, device: torch.device) -> None:
        self.ns = ns
        self.device = device
        self.ds = load(DATASET)
        self.x_eval = self.ds.x_test[: ns.eval_n].to(device)
        self.y_eval = self.ds.y_test[: ns.eval_n].to(device)
        self.runs: dict[TrainRecipe, Trained] = {}

    def recipe(self, method: str = "standard", epochs: int = 1, **kw: Any) -> TrainRecipe:
        return TrainRecipe(
            method=method,
            epochs=epochs,
            batch_size=BATCH,
            lr=LR,
            optimizer="adam",
            seed=0,
            train_size=self.ns.train_size,
            **kw,
        )

    def fresh_model(self) -> nn.Module:
        return build_model(ARCH, self.ds.input_shape, self.ds.num_classes, seed=0)

    def train(self, recipe: TrainRecipe, label: str) -> Trained:
        if recipe in self.runs:
            return self.runs[recipe]
        log(f"  training {label} ({recipe.epochs} epochs) …")
        model = self.fresh_model()
        t0 = time.perf_counter()
        hist = fit(model, self.ds, recipe, device=self.device)
        run = Trained(model.eval(), hist, time.perf_counter() - t0)
        log(f"    {run.wall:.0f} s, {run.sec_epoch:.2f} s/epoch")
        self.runs[recipe] = run
        return run

    def robust(self, model: nn.Module, eps: float) -> float:
        """PGD-40 accuracy with 5 restarts on the eval images."""
        attack = PGD(steps=EVAL_STEPS, restarts=EVAL_RESTARTS, random_start=True, seed=0)
        res = attack.run(model, self.x_eval, self.y_eval, eps=eps, norm="linf")
        return float((res.pred == self.y_eval).float().mean())

    def robust_of(self, run: Trained, eps: float) -> float:
        if eps not in run.evals:
            t0 = time.perf_counter()
            run.evals[eps] = self.robust(run.model, eps)
            took = time.perf_counter() - t0
            log(f"    PGD-40×5 at ε={eps:g}: {pct(run.evals[eps])} ({took:.0f} s)")
        return run.evals[eps]

    def clean(self, model: nn.Module) -> float:
        return evaluate(model, self.ds.x_test, self.ds.y_test, device=self.device)[1]

    # The recipes sections share.
    def defended(self, method: str, eps: float) -> TrainRecipe:
        e = self.ns.epochs_of
        if eps >= 0.3 - 1e-9:
            return self.recipe(method, e["eps03"], adv_eps=eps, eps_warmup=e["warmup03"])
        return self.recipe(method, e["eps01"], adv_eps=eps)

    def standard(self) -> TrainRecipe:
        return self.recipe("standard", self.ns.epochs_of["standard"])


# ------------------------------------------------------------------ 1. speed vs ART


class _Logits(nn.Module):
    """ART runs an ``nn.Sequential`` layer by layer and hands back every layer's output;
    its TRADES trainer then takes the *first* layer's output as the logits for its
    accuracy count and fails. Wrapped in a plain module, ART sees one output."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def art_train(b: Bench, method: str, eps: float, epochs: int) -> tuple[nn.Module, list[float]]:
    """Train a fresh small_cnn (robustcore's initial weights) with ART; seconds per epoch."""
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import AdversarialTrainerMadryPGD, AdversarialTrainerTRADESPyTorch
    from art.estimators.classification import PyTorchClassifier

    net = b.fresh_model()
    model = _Logits(net).to(b.device)
    clf = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=LR),
        input_shape=tuple(b.ds.input_shape),
        nb_classes=b.ds.num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if b.device.type == "cuda" else "cpu",
    )
    alpha = 2.5 / STEPS * eps
    n = b.ns.train_size or b.ds.n_train
    x = b.ds.x_train[:n].numpy().astype(np.float32)
    y = b.ds.y_train[:n].numpy()
    if method == "pgd_at":
        trainer = AdversarialTrainerMadryPGD(
            clf, nb_epochs=epochs, batch_size=BATCH, eps=eps, eps_step=alpha, max_iter=STEPS,
            num_random_init=1,
        )  # fmt: skip
        trainer.attack.set_params(batch_size=BATCH)  # its default is 32
    else:
        attack = ProjectedGradientDescent(
            clf, norm=np.inf, eps=eps, eps_step=alpha, max_iter=STEPS, num_random_init=1,
            batch_size=BATCH, verbose=False,
        )  # fmt: skip
        trainer = AdversarialTrainerTRADESPyTorch(clf, attack, beta=6.0)
    np.random.seed(0)
    torch.manual_seed(0)
    seconds = []
    for _ in range(epochs):  # one fit per epoch: the same loop, timed epoch by epoch
        t0 = time.perf_counter()
        trainer.fit(x, y, nb_epochs=1, batch_size=BATCH)
        seconds.append(time.perf_counter() - t0)
    return net.eval(), seconds


def section_speed(b: Bench) -> dict[str, Any]:
    eps = b.ns.speed_eps
    epochs = b.ns.epochs_of["eps01"]
    alpha = 2.5 / STEPS * eps
    common = (
        f"ε={eps:g}, {STEPS} steps of {alpha:.4g}, batch {BATCH}, {n_epochs(epochs)}, Adam {LR:g}"
    )
    rows, checks = [], []
    for method, title in (("pgd_at", "PGD-AT"), ("trades", "TRADES")):
        log(f"[speed] {title}")
        rc = b.train(b.recipe(method, epochs, adv_eps=eps), f"robustcore {title} ε={eps:g}")
        rc_rob, rc_clean = b.robust_of(rc, eps), b.clean(rc.model)
        log(f"  training ART {title} ({epochs} epochs) …")
        net, art_secs = art_train(b, method, eps, epochs)
        art_sec = statistics.median(art_secs)
        log(f"    {sum(art_secs):.0f} s, {art_sec:.2f} s/epoch")
        art_rob, art_clean = b.robust(net, eps), b.clean(net)
        ratio = art_sec / rc.sec_epoch
        fired = bool(rc.history.get("event", pd.Series([""])).astype(bool).any())
        rc_set = f"{common}; random start; watchdog on ({'fired' if fired else 'did not fire'})"
        if method == "pgd_at":
            art_set = (
                f"{common}; AdversarialTrainerMadryPGD, num_random_init=1, inner attack "
                f"batch_size set to {BATCH} (default 32); own data order"
            )
        else:
            rc_set += "; inner PGD on the KL from x + 0.001·N(0, 1), β = 6"
            art_set = (
                f"{common}; AdversarialTrainerTRADESPyTorch, β = 6, inner attack: ART's "
                "ProjectedGradientDescent on the cross-entropy from a uniform random start "
                "(ART's TRADES takes an ART evasion attack, which maximises the classifier's "
                "loss, not the KL); own data order; "
                "model wrapped in a non-Sequential module (ART's TRADES fails on nn.Sequential)"
            )
        ok = ratio >= 2.0 and rc_rob >= art_rob - 0.02
        for lib, sec, rob, cln, settings in (
            ("robustcore", rc.sec_epoch, rc_rob, rc_clean, rc_set),
            ("ART", art_sec, art_rob, art_clean, art_set),
        ):
            rows.append(
                dict(
                    library=lib, method=title, settings=settings, sec_epoch=sec,
                    robust_acc=rob, clean_acc=cln, ratio=ratio if lib == "ART" else None,
                )
            )  # fmt: skip
        checks.append(
            f"{title}: ART {art_sec:.2f} s/epoch ÷ robustcore {rc.sec_epoch:.2f} s/epoch = "
            f"{ratio:.2f}×, robust accuracy {pct(rc_rob)} vs ART {pct(art_rob)} (target: ≥ 2× "
            f"faster at equal or better robust accuracy, within 2 points): {yes(ok)}"
        )
    print(f"\n## 1. Trainer speed vs ART ({DATASET}, {ARCH}, PGD-40×5 on {b.ns.eval_n} images)\n")
    print(
        "| library | method | settings | s / epoch | robust acc (PGD-40×5) | clean acc | "
        "ART s/epoch ÷ robustcore s/epoch |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        print(
            f"| {r['library']} | {r['method']} | {r['settings']} | {r['sec_epoch']:.2f} | "
            f"{pct(r['robust_acc'])} | {pct(r['clean_acc'])} | {ratio} |"
        )
    return {"rows": rows, "checks": checks}


# ------------------------------------------------------------------ 2. passes


def section_passes(b: Bench) -> dict[str, Any]:
    """Adversarial seconds per epoch over (standard seconds per epoch × passes)."""

    def history_of(method: str, label: str) -> tuple[list[float], str]:
        runs = [
            (r, t)
            for r, t in b.runs.items()
            if r.method == method and r.batch_size == BATCH and r.train_size == b.ns.train_size
        ]
        if not runs:
            if "robustness" in b.ns.only:  # train one of section 3's models now
                rec = b.standard() if method == "standard" else b.defended(method, 0.1)
            else:
                kw = {"adv_eps": 0.3} if method != "standard" else {}
                rec = b.recipe(method, b.ns.passes_epochs, **kw)
            runs = [(rec, b.train(rec, f"{label} for the pass count"))]
        secs: list[float] = []
        where = []
        for rec, t in runs:
            s = list(t.history["seconds"])
            secs += s[1:] if len(s) > 1 else s  # the first epoch warms up
            where.append(f"{rec.epochs} ep" + (f" at ε={rec.adv_eps:g}" if rec.adversarial else ""))
        return secs, ", ".join(where)

    log("[passes]")
    std_secs, std_from = history_of("standard", "standard")
    std = statistics.median(std_secs)
    rows, checks = [], []
    rows.append(dict(method="standard", passes=1, sec_epoch=std, ratio=None, source=std_from))
    for method, title, steps in (
        ("fgsm_rs", "FGSM-RS", 1),
        ("pgd_at", "PGD-AT", STEPS),
        ("trades", "TRADES", STEPS),
    ):
        secs, src = history_of(method, title)
        sec = statistics.median(secs)
        ratio = sec / (std * (steps + 1))
        rows.append(dict(method=title, passes=steps + 1, sec_epoch=sec, ratio=ratio, source=src))
        checks.append(
            f"{title}: {sec:.2f} s/epoch ÷ ({std:.2f} s × {steps + 1}) = {ratio:.2f} "
            f"(target ≤ 1.15): {yes(ratio <= 1.15)}"
        )
    n = b.ns.train_size or b.ds.n_train
    print(
        f"\n## 2. Cost per epoch in training passes ({n} images, batch {BATCH}; median s/epoch, "
        "the first epoch of a run left out when it has more)\n"
    )
    print("| method | passes per batch | s / epoch | ÷ (standard × passes) | epochs timed |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"| {r['method']} | {r['passes']} | {r['sec_epoch']:.2f} | {ratio} | {r['source']} |")
    return {"rows": rows, "checks": checks}


# ------------------------------------------------------------------ 3. robustness


def section_robustness(b: Bench) -> dict[str, Any]:
    log("[robustness]")
    std = b.train(b.standard(), "standard")
    rows, checks = [], []
    und = {eps: b.robust_of(std, eps) for eps in (0.3, 0.1)}
    std_clean = b.clean(std.model)
    for eps in (0.3, 0.1):
        rows.append(
            dict(
                method="standard (undefended)", eps=eps, epochs=std.history.shape[0],
                warmup=0, robust_acc=und[eps], clean_acc=std_clean, delta=None,
                train_seconds=std.train_seconds, wall=std.wall, target="—",
            )
        )  # fmt: skip
        for method, title in (("pgd_at", "PGD-AT"), ("trades", "TRADES"), ("fgsm_rs", "FGSM-RS")):
            rec = b.defended(method, eps)
            log(f"  {title} ε={eps:g}")
            run = b.train(rec, f"{title} ε={eps:g}")
            rob, cln = b.robust_of(run, eps), b.clean(run.model)
            delta = rob - und[eps]
            if eps >= 0.3 - 1e-9:
                ok = rob >= 0.5 and delta >= 0.4
                target = f"≥ 50 % and ≥ 40 points above undefended: {yes(ok)}"
            else:
                ok = rob >= 0.85
                target = f"≥ 85 %: {yes(ok)}"
            kept = run.history.loc[run.history["kept"].astype(bool), "epoch"]
            event = str(run.history["event"].iloc[-1]) if "event" in run.history else ""
            rows.append(
                dict(
                    method=title, eps=eps, epochs=rec.epochs, warmup=rec.eps_warmup,
                    robust_acc=rob, clean_acc=cln, delta=delta, train_seconds=run.train_seconds,
                    wall=run.wall, target=target,
                    kept=int(kept.iloc[0]) if len(kept) else None, event=event,
                )
            )  # fmt: skip
            checks.append(
                f"{title} at ε={eps:g}: PGD-40×5 accuracy {pct(rob)} ({100 * delta:+.1f} points "
                f"vs undefended {pct(und[eps])}), target {target}"
                + (f" — watchdog: {event}" if event else "")
            )
    for eps in (0.3, 0.1):
        by = {r["method"]: r for r in rows if r["eps"] == eps}
        fg, pgd = by["FGSM-RS"], by["PGD-AT"]
        gap = fg["robust_acc"] - pgd["robust_acc"]
        share = fg["train_seconds"] / max(pgd["train_seconds"], 1e-9)
        ok = gap >= -FGSM_GAP and share < 1.0
        checks.append(
            f"FGSM-RS vs PGD-AT at ε={eps:g}: robust accuracy {pct(fg['robust_acc'])} vs "
            f"{pct(pgd['robust_acc'])} ({100 * gap:+.1f} points) in {share:.2f}× PGD-AT's "
            f"training time (target: within {100 * FGSM_GAP:.0f} points at a fraction of "
            f"the time): {yes(ok)}"
        )
    n = b.ns.train_size or b.ds.n_train
    print(
        f"\n## 3. Robustness at the papers' settings ({DATASET}: {n} training images, "
        f"{ARCH}, batch {BATCH}; PGD-40×5 at the training ε on {b.ns.eval_n} test images)\n"
    )
    print(
        "| method | ε | epochs (ε warm-up) | robust acc | vs undefended | clean acc | "
        "training s (s/epoch) | wall s | target |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        delta = "—" if r["delta"] is None else f"{100 * r['delta']:+.1f} pts"
        ep = f"{r['epochs']}" + (f" ({r['warmup']})" if r["warmup"] else "")
        if r.get("kept") is not None and r["kept"] != r["epochs"]:
            ep += f", kept epoch {r['kept']}"
        print(
            f"| {r['method']} | {r['eps']:g} | {ep} | {pct(r['robust_acc'])} | {delta} | "
            f"{pct(r['clean_acc'])} | {r['train_seconds']:.0f} "
            f"({r['train_seconds'] / max(1, r['epochs']):.1f}) | {r['wall']:.0f} | {r['target']} |"
        )
    print(
        "\nFor context (full MNIST, 60,000 images, larger networks, far longer training): "
        "Madry et al. 2018 report 89 % and Zhang et al. 2019 (TRADES) 96 % robust accuracy "
        "at ε = 0.3."
    )
    return {"rows": rows, "checks": checks}


# ------------------------------------------------------------------ 4. watchdog


def section_watchdog(b: Bench) -> dict[str, Any]:
    log("[watchdog]")
    eps = b.ns.watch_eps
    epochs = b.ns.epochs_of["watchdog"]
    runs = {}
    for on in (True, False):
        rec = b.recipe(
            "fgsm_rs", epochs, adv_eps=eps, adv_random_start=False, adv_step_size=2.0,
            watchdog=on,
        )  # fmt: skip
        runs[on] = b.train(rec, f"FGSM (no random start, step 2ε) ε={eps:g} watchdog {on}")
    finals = {on: b.robust_of(run, eps) for on, run in runs.items()}
    h_on, h_off = runs[True].history, runs[False].history
    print(
        f"\n## 4. Watchdog: FGSM without random start, step 2 ε, ε = {eps:g}, {n_epochs(epochs)} "
        f"(on / off: with / without the watchdog; watch acc: PGD-10 accuracy on the {WATCH_N} "
        "watched training images; test PGD-10: the monitor's held-out images)\n"
    )
    print("| epoch | ε | watch acc (on) | kept (on) | watch acc (off) | test PGD-10 (off) |")
    print("|---:|---:|---:|---|---:|---:|")
    for _, r in h_off.iterrows():
        e = int(r["epoch"])
        on_row = h_on[h_on["epoch"] == e]
        w_on = pct(float(on_row["watch_acc"].iloc[0])) if len(on_row) else "(stopped)"
        kept = "kept" if len(on_row) and bool(on_row["kept"].iloc[0]) else ""
        print(
            f"| {e} | {r['eps']:g} | {w_on} | {kept} | {pct(r['watch_acc'])} | "
            f"{pct(r['robust_acc'])} |"
        )
    event = str(h_on["event"].iloc[-1]) if "event" in h_on else ""
    kept_on = int(h_on.loc[h_on["kept"].astype(bool), "epoch"].iloc[0])
    stopped = f"stopped after epoch {int(h_on['epoch'].iloc[-1])}" if event else "did not stop"
    lines = [
        f"watchdog on: {stopped}, kept epoch {kept_on}; final PGD-40×5 accuracy "
        f"{pct(finals[True])}" + (f" — {event}" if event else ""),
        f"watchdog off: trained all {n_epochs(len(h_off))}; final PGD-40×5 accuracy "
        f"{pct(finals[False])}",
    ]
    collapsed = float(h_off["watch_acc"].max()) - float(h_off["watch_acc"].iloc[-1]) > 0.2
    lines.append(
        "catastrophic overfitting without the watchdog (watch accuracy fell more than 20 points "
        f"below its best): {'yes' if collapsed else 'no — this setting did not provoke it'}"
    )
    print()
    for line in lines:
        print(f"- {line}")
    return {
        "epochs_on": h_on.to_dict("records"),
        "epochs_off": h_off.to_dict("records"),
        "final_on": finals[True],
        "final_off": finals[False],
        "checks": lines,
    }


# ------------------------------------------------------------------ 5. distillation


def section_distillation(b: Bench) -> dict[str, Any]:
    log("[distillation]")
    n = min(DISTIL_IMAGES, b.ns.eval_n)
    x, y = b.x_eval[:n], b.y_eval[:n]
    epochs = b.ns.epochs_of["distillation"]
    pgd = PGD(steps=EVAL_STEPS, random_start=True, seed=0)
    rows = []
    for t in TEMPERATURES:
        run = b.train(b.recipe("distillation", epochs, temperature=t), f"distillation T={t:g}")
        model = run.model
        naive = fooled_rate(model, x, y, pgd.run(model, x, y, eps=0.3, norm="linf").x_adv)
        view = LogitsDividedBy(model, t)
        adaptive = fooled_rate(model, x, y, pgd.run(view, x, y, eps=0.3, norm="linf").x_adv)
        t0 = time.perf_counter()
        cw = fooled_rate(model, x, y, CarliniWagnerL2().run(model, x, y).x_adv)
        took = time.perf_counter() - t0
        log(f"    naive {pct(naive)}, adaptive {pct(adaptive)}, C&W {pct(cw)} (C&W {took:.0f} s)")
        rows.append(
            dict(
                temperature=t, clean_acc=b.clean(model), naive_pgd=naive, adaptive_pgd=adaptive,
                cw=cw, train_seconds=run.train_seconds,
            )
        )  # fmt: skip
    print(
        f"\n## 5. Defensive distillation ({n_epochs(epochs)} teacher + {epochs} student; attack "
        f"success = share of the correctly classified images among the first {n} test images "
        "that the attack makes wrong; PGD-40 at ε = 0.3, C&W L2 default settings)\n"
    )
    print(
        "| T | clean acc | naive PGD success | adaptive PGD (logits / T) success | "
        "C&W L2 success | training s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['temperature']:g} | {pct(r['clean_acc'])} | {pct(r['naive_pgd'])} | "
            f"{pct(r['adaptive_pgd'])} | {pct(r['cw'])} | {r['train_seconds']:.0f} |"
        )
    by_t = {r["temperature"]: r for r in rows}
    lo, hi = by_t[TEMPERATURES[0]], by_t[TEMPERATURES[-1]]
    falls = hi["naive_pgd"] <= 0.5 * lo["naive_pgd"]
    adaptive_ok = hi["adaptive_pgd"] >= 0.95
    t_hi, t_lo = f"T={hi['temperature']:g}", f"T={lo['temperature']:g}"
    checks = [
        f"{t_hi}: naive PGD success {pct(hi['naive_pgd'])} vs {pct(lo['naive_pgd'])} at {t_lo} "
        f"(target: falls to at most half): {yes(falls)}",
        f"{t_hi}: adaptive PGD success {pct(hi['adaptive_pgd'])} (target ≥ 95 %): "
        f"{yes(adaptive_ok)}",
    ]
    print()
    for line in checks:
        print(f"- {line}")
    return {"rows": rows, "checks": checks}


# ------------------------------------------------------------------ main

RUNNERS = {
    "speed": section_speed,
    "passes": section_passes,
    "robustness": section_robustness,
    "watchdog": section_watchdog,
    "distillation": section_distillation,
}


def main() -> None:
    epochs_help = ", ".join(f"{k} {v}" for k, v in EPOCHS.items())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument(
        "--epochs", type=int, default=None,
        help=f"epochs of every training (default per section: {epochs_help}; the ε warm-up "
        "is then at most a third of them)",
    )  # fmt: skip
    ap.add_argument("--eval-n", type=int, default=500, help="test images for PGD-40×5")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--speed-eps", type=float, default=0.1, help="ε of section 1 (speed)")
    ap.add_argument("--watch-eps", type=float, default=0.2, help="ε of section 4 (watchdog)")
    ap.add_argument(
        "--passes-epochs", type=int, default=3,
        help="epochs per method for section 2 when no other section trained that method",
    )  # fmt: skip
    ap.add_argument("--train-size", type=int, default=0, help="training images (0: all 4,000)")
    ap.add_argument(
        "--quick", action="store_true",
        help="smoke run: 500 training images, 1 epoch, --eval-n 50 (numbers meaningless)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, default=None, help="write the rows and checks here")
    ns = ap.parse_args()
    if ns.quick:
        ns.train_size, ns.eval_n, ns.epochs, ns.passes_epochs = 500, 50, 1, 1
    if ns.epochs is not None and ns.epochs < 1 or ns.eval_n < 1 or ns.passes_epochs < 1:
        ap.error("--epochs, --eval-n and --passes-epochs must be at least 1")
    ns.epochs_of = dict(EPOCHS)
    if ns.epochs is not None:
        ns.epochs_of = {k: ns.epochs for k in EPOCHS}
        ns.epochs_of["warmup03"] = min(EPOCHS["warmup03"], ns.epochs // 3)

    threads = configure_threads(ns.threads)
    device = get_device()
    b = Bench(ns, device)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python " + shlex.join(["bench/adversarial_training.py", *sys.argv[1:]])
    header = (
        f"# Adversarial training — {stamp} — `{command}` — {DATASET} / {ARCH} on {device}, "
        f"torch {torch.__version__}, {threads} torch threads, {os.cpu_count()} CPUs, load "
        f"average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(header, flush=True)
    e = ns.epochs_of
    print(
        f"\nEpochs: ε = 0.3 trainings {e['eps03']} (ε warm-up {e['warmup03']}), ε = 0.1 "
        f"trainings and ART {e['eps01']}, undefended {e['standard']}, watchdog {e['watchdog']}, "
        f"distillation {e['distillation']} + {e['distillation']}."
    )
    results: dict[str, Any] = {}
    t_all = time.perf_counter()
    for name in (s for s in SECTIONS if s in ns.only):
        t0 = time.perf_counter()
        results[name] = RUNNERS[name](b)
        results[name]["seconds"] = time.perf_counter() - t0
        print(f"\n- section wall time: {results[name]['seconds']:.0f} s", flush=True)
    print(
        f"\nTotal wall time: {time.perf_counter() - t_all:.0f} s; load average after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("\n## Targets\n")
    for name in SECTIONS:
        for line in results.get(name, {}).get("checks", []):
            print(f"- {name}: {line}")
    if ns.json:
        write_json(ns.json, ns, header, device, threads, sections=results)


if __name__ == "__main__":
    main()
