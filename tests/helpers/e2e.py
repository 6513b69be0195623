"""Helpers shared by the Playwright tests."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def metric_value(page: Page, label: str) -> str:
    """The displayed value of the one ``st.metric`` whose label contains ``label``."""
    label_el = page.get_by_test_id("stMetricLabel").filter(has_text=label)
    metric = page.get_by_test_id("stMetric").filter(has=label_el)
    expect(metric).to_have_count(1)
    return metric.get_by_test_id("stMetricValue").inner_text().strip()
