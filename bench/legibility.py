"""Every page's default result, drawn in headless Chromium, checked for legibility.

1. Every registered experiment's default run is computed through the engine into
   ``ROBUSTCORE_HOME`` (``bench/page_defaults.py``'s ``run_page``: a fresh home costs about
   six minutes on the 2-core CPU; with ``--home`` of a home where it ran, milliseconds).
2. ``streamlit run app.py`` is started on that home, and for each viewport width (1,400
   and 1,000 px) a new browser session loads the sidebar's default model.
3. For each page of the app's navigation (``robustcore.ui.shell.PAGES``): open it, wait
   for its default result (the stored one, shown at once: charts present, no progress
   bar, the script idle), run ``tests/helpers/legibility.py``'s checker on the charts
   shown, then click every other tab of the page and check the charts it shows. A
   full-page screenshot of the page (and of each tab with a chart) goes to
   ``bench/results/<YYYYMMDD-HHMM>-legibility/``.

Prints a table (page, width, charts checked, problems) with the date and the load
average, then every problem in full; exit status 1 when any problem was found.

    python bench/legibility.py [--home DIR] [--only whitebox blackbox ...]
        [--widths 1400 1000] [--json FILE] [--out DIR] [--chart-shots]

``--only`` takes the pages' file names (``home``, ``threat_models``, ``whitebox``, ...) or
titles; then only the sidebar's default model and the experiments of those names are
computed (a page whose experiment has another name, such as Home's scorecard, shows its
form). Needs ``playwright`` and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

WIDTHS = (1400, 1000)
HEIGHT = 1000
RESULT_TIMEOUT_S = 90.0
MODEL_TIMEOUT_MS = 600_000


@dataclass
class PageCheck:
    """One page at one viewport width."""

    page: str
    slug: str
    width: int
    charts: int = 0  # charts displayed and checked (over all tabs)
    not_shown: int = 0  # charts never displayed (e.g. in a collapsed expander)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)


def nav_pages() -> list[tuple[str, str]]:
    """(slug, title) of every page of the app's navigation, in its order."""
    from robustcore.ui.shell import PAGES

    return [
        (Path(path).stem, title)
        for pages in PAGES.values()
        for path, title, _ in pages
        if path not in CHOSEN_RUNS_ONLY
    ]


CHOSEN_RUNS_ONLY = ("pages/compare.py", "pages/report.py")
"""Pages that draw charts only for runs a person chose (no default result to wait for);
``tests/e2e/test_report_e2e.py`` checks the comparison's overlaid charts instead."""


def compute_defaults(only: set[str] | None = None) -> list:
    """Every registered experiment's default run, through bench/page_defaults.py (with
    ``only``, the sidebar's default model and the experiments named like those pages)."""
    import page_defaults

    from robustcore.data import DEFAULT_DATASET, load
    from robustcore.device import configure_threads
    from robustcore.experiments import Target, load_all
    from robustcore.experiments.registry import MODULES
    from robustcore.models import TrainRecipe, default_architecture

    load_all()
    configure_threads(None)
    ds = load(DEFAULT_DATASET)
    target = Target.zoo(default_architecture(ds), TrainRecipe())
    rows = []
    for name in MODULES:
        if only is not None and name != "train" and name not in only:
            continue
        row = page_defaults.run_page(name, ds, target)
        rows.append(row)
        print(
            f"  {name}: {row.state} (cold {row.cold_s:.1f} s, warm {row.warm_s:.3f} s)",
            file=sys.stderr,
            flush=True,
        )
    return rows


_BUSY_JS = """
() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const app = document.querySelector('[data-testid="stApp"]');
  const shown = (e) => e.getClientRects().length > 0;
  return {
    script: app ? app.getAttribute('data-test-script-state') : null,
    busy: [...main.querySelectorAll('[role="progressbar"], [data-testid="stSpinner"]')]
      .filter(shown).length,
    charts: [...main.querySelectorAll('.js-plotly-plot')].filter(shown).length,
    stale: [...main.querySelectorAll('[data-stale="true"]')].length,
  };
}
"""


