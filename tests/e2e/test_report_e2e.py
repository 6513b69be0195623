"""Reports in a real browser: two stored runs go into a report from the Run history page;
the downloaded HTML opens from disk with every network request blocked and draws every
chart; the PDF printed by Chromium has the report's pages and text."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.legibility import plot_problems
from playwright.sync_api import Page, expect
from pypdf import PdfReader

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PLOTLY = '[data-testid="stPlotlyChart"] .js-plotly-plot'
MAKE_RUNS = (
    "import sys; sys.path.insert(0, 'tests');"
    "from helpers.report_runs import two_whitebox_runs;"
    "from robustcore.data import load;"
    "print(' '.join(two_whitebox_runs(load('mnist5k'))))"
)


@pytest.fixture(scope="module")
def run_keys(server_home: Path) -> list[str]:
    """Two White-box runs in the server's own result store (made by another process, as
    the CLI would)."""
    env = dict(os.environ, ROBUSTCORE_HOME=str(server_home), PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", MAKE_RUNS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return out.stdout.split()


def _pick(page: Page, label: str, text: str) -> None:
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.press_sequentially(text)
    page.get_by_role("option").filter(has_text=text).first.click()
    page.keyboard.press("Escape")


def test_report_from_two_runs_opens_offline_and_prints(
    streamlit_server: str, page: Page, run_keys: list[str], tmp_path: Path
):
    page.goto(streamlit_server)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=60_000)
    page.get_by_role("link", name="Run history").click()
    heading = page.get_by_role("heading", name="Run history", level=1)
    expect(heading).to_be_visible(timeout=60_000)
    for key in run_keys:
        _pick(page, "Runs to compare or report", key[:8])
    heading.click()  # the picker's list closed
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=60_000)
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_role("heading", name="Compare runs", level=1)).to_be_visible(timeout=60_000)
    expect(page.locator(PLOTLY).first).to_be_visible(timeout=60_000)
    assert plot_problems(page) == []  # the overlaid charts hide no legend entry or label
    page.get_by_role("button", name="Add these runs to the report").click()
    expect(page.get_by_text("2 runs added to the report")).to_be_visible(timeout=30_000)

    page.get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", name="Report", level=1)).to_be_visible(timeout=30_000)
    expect(page.get_by_text("What this evaluation does not show")).to_be_visible()
    with page.expect_download(timeout=60_000) as got:
        page.get_by_role("button", name="HTML (one file)").click()
    html_path = tmp_path / "report.html"
    got.value.save_as(html_path)
    size = html_path.stat().st_size
    assert size < 8_000_000, f"{size / 1e6:.1f} MB"

    # Open the file from disk with the network off: every chart must still draw.
    offline = page.context.browser.new_context()
    requests: list[str] = []

    def block(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    offline.route("**/*", block)
    view = offline.new_page()
    view.goto(html_path.as_uri())
    charts = view.locator(".js-plotly-plot")
    expect(charts.first).to_be_visible(timeout=30_000)
    n = charts.count()
    assert n >= 2
    for i in range(n):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached(timeout=30_000)
    assert requests == [], requests
    offline.close()

    # The PDF, printed by Chromium on the server.
    page.get_by_role("button", name="Print PDF").click()
    with page.expect_download(timeout=120_000) as got:
        page.get_by_role("button", name="PDF", exact=True).click(timeout=120_000)
    data = Path(got.value.path()).read_bytes()
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) >= 3
    assert "Robustness evaluation" in text and "What this evaluation does not show" in text
    assert run_keys[0][:12] in text and "Appendix" in text
