"""Wall-clock time of the pages' default runs, cold, in headless Chromium.

Starts ``streamlit run app.py`` with an empty ``ROBUSTCORE_HOME`` (nothing in the model zoo
or the result store), opens the app in Debian's Chromium and presses each page's run button
with its defaults, in this order:

1. Home: *Train / load model* (the sidebar's default model, trained cold).
2. White-box attacks: *Run attacks* on that model.
3. Defensive distillation: *Distil and attack* (a teacher and a student per temperature).
4. Adversarial training: *Train and attack* (the defended model is trained cold; the
   undefended one is the current model, already in the zoo). Target: under 90 s (issue 12).
5. White-box attacks again after *Use as current model*: the defended model and, by
   default, the undefended one as the what-if (served from step 2's run).

Each time runs from the click to the page's result (a metric or chart that only the
finished run draws), so it includes training, the attacks, the store and the drawing.

    python bench/page_times.py [--only home whitebox adversarial_training ...]
        [--screenshots DIR]

Needs ``playwright`` and ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers.e2e import open_page, train_default_model  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402
from report import cpu_name  # noqa: E402

STEPS = ("home", "whitebox", "distillation", "adversarial_training", "whitebox_defended")
TARGETS = {"adversarial_training": 90.0}  # seconds, from the issues
LIMIT_MS = 1_800_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, ROBUSTCORE_HOME=home, ROBUSTCORE_DEVICE="cpu")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    cmd += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("streamlit did not start within 60 s")


def _timed(page: Page, button: str, done) -> float:
    started = time.monotonic()
    page.get_by_role("button", name=button).click()
    expect(done).to_be_visible(timeout=LIMIT_MS)
    return time.monotonic() - started


def _chart(page: Page, *texts: str):
    loc = page.locator('[data-testid="stPlotlyChart"]')
    for t in texts:
        loc = loc.filter(has_text=t)
    return loc.first


def run(steps: list[str], shots: Path | None = None) -> list[tuple[str, str, float]]:
    rows: list[tuple[str, str, float]] = []

    def shoot(name: str) -> None:
        if shots is not None:
            page.wait_for_timeout(2000)  # let Plotly finish drawing
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    def step(name: str, title: str, button: str, what: str, *chart_texts: str) -> None:
        """Open page ``title``, press ``button``, time it until the chart is drawn."""
        open_page(page, title)
        secs = _timed(page, button, _chart(page, *chart_texts))
        if name in steps:
            rows.append((name, what, secs))
        shoot(name)

    home = tempfile.mkdtemp(prefix="robustcore-page-times-")
    proc, url = _serve(home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            # Streamlit scrolls inside its own container: a tall viewport shows the page.
            height = 4200 if shots is not None else 1000
            page = browser.new_page(viewport={"width": 1400, "height": height})
            started = time.monotonic()
            train_default_model(page, url, LIMIT_MS)  # includes opening the app
            if "home" in steps:
                secs = time.monotonic() - started
                rows.append(("home", "open the app, Train / load model (default CNN)", secs))
            curve = "Accuracy against perturbation budget"
            if "whitebox" in steps:
                step(
                    "whitebox", "White-box attacks", "Run attacks", "Run attacks (defaults)", curve
                )
            if "distillation" in steps:
                what = "Distil and attack (defaults)"
                step(
                    "distillation", "Defensive distillation", "Distil and attack", what, "adaptive"
                )
            defended = {"adversarial_training", "whitebox_defended"} & set(steps)
            if defended:
                what = "Train and attack (defaults)"
                step(
                    "adversarial_training",
                    "Adversarial training",
                    "Train and attack",
                    what,
                    "defended vs",
                )
                page.get_by_role("button", name="Use as current model").click()
                sidebar = page.get_by_test_id("stSidebar")
                current = sidebar.get_by_text(re.compile(r"Current model: .*FGSM-RS"))
                expect(current).to_be_visible(timeout=120_000)
            if "whitebox_defended" in steps:
                what = "Run attacks (defended model + undefended what-if)"
                step(
                    "whitebox_defended", "White-box attacks", "Run attacks", what, curve, "what-if"
                )
            if defended and shots is not None:
                page.get_by_role("link", name="Home").click()
                heading = page.get_by_role("heading", name="Adversarial Robustness Workbench")
                expect(heading).to_be_visible(timeout=30_000)
                shoot("home_defended")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument(
        "--screenshots", type=Path, help="save a full-page PNG of each page's result here"
    )
    ns = ap.parse_args()
    import torch

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    print(
        f"# page_times, {stamp}: {os.cpu_count()} CPU cores ({cpu_name()}), "
        f"torch {torch.__version__}, fresh ROBUSTCORE_HOME, headless Chromium; "
        f"load average before: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)\n"
    )
    if ns.screenshots is not None:
        ns.screenshots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = run(ns.only, ns.screenshots)
    wall = time.monotonic() - started
    print("| page | run | seconds | target | met |")
    print("|---|---|---|---|---|")
    for key, what, secs in rows:
        target = TARGETS.get(key)
        met = "" if target is None else ("yes" if secs < target else "**no**")
        tgt = "" if target is None else f"< {target:g} s"
        print(f"| {key} | {what} | {secs:.1f} | {tgt} | {met} |")
    print(f"\nTotal wall time {wall:.0f} s (with starting the server and the browser).")


if __name__ == "__main__":
    main()
