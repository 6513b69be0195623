# ruff: noqa: E401, E402, E701, E702, E731, B023, F403, F405
"""Numbers for the README: poisoning attacks and sanitization on mnist5k with the default
model recipe (small_cnn, 5 epochs, Adam 1e-3, batch 64, seed 0). Run:
    ROBUSTCORE_HOME=$(mktemp -d) python bench/poisoning.py [--only attacks|sanitize|page]
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

os.environ.setdefault("ROBUSTCORE_DEVICE", "cpu")
import pandas as pd

from robustcore.attacks.poisoning import *
from robustcore.data import load
from robustcore.defenses.sanitize import *
from robustcore.device import configure_threads
from robustcore.experiments import Target
from robustcore.experiments.backdoors import Backdoors
from robustcore.experiments.hidden_trigger import HiddenTriggerBackdoor
from robustcore.experiments.label_flipping import LabelFlipping
from robustcore.models import TrainRecipe
from robustcore.runs import get_runner

ap = argparse.ArgumentParser()
ap.add_argument("--only", choices=("attacks", "sanitize", "page"), default=None)
ONLY = ap.parse_args().only
configure_threads()
pd.set_option("display.width", 200)
print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · load {os.getloadavg()}", flush=True)
ds = load("mnist5k")
rec = TrainRecipe()
A = "small_cnn"
T = Trigger()
TARGET = Target.zoo(A, rec)  # the victims are trained like the default model


def run(exp):
    """The experiment on the default model, through the runner: its typed result."""
    job = get_runner().submit(exp.on(TARGET), ds).wait()
    if job.state != "done":
        raise SystemExit(f"{exp.name}: {job.state}: {job.error}")
    return type(exp).result(job.result)


def show(title, df, cols):
    print(f"\n### {title}\n")
    print(df[cols].round(3).to_string(index=False), flush=True)


t0 = time.time()


def attacks_part():
    r = run(Backdoors(poison_rates=(0, 0.002, 0.005, 0.01, 0.03, 0.05, 0.1)))
    show(
        "BadNets all-to-one, checkerboard 8x8, poison rate",
        r.sweep(),
        ["poison_rate", "n_poison", "clean_accuracy", "attack_success"],
    )
    r = run(Backdoors(trigger=Trigger(pattern="pixel"), poison_rates=(0.01, 0.03, 0.05, 0.1)))
    show(
        "BadNets all-to-one, single pixel",
        r.sweep(),
        ["poison_rate", "n_poison", "clean_accuracy", "attack_success"],
    )
    r = run(Backdoors(attack=BadNets(mode="all_to_all"), poison_rates=(0.03, 0.1)))
    show(
        "BadNets all-to-all (i -> i+1)",
        r.sweep(),
        ["poison_rate", "n_poison", "clean_accuracy", "attack_success"],
    )
    r = run(Backdoors(sweep="trigger_size", trigger_sizes=(1, 2, 4, 8), poison_rate=0.01))
    show(
        "BadNets 1 %, trigger size", r.sweep(), ["trigger_size", "clean_accuracy", "attack_success"]
    )
    r = run(Backdoors(sweep="blend_alpha", blend_alphas=(0.02, 0.05, 0.1, 0.2)))
    show(
        "BadNets 3 %, blended noise trigger, noise level alpha",
        r.sweep(),
        ["blend_alpha", "clean_accuracy", "attack_success"],
    )
    r = run(Backdoors(sweep="noise_std", noise_stds=(0, 0.1, 0.3, 0.5)))
    show(
        "BadNets 3 %, checkerboard 8x8, training noise sigma",
        r.sweep(),
        ["noise_std", "clean_accuracy", "attack_success"],
    )
    r = run(
        Backdoors(
            trigger=Trigger(pattern="blend", alpha=0.1),
            sweep="noise_std",
            noise_stds=(0, 0.1, 0.3, 0.5),
        )
    )
    show(
        "BadNets 3 %, blend alpha 0.1, training noise sigma",
        r.sweep(),
        ["noise_std", "clean_accuracy", "attack_success"],
    )
    r = run(HiddenTriggerBackdoor(eps=(0.1, 0.2, 0.3, 0.4)))
    show(
        "Hidden trigger 1 -> 0, head retrained (paper setting)",
        r.sweep(),
        [
            "eps",
            "n_poison",
            "clean_accuracy",
            "attack_success",
            "baseline_attack_success",
            "feature_distance_before",
            "feature_distance_after",
        ],
    )
    r = run(HiddenTriggerBackdoor(attack=HiddenTrigger(setting="full"), eps=(0.3, 0.4)))
    show(
        "Hidden trigger 1 -> 0, full retraining",
        r.sweep(),
        ["eps", "clean_accuracy", "attack_success", "baseline_attack_success"],
    )
    r = run(LabelFlipping(rates=(0, 0.2, 0.4, 0.6, 0.8)))
    show("Label flipping, random", r.sweep(), ["rate", "n_flipped", "accuracy"])
    r = run(LabelFlipping(attack=LabelFlip(mode="targeted"), rates=(0, 0.25, 0.5, 0.75)))
    show(
        "Label flipping, targeted 7 -> 1",
        r.sweep(),
        ["rate", "n_flipped", "accuracy", "class_a_accuracy", "a_predicted_as_b"],
    )


def sanitize_part():
    rows = []
    for name, trig, cfg, rate in [
        ("all-to-one 3 %", T, BadNets(), 0.03),
        ("all-to-one 1 %", T, BadNets(), 0.01),
        ("all-to-one 10 %", T, BadNets(), 0.1),
        ("all-to-all 10 %", T, BadNets(mode="all_to_all"), 0.1),
    ]:
        p = poison_badnets(ds, trig, cfg, poison_rate=rate, target_class=0)
        e = train_poisoned(p, A, rec)
        ev = lambda m: backdoor_metrics(m, ds, trig, target_class=0, mode=cfg.mode)
        before = ev(e.model)
        share = (
            float(p.is_poison[p.dataset.y_train == 0].float().mean())
            if cfg.mode == "all_to_one"
            else 0.1
        )
        for det in [
            ActivationClustering(),
            ActivationClustering(reduce="ica"),
            ActivationClustering(reduce="pca"),
            SpectralSignatures(expected_rate=round(max(share, 0.05), 2)),
        ]:
            out = sanitize_and_retrain(p, e.model, A, rec, det, evaluate=ev)
            s = out["scores"]
            rows.append(
                {
                    "attack": name,
                    "poison share of label": round(share, 3),
                    "detector": det.name
                    + ("" if det.name != "activation_clustering" else f" ({det.reduce})")
                    + (f" eps={det.expected_rate}" if det.name == "spectral_signatures" else ""),
                    "precision": s["precision"],
                    "recall": s["recall"],
                    "marginal": ", ".join(
                        f"{r['class']}: {r['decision']}"
                        for _, r in out["detection"].per_class.iterrows()
                        if str(r.get("decision", "")).startswith("marginal")
                    ),
                    "ASR before": before["attack_success"],
                    "ASR after": out["after"]["attack_success"],
                    "clean before": before["clean_accuracy"],
                    "clean after": out["after"]["clean_accuracy"],
                }
            )
            print(rows[-1], flush=True)
    print("\n### Sanitization\n")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def page_part():
    """The Poisoning sanitization page's default run (BadNets all-to-one 3 %, activation
    clustering, retraining) through its experiment, with the page's seeds (0: the BadNets
    poison choice and the default model's recipe) and two other pairs."""
    from robustcore.experiments.poisoning_sanitization import PoisoningSanitization

    rows = []
    for s in (0, 1, 2):
        target = Target.zoo(A, TrainRecipe(seed=s))
        job = get_runner().submit(PoisoningSanitization(attack=BadNets(seed=s)).on(target), ds)
        job.wait()
        if job.state != "done":
            raise SystemExit(f"poisoning_sanitization seed {s}: {job.state}: {job.error}")
        r = PoisoningSanitization.result(job.result)
        marginal = r.marginal_decisions()
        rows.append(
            {
                "seed (BadNets, recipe)": s,
                "poisons": r.n_poison,
                "flagged": r.n_flagged,
                "precision": r.precision,
                "recall": r.recall,
                "marginal": len(marginal),
                "ASR before": r.before_attack_success,
                "ASR after": r.after_attack_success,
                "clean before": r.before_clean_accuracy,
                "clean after": r.after_clean_accuracy,
            }
        )
        print(rows[-1], flush=True)
    print("\n### Poisoning sanitization page, default run, three seeds\n")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if ONLY in (None, "attacks"):
    attacks_part()
if ONLY in (None, "sanitize"):
    sanitize_part()
if ONLY in (None, "page"):
    page_part()
print(f"\ntotal {time.time() - t0:.0f} s, load {os.getloadavg()}")
