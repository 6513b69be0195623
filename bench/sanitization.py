# ruff: noqa: E401, E402, E701, E702, E731, B023, F403, F405
"""Numbers for the README: poisoning attacks and sanitization on mnist5k with the default
model recipe (small_cnn, 5 epochs, Adam 1e-3, batch 64, seed 0). Run:
    ROBUSTCORE_HOME=$(mktemp -d) python bench/poisoning.py
"""

import os
import time

os.environ.setdefault("ROBUSTCORE_DEVICE", "cpu")
import pandas as pd

from robustcore.attacks.poisoning import *
from robustcore.data import load
from robustcore.defenses.sanitize import *
from robustcore.device import configure_threads
from robustcore.models import TrainRecipe

configure_threads()
pd.set_option("display.width", 200)
ds = load("mnist5k")
rec = TrainRecipe()
A = "small_cnn"
T = Trigger()


def show(title, df, cols):
    print(f"\n### {title}\n")
    print(df[cols].round(3).to_string(index=False), flush=True)


t0 = time.time()
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
                "ASR before": before["attack_success"],
                "ASR after": out["after"]["attack_success"],
                "clean before": before["clean_accuracy"],
                "clean after": out["after"]["clean_accuracy"],
            }
        )
        print(rows[-1], flush=True)
print("\n### Sanitization\n")
print(pd.DataFrame(rows).round(3).to_string(index=False))
print(f"\ntotal {time.time() - t0:.0f} s, load {os.getloadavg()}")
