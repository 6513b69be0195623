"""Input preprocessing and feature squeezing on mnist5k: the issue's targets against the
papers (Xu et al. 2018; He et al. 2017; Athalye et al. 2018).

On the default ``small_cnn`` (5 epochs, trained by the zoo and not timed) the
``input_preprocessing`` experiment runs with 1-bit depth + the 2×2 median as both the
defense and the feature squeezers (Xu et al.'s MNIST configuration), ε = 0, 0.1, 0.2, 0.3,
PGD-40 (early stop, the page's), on ``--n`` seeded test images; the threshold is set for
5 % FPR on the other ``--calibration`` clean test images; C&W L2 and the adaptive attacker
on the first ``--n-attack`` images. Printed:

1. the issue's three targets, met or MISSED: feature squeezing detects ≥ 90 % of the naive
   attacker's PGD and C&W examples at 5 % FPR (Xu et al.: about 98 %), the adaptive
   attacker brings detection below 10 % (He et al. 2017), BPDA PGD at ε = 0.3 through
   bit depth + median leaves at most 5 % accuracy (Athalye et al.: 0 %);
2. the detection per attack (also PGD-40 without early stop, Xu et al.'s BIM, its last
   iterate), with AUC, TPR at 1 % and 5 % FPR read off the ROC and the adaptive
   attacker's success and L2;
3. accuracy against ε of each line of the page's chart;
4. what is behind the BPDA number: a stronger BPDA (``--strong-steps`` steps ×
   ``--strong-restarts`` restarts) at ε = 0.3, and naive / BPDA PGD-40 at ε = 0.3 for bit
   depths 1-4 with the 2×2 median, with the share of pixels a 1-bit depth lets ε move
   across its threshold;

with the date, the command, the machine and its load average before and after. Exits 1
when a target is missed.

    python bench/input_preprocessing.py [--n 500] [--calibration 500] [--n-attack 200]
        [--strong-steps 100] [--strong-restarts 5] [--threads N] [--home DIR]

About 8 min on the 2-core CPU at one thread from an empty home.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import cpu_name, load_average  # noqa: E402

DETECT_TARGET = 0.90
ADAPTIVE_TARGET = 0.10
BPDA_TARGET = 0.05
EPS = 0.3


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="test images attacked (default 500)")
    ap.add_argument("--calibration", type=int, default=500, help="clean threshold images")
    ap.add_argument("--n-attack", type=int, default=200, help="images for C&W and adaptive")
    ap.add_argument("--strong-steps", type=int, default=100, help="strong BPDA's PGD steps")
    ap.add_argument("--strong-restarts", type=int, default=5, help="strong BPDA's restarts")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: app's)")
    ap.add_argument("--home", type=Path, default=None, help="ROBUSTCORE_HOME (default: new)")
    ns = ap.parse_args()
    if ns.threads is not None and ns.threads < 1:
        ap.error("--threads must be at least 1")
    home = ns.home or Path(tempfile.mkdtemp(prefix="robustcore-preprocessing-"))
    os.environ["ROBUSTCORE_HOME"] = str(home)
    try:
        import torch

        from robustcore.attacks.evasion import PGD, Goal
        from robustcore.data import load
        from robustcore.defenses.preprocessing import Preprocessing
        from robustcore.defenses.squeezing import (
            FeatureSqueezing,
            SqueezingDetector,
            detection_metrics,
        )
        from robustcore.device import configure_threads, get_device
        from robustcore.evaluation.sweeps import attack_in_batches
        from robustcore.experiments import Target
        from robustcore.experiments.input_preprocessing import (
            BPDA,
            DETECT_ADAPTIVE,
            DETECT_CW,
            DETECT_PGD,
            NAIVE,
            InputPreprocessing,
        )
        from robustcore.models import TrainRecipe, train_entry
        from robustcore.runs import get_runner

        threads = configure_threads(ns.threads)
        ds = load("mnist5k")
        if ns.n + ns.calibration > ds.n_test:
            ap.error(f"--n + --calibration must be at most {ds.n_test} (the test images)")
        target = Target.zoo("small_cnn", TrainRecipe())
        print(f"  training {target.describe()} (not timed)…", file=sys.stderr)
        model = train_entry("small_cnn", ds, TrainRecipe()).model
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"> Input preprocessing — {stamp} — "
            f"`{shlex.join(['python', 'bench/input_preprocessing.py', *sys.argv[1:]])}` — "
            f"mnist5k / {target.describe()} on {get_device()} ({cpu_name()}), torch "
            f"{torch.__version__}, {threads} torch threads, {os.cpu_count()} CPUs; load "
            f"average before: {load_average()}"
        )
        print()
        exp = InputPreprocessing.for_dataset(
            ds,
            defense={"bits": 1, "median": 2},
            squeeze={"bits": 1, "median": 2, "fpr": 0.05},
            eps=(0.0, 0.1, 0.2, EPS),
            n=ns.n,
            n_calibration=ns.calibration,
            n_cw=ns.n_attack,
            n_adaptive=ns.n_attack,
        ).on(target)
        est = exp.estimate(ds)
        print("  the experiment…", file=sys.stderr)
        t0 = time.perf_counter()
        job = get_runner().submit(exp, ds).wait()
        seconds = time.perf_counter() - t0
        if job.state != "done":
            print(f"error: {job.state}: {job.error}", file=sys.stderr)
            sys.exit(2)
        res = InputPreprocessing.result(job.result)
        det_pgd = res.detection_of(DETECT_PGD)
        det_cw = res.detection_of(DETECT_CW)
        det_ad = res.detection_of(DETECT_ADAPTIVE)
        bpda = res.accuracy_at(BPDA, EPS)
        checks = [
            (
                "feature squeezing detects naive PGD (ε = 0.3) at 5 % FPR",
                f"≥ {DETECT_TARGET:.0%}",
                det_pgd,
                det_pgd >= DETECT_TARGET,
                "Xu et al. 2018: about 98 % on MNIST",
            ),
            (
                "feature squeezing detects naive C&W L2 at 5 % FPR",
                f"≥ {DETECT_TARGET:.0%}",
                det_cw,
                det_cw >= DETECT_TARGET,
                "Xu et al. 2018: about 98 % on MNIST",
            ),
            (
                "adaptive attacker's detection rate",
                f"< {ADAPTIVE_TARGET:.0%}",
                det_ad,
                det_ad < ADAPTIVE_TARGET,
                "He et al. 2017: squeezing evaded",
            ),
            (
                "BPDA PGD-40 accuracy at ε = 0.3 through 1-bit depth + 2×2 median",
                f"≤ {BPDA_TARGET:.0%}",
                bpda,
                bpda <= BPDA_TARGET,
                "Athalye et al. 2018: 0 % (ImageNet transforms)",
            ),
        ]
        print(
            f"Defense and squeezers: {res.defense}; threshold {res.threshold:.3f} (L1) set on "
            f"{res.n_calibration} held-out clean test images for {res.target_fpr:.0%} FPR, "
            f"flagging {res.clean_fpr:.1%} of the {res.n} clean evaluation images; clean "
            f"accuracy {res.undefended_clean:.1%} undefended, {res.defended_clean:.1%} behind "
            f"the transforms. Experiment: {seconds:.0f} s (estimate "
            f"{est.seconds if est else float('nan'):.0f} s)."
        )
        print()
        print("| target | bound | measured | met | paper |")
        print("|---|---|---:|---|---|")
        missed = False
        for name, bound, value, ok, paper in checks:
            missed |= not ok
            print(f"| {name} | {bound} | {value:.1%} | {_met(ok)} | {paper} |")
        print()

        # PGD-40 without early stop (Xu et al.'s BIM: every step, the last iterate).
        device = next(model.parameters()).device
        bounds = (ds.bounds[0].to(device), ds.bounds[1].to(device))
        goal = Goal(bounds=bounds)
        from robustcore.evaluation.inputs import select_inputs

        order = select_inputs(ds, ds.n_test, exp.seed)
        x = ds.x_test[order[: ns.n]].to(device)
        y = ds.y_test[order[: ns.n]].to(device)
        det = SqueezingDetector(model, FeatureSqueezing(bits=1, median=2), bounds=bounds)
        tau = det.calibrate(ds.x_test[order[ns.n : ns.n + ns.calibration]].to(device))
        print("  PGD-40 without early stop…", file=sys.stderr)
        last = attack_in_batches(
            PGD(steps=40), model, x, y, eps=EPS, norm="linf", goal=goal, batch_size=512
        )
        with torch.inference_mode():
            correct = model(x).argmax(1) == y
        fooled = correct & (last.pred != y)
        m = detection_metrics(det.scores(x), det.scores(last.x_adv)[fooled], tau)
        print(
            "Detection per attack (clean evaluation images against the adversarial examples "
            "that fool the model; detected: at the calibrated threshold; success: fooled and "
            "not flagged, of the images attacked that the model had right):"
        )
        print()
        print(
            "| attack | adversarial examples | AUC | TPR @ 1 % FPR | TPR @ 5 % FPR | detected "
            "| success | mean L2 |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for _, r in res.detection().iterrows():
            print(
                f"| {r['attack']} | {r['adversarial']} | {r['auc']:.3f} | {r['tpr@1%fpr']:.1%} "
                f"| {r['tpr@5%fpr']:.1%} | {r['detection_rate']:.1%} | {r['success_rate']:.1%} "
                f"| {r['mean_l2']:.2f} |"
            )
        flagged = det.scores(last.x_adv) > tau
        success = float((fooled & ~flagged).sum()) / int(correct.sum())
        print(
            f"| PGD-40 last iterate (no early stop; Xu et al.'s BIM) | {int(fooled.sum())} | "
            f"{m['auc']:.3f} | {m['tpr@1%fpr']:.1%} | {m['tpr@5%fpr']:.1%} | "
            f"{m['detection_rate']:.1%} | {success:.1%} | {float(last.l2[fooled].mean()):.2f} |"
        )
        print()
        print(f"Accuracy against ε on {res.n} test images (the page's chart):")
        print()
        sweep = res.sweep()
        eps_values = sorted(set(sweep["eps"]))
        print("| attack | " + " | ".join(f"ε = {e:g}" for e in eps_values) + " |")
        print("|---|" + "---:|" * len(eps_values))
        for attack in res.attacks():
            row = [res.accuracy_at(attack, e) for e in eps_values]
            print(f"| {attack} | " + " | ".join(f"{a:.1%}" for a in row) + " |")
        print()
        print("Sanity checks: " + "; ".join(f"{c.name}: {c.status}" for c in res.sanity()))
        print()

        # Behind the BPDA number: a stronger attack, and other bit depths.
        n_small = min(200, ns.n)
        xs, ys = x[:n_small], y[:n_small]
        free = float(((xs > 0.5 - EPS) & (xs < 0.5 + EPS)).float().mean())
        print("  the stronger BPDA and the bit-depth sweep…", file=sys.stderr)
        strong = PGD(steps=ns.strong_steps, restarts=ns.strong_restarts, step_size=0.05)
        rows = []
        for bits in (1, 2, 3, 4):
            pre = Preprocessing(bits=bits, median=2)
            accs = []
            attacks = [("exact", PGD(steps=40)), ("bpda", PGD(steps=40))]
            if bits == 1:
                attacks.append(("bpda", strong))
            for backward, attack in attacks:
                wrapped = pre.wrap(model, backward=backward, bounds=bounds)
                r = attack_in_batches(
                    attack, wrapped, xs, ys, eps=EPS, norm="linf", goal=goal, batch_size=512
                )
                accs.append(float((r.pred == ys).float().mean()))
            rows.append((bits, accs))
        print(
            f"BPDA at ε = {EPS:g} on the first {n_small} images, bit depth + 2×2 median "
            f"(a 1-bit depth rounds at ½: ε = {EPS:g} moves a pixel across it only within "
            f"{EPS:g} of ½, {free:.1%} of these images' pixels):"
        )
        print()
        print(
            f"| bit depth | naive PGD-40 | BPDA PGD-40 | BPDA PGD-{ns.strong_steps} × "
            f"{ns.strong_restarts} restarts |"
        )
        print("|---:|---:|---:|---:|")
        for bits, accs in rows:
            extra = f"{accs[2]:.1%}" if len(accs) > 2 else "–"
            print(f"| {bits} | {accs[0]:.1%} | {accs[1]:.1%} | {extra} |")
        print()
        print(
            f"(the experiment's naive PGD at ε = {EPS:g}: {res.accuracy_at(NAIVE, EPS):.1%}; "
            f"load average after: {load_average()})"
        )
        if missed:
            sys.exit(1)
    finally:
        if ns.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
