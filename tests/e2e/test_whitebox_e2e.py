"""White-box attacks in a real browser: train the default model, run a small ε sweep, see the
accuracy-vs-ε chart and the sanity checks."""

from __future__ import annotations

import re
import time

import pytest
from helpers.e2e import metric_value, open_page, train_default_model
from helpers.legibility import plot_problems
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

TRAIN_TIMEOUT_MS = 180_000
SWEEP_TIMEOUT_MS = 240_000


def test_whitebox_sweep_draws_the_accuracy_curve(streamlit_server: str, page: Page) -> None:
    train_default_model(page, streamlit_server, TRAIN_TIMEOUT_MS)
    open_page(page, "White-box attacks")
    grid = page.get_by_role("textbox", name="ε grid")
    grid.fill("0, 0.1, 0.3")
    started = time.monotonic()
    page.get_by_role("button", name="Run attacks").click()
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(
        has_text="Accuracy against perturbation budget"
    )
    expect(chart).to_be_visible(timeout=SWEEP_TIMEOUT_MS)
    print(f"white-box sweep to chart: {time.monotonic() - started:.1f} s")
    expect(chart).to_contain_text("PGD")
    expect(chart).to_contain_text("chance")
    problems = plot_problems(page)  # every chart the run drew, at the default viewport
    assert problems == [], "illegible charts:\n" + "\n".join(problems)
    value = metric_value(page, "PGD accuracy at ε=0.3")
    match = re.match(r"([\d.]+)%", value.strip())
    # Seeds 0-2 of the model, images and PGD (bench/threshold_spread.py): 0 % of 500.
    assert match and float(match.group(1)) < 20, value
    page.get_by_role("tab", name="Sanity checks").click()
    expect(page.get_by_text("Unbounded attack reaches chance")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert page.errors == [], page.errors