def wait_for_result(page, timeout_s: float = RESULT_TIMEOUT_S) -> str | None:
    """Wait until the page shows charts, no progress bar or spinner and the script is idle
    (twice in a row, a second apart); a sentence saying what is missing on a timeout."""
    deadline = time.monotonic() + timeout_s
    calm = 0
    state: dict = {}
    while time.monotonic() < deadline:
        state = page.evaluate(_BUSY_JS)
        ok = state["script"] == "notRunning" and not state["busy"] and not state["stale"]
        calm = calm + 1 if ok and state["charts"] else 0
        if calm >= 2:
            return None
        page.wait_for_timeout(1000)
    if not state.get("charts"):
        return f"the page drew no chart within {timeout_s:.0f} s (its default result is missing)"
    return f"the page was still busy after {timeout_s:.0f} s: {state}"


def open_nav(page, title: str) -> None:
    """Follow the navigation link ``title`` and wait for the new page's script run."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000
    )


def full_height(page) -> int:
    """The height the page needs to show everything without Streamlit's inner scrolling."""
    return int(
        page.evaluate(
            """() => Math.max(...[...document.querySelectorAll(
                 '[data-testid="stMain"], [data-testid="stAppViewContainer"], '
                 + '[data-testid="stMainBlockContainer"]')].map((e) => e.scrollHeight),
               document.documentElement.scrollHeight)"""
        )
    )


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40]


def check_page(
    page, slug: str, title: str, width: int, out: Path, chart_shots: bool = False
) -> PageCheck:
    """Open one page at ``width``, wait for its result, check every tab's charts (with
    ``chart_shots``, each chart's own PNG goes to ``out/charts/``)."""
    from helpers.legibility import chart_reports, wait_for_charts

    row = PageCheck(title, slug, width)
    t0 = time.monotonic()
    page.set_viewport_size({"width": width, "height": HEIGHT})
    open_nav(page, title)
    missing = wait_for_result(page)
    if missing:
        row.problems.append(missing)
    # Tall enough for the whole page, so the screenshot holds all of it (the width, which
    # is what the charts' layout depends on, stays).
    page.set_viewport_size({"width": width, "height": min(max(HEIGHT, full_height(page)), 16000)})
    wait_for_charts(page)

    seen: set[str] = set()
    never: set[str] = set()

    def check() -> bool:
        """Check the charts shown; True when one of them was not seen before."""
        found = False
        for rep in chart_reports(page):
            ident = rep.key or f"{rep.tab}|{rep.index}"
            if not rep.checked:
                never.add(ident)
                continue
            if ident not in seen and chart_shots:
                path = out / "charts" / f"{slug}-{width}-{_name(rep.key or str(rep.index))}.png"
                path.parent.mkdir(exist_ok=True)
                page.locator(".js-plotly-plot").nth(rep.index - 1).screenshot(path=str(path))
            found = found or ident not in seen
            seen.add(ident)
            for p in rep.problems:
                sentence = f"{rep.name}: {p}"
                if sentence not in row.problems:
                    row.problems.append(sentence)
        return found

    def shoot(label: str) -> None:
        path = out / f"{slug}-{width}{'-' + label if label else ''}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        row.screenshots.append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))

    check()
    shoot("")
    main = page.get_by_test_id("stMain")
    tabs = main.get_by_role("tab")
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        if tab.get_attribute("aria-selected") == "true" or not tab.is_visible():
            continue
        label = tab.inner_text().strip()
        tab.click()
        page.wait_for_timeout(300)
        page.set_viewport_size(
            {"width": width, "height": min(max(HEIGHT, full_height(page)), 16000)}
        )
        wait_for_charts(page)
        if check():
            shoot("tab-" + _name(label))
    row.charts = len(seen)
    row.not_shown = len(never - seen)
    row.seconds = time.monotonic() - t0
    return row


