"""Helpers shared by the Playwright tests."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def metric_value(page: Page, label: str | re.Pattern[str]) -> str:
    """The displayed value of the one ``st.metric`` whose label contains ``label`` (or
    matches it, for a compiled pattern)."""
    label_el = page.get_by_test_id("stMetricLabel").filter(has_text=label)
    metric = page.get_by_test_id("stMetric").filter(has=label_el)
    expect(metric).to_have_count(1)
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def train_default_model(page: Page, url: str, timeout_ms: int = 180_000) -> None:
    """Open the app and train (or load from the zoo) the sidebar's default model."""
    page.goto(url)
    button = page.get_by_test_id("stSidebar").get_by_role("button", name="Train / load model")
    expect(button).to_be_enabled(timeout=60_000)
    button.click()
    expect(
        page.get_by_test_id("stMetricLabel").filter(has_text="Clean test accuracy")
    ).to_be_visible(timeout=timeout_ms)


def open_page(page: Page, title: str) -> None:
    """Follow the navigation link ``title`` and wait for the page's heading."""
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=30_000)
