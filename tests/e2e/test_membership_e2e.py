"""Membership inference in a real browser: pick a model, open the page, run the default
attacks (a deliberately overfit MLP with 8 shadow models) and read the results."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from helpers.e2e import metric_value
from helpers.legibility import plot_problems
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PLOTLY = '[data-testid="stPlotlyChart"] .js-plotly-plot'
MODEL_TIMEOUT_MS = 180_000
ATTACK_TIMEOUT_MS = 360_000  # ~15 s of compute; 4-5x longer while the page polls on a busy machine


def test_membership_inference_runs_and_shows_log_log_roc(streamlit_server: str, page: Page):
    page.goto(streamlit_server)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name="Train / load model")).to_be_visible(timeout=30_000)
    # A fast session model (an MLP): the page trains its own overfit target anyway.
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=30_000)
    combo = sidebar.get_by_role("combobox", name="Architecture")
    combo.click()
    combo.press_sequentially("MLP")
    combo.press("Enter")
    expect(combo).to_have_value("MLP (256-128)")
    sidebar.get_by_role("button", name="Train / load model").click()
    # The sidebar names the current model, e.g. "mlp (5 epochs, seed 0) on mnist5k".
    current = sidebar.get_by_text(re.compile(r"\bmlp\b.* on mnist5k")).first
    expect(current).to_be_visible(timeout=MODEL_TIMEOUT_MS)

    page.get_by_role("link", name="Membership inference").click()
    expect(page.get_by_role("heading", name="Membership inference", level=1)).to_be_visible(
        timeout=30_000
    )
    expect(page.get_by_text("Overfitting control")).to_be_visible()
    started = time.monotonic()
    page.get_by_role("button", name="Run membership inference").click()
    expect(
        page.get_by_test_id("stMetricLabel").filter(has_text="Best TPR at 0.1% FPR")
    ).to_be_visible(timeout=ATTACK_TIMEOUT_MS)
    print(f"membership inference, cold: {time.monotonic() - started:.1f} s")

    auc = float(metric_value(page, "Its AUC"))
    # Seeds 0-4 of the target and the attack (bench/threshold_spread.py): 0.728-0.781.
    assert auc > 0.6, f"the overfit target should leak clearly, AUC {auc}"
    assert re.fullmatch(r"\d+(\.\d+)?%", metric_value(page, "Best TPR at 0.1% FPR"))
    charts = page.locator(PLOTLY)
    expect(charts).to_have_count(3, timeout=30_000)
    expect(charts.first).to_contain_text("ROC, log-log axes")
    expect(charts.nth(1)).to_contain_text("ROC, linear axes")
    expect(charts.nth(2)).to_contain_text("members vs non-members")
    problems = plot_problems(page)  # both ROC charts and the score histogram
    assert problems == [], "illegible charts:\n" + "\n".join(problems)
    expect(page.get_by_text("LiRA online, fixed variance").first).to_be_attached()
    expect(page.get_by_role("button", name="Metrics (CSV)")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert page.errors == [], "errors in the browser:\n" + "\n".join(page.errors)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "membership_e2e.png"), full_page=True)