def run_browser(
    url: str, pages: list[tuple[str, str]], widths: list[int], out: Path, chart_shots: bool
):
    from e2e.conftest import CHROMIUM_ARGS  # the e2e tests' Chromium flags
    from helpers.e2e import train_default_model
    from playwright.sync_api import sync_playwright

    rows: list[PageCheck] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            for width in widths:
                context = browser.new_context(viewport={"width": width, "height": HEIGHT})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                train_default_model(page, url, MODEL_TIMEOUT_MS)
                for slug, title in pages:
                    row = check_page(page, slug, title, width, out, chart_shots)
                    if errors:
                        row.problems += [f"browser error: {e}" for e in errors]
                        errors.clear()
                    rows.append(row)
                    print(
                        f"  {title} at {width} px: {row.charts} charts, "
                        f"{len(row.problems)} problems ({row.seconds:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
                context.close()
        finally:
            browser.close()
    return rows


def table(rows: list[PageCheck]) -> list[str]:
    out = ["| page | width | charts checked | problems |", "|---|---:|---:|---:|"]
    for r in rows:
        extra = f" (+{r.not_shown} not displayed)" if r.not_shown else ""
        out.append(f"| {r.page} | {r.width} px | {r.charts}{extra} | {len(r.problems)} |")
    return out


def report(
    rows: list[PageCheck],
    stamp: str,
    command: str,
    home: Path | None,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    compute_s: float,
    failed: list[str],
    out: Path,
) -> list[str]:
    """The printed report: header with date and load average, the table, every problem."""
    where = f"ROBUSTCORE_HOME {home}" if home else "fresh ROBUSTCORE_HOME"
    lines = [
        f"# legibility, {stamp} — `{command}` — {os.cpu_count()} CPU cores, {where}; "
        f"load average {load_before[0]:.2f} / {load_before[1]:.2f} (1 / 5 min) before, "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} after",
        "",
        *table(rows),
        "",
    ]
    total = sum(len(r.problems) for r in rows)
    shots = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    lines.append(
        f"- {sum(r.charts for r in rows)} charts checked on {len(rows)} page views; "
        f"{total} problems; defaults computed in {compute_s:.0f} s"
        + (f" (failed: {', '.join(failed)})" if failed else "")
        + f"; screenshots in {shots}/"
    )
    lines += [f"- {r.page} at {r.width} px: {p}" for r in rows for p in r.problems]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, default=None, help="ROBUSTCORE_HOME (default: a new one)")
    ap.add_argument("--only", nargs="+", default=None, help="pages (file names or titles)")
    ap.add_argument("--widths", nargs="+", type=int, default=list(WIDTHS))
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    ap.add_argument("--out", type=Path, default=None, help="screenshots folder")
    ap.add_argument(
        "--chart-shots", action="store_true", help="also save each chart's own PNG (charts/)"
    )
    ns = ap.parse_args()

    home = ns.home or Path(tempfile.mkdtemp(prefix="robustcore-legibility-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["ROBUSTCORE_HOME"] = str(home)
    os.environ.setdefault("ROBUSTCORE_DEVICE", "cpu")
    pages = nav_pages()
    if ns.only:
        wanted = {w.lower() for w in ns.only}
        unknown = wanted - {s for s, _ in pages} - {t.lower() for _, t in pages}
        if unknown:
            ap.error(f"unknown page(s) {sorted(unknown)}; choose from {[s for s, _ in pages]}")
        pages = [(s, t) for s, t in pages if s in wanted or t.lower() in wanted]
    now = dt.datetime.now()
    out = ns.out or ROOT / "bench" / "results" / f"{now:%Y%m%d-%H%M}-legibility"
    out.mkdir(parents=True, exist_ok=True)
    try:
        started = time.monotonic()
        load_before = os.getloadavg()
        computed = compute_defaults({s for s, _ in pages} if ns.only else None)
        failed = [r.experiment for r in computed if r.state != "done"]
        compute_s = time.monotonic() - started

        from page_times import _serve

        proc, url = _serve(str(home))
        try:
            rows = run_browser(url, pages, ns.widths, out, ns.chart_shots)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        load_after = os.getloadavg()
    finally:
        if ns.home is None:
            shutil.rmtree(home, ignore_errors=True)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["python", "bench/legibility.py", *sys.argv[1:]])
    lines = report(rows, stamp, command, ns.home, load_before, load_after, compute_s, failed, out)
    print("\n".join(lines))
    (out / "legibility.md").write_text("\n".join(lines) + "\n")
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "stamp": stamp,
            "command": command,
            "load_before": load_before,
            "load_after": load_after,
            "failed_defaults": failed,
            "rows": [asdict(r) for r in rows],
        }
        ns.json.write_text(json.dumps(payload, indent=2))
    return 1 if any(r.problems for r in rows) or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
