# ruff: noqa: E401, E402, E701, E702, E731, B023, F403, F405
"""Numbers for the README: poisoning attacks and sanitization on mnist5k with the default
model recipe (small_cnn, 5 epochs, Adam 1e-3, batch 64, seed 0). Run:
    ROBUSTCORE_HOME=$(mktemp -d) python bench/poisoning.py [--only attacks|sanitize]
"""

import argparse
import datetime
import os
import time

os.environ.setdefault("ROBUSTCORE_DEVICE", "cpu")
import pandas as pd

from robustcore.attacks.poisoning import *
from robustcore.data import load
from robustcore.defenses.sanitize import *
from robustcore.device import configure_threads
from robustcore.models import TrainRecipe

ap = argparse.ArgumentParser()
ap.add_argument("--only", choices=("attacks", "sanitize"), default=None)
ONLY = ap.parse_args().only
configure_threads()
pd.set_option("display.width", 200)
print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · load {os.getloadavg()}", flush=True)
ds = load("mnist5k")
rec = TrainRecipe()
A = "small_cnn"
T = Trigger()


def show(title, df, cols):
    print(f"\n### {title}\n")
    print(df[cols].round(3).to_string(index=False), flush=True)


t0 = time.time()


def attacks_part():
    r = badnets_sweep(ds, A, rec, T, BadNets(), values=[0, 0.002, 0.005, 0.01, 0.03, 0.05, 0.1])
    show(
        "BadNets all-to-one, checkerboard 8x8, poison rate",
        r.table,
        ["poison_rate", "n_poison", "clean_accuracy", "attack_success"],
    )
    r = badnets_sweep(
        ds, A, rec, Trigger(pattern="pixel"), BadNets(), values=[0.01, 0.03, 0.05, 0.1]
    )
    show(
        "BadNets all-to-one, single pixel",
        r.table,
        ["poison_rate", "n_poison", "clean_accuracy", "attack_success"],
    )
    r = badnets_sweep(ds, A, rec, T, BadNets(mode="all_to_all"), values=[0.03, 0.1])
    show(
        "BadNets all-to-all (i -> i+1)",
        r.table,
        ["poison_rate", "n_poison", "clean_accuracy", "attack_success"],
    )
    r = badnets_sweep(
        ds, A, rec, T, BadNets(poison_rate=0.01), sweep="trigger_size", values=[1, 2, 4, 8]
    )
    show("BadNets 1 %, trigger size", r.table, ["trigger_size", "clean_accuracy", "attack_success"])
    r = badnets_sweep(ds, A, rec, T, BadNets(), sweep="blend_alpha", values=[0.02, 0.05, 0.1, 0.2])
    show(
        "BadNets 3 %, blended noise trigger, noise level alpha",
        r.table,
        ["blend_alpha", "clean_accuracy", "attack_success"],
    )
    r = badnets_sweep(ds, A, rec, T, BadNets(), sweep="noise_std", values=[0, 0.1, 0.3, 0.5])
    show(
        "BadNets 3 %, checkerboard 8x8, training noise sigma",
        r.table,
        ["noise_std", "clean_accuracy", "attack_success"],
    )
    r = badnets_sweep(
        ds,
        A,
        rec,
        Trigger(pattern="blend", alpha=0.1),
        BadNets(),
        sweep="noise_std",
        values=[0, 0.1, 0.3, 0.5],
    )
    show(
        "BadNets 3 %, blend alpha 0.1, training noise sigma",
        r.table,
        ["noise_std", "clean_accuracy", "attack_success"],
    )
    r = hidden_trigger_sweep(ds, A, rec, T, HiddenTrigger(), eps_values=[0.1, 0.2, 0.3, 0.4])
    show(
        "Hidden trigger 1 -> 0, head retrained (paper setting)",
        r.table,
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
    r = hidden_trigger_sweep(ds, A, rec, T, HiddenTrigger(setting="full"), eps_values=[0.3, 0.4])
    show(
        "Hidden trigger 1 -> 0, full retraining",
        r.table,
        ["eps", "clean_accuracy", "attack_success", "baseline_attack_success"],
    )
    r = label_flip_sweep(ds, A, rec, LabelFlip(), rates=[0, 0.2, 0.4, 0.6, 0.8])
    show("Label flipping, random", r.table, ["rate", "n_flipped", "accuracy"])
    r = label_flip_sweep(ds, A, rec, LabelFlip(mode="targeted"), rates=[0, 0.25, 0.5, 0.75])
    show(
        "Label flipping, targeted 7 -> 1",
        r.table,
        ["rate", "n_flipped", "accuracy", "class_a_accuracy", "a_predicted_as_b"],
    )


def sanitize_part():
    rows = []
    for name, trig, cfg in [
        ("all-to-one 3 %", T, BadNets()),
        ("all-to-one 1 %", T, BadNets(poison_rate=0.01)),
        ("all-to-one 10 %", T, BadNets(poison_rate=0.1)),
        ("all-to-all 10 %", T, BadNets(mode="all_to_all", poison_rate=0.1)),
    ]:
        p = poison_badnets(ds, trig, cfg)
        e = train_poisoned(p, A, rec)
        ev = lambda m: backdoor_metrics(m, ds, trig, target_class=cfg.target_class, mode=cfg.mode)
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


if ONLY in (None, "attacks"):
    attacks_part()
if ONLY in (None, "sanitize"):
    sanitize_part()
print(f"\ntotal {time.time() - t0:.0f} s, load {os.getloadavg()}")
