"""Helpers for Streamlit AppTest tests of the pages."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def new_app() -> AppTest:
    """A fresh browser session on the app (the shared run store and zoo persist)."""
    return AppTest.from_file(APP, default_timeout=120)


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 300.0) -> AppTest:
    """Rerun the script (as the progress fragment would) until ``done(at)`` or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if done(at):
            return at
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; page shows: {[m.value for m in at.markdown]}")
        time.sleep(0.25)


def button(at: AppTest, label: str):
    """The first button labelled ``label`` (result actions add buttons, so an index moves)."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def has_metric(label: str) -> Callable[[AppTest], bool]:
    return lambda at: any(m.label == label for m in at.metric)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def trained_app(page: str | None = None, timeout: float = 300.0) -> AppTest:
    """A session with the default model trained (or loaded from the zoo), on ``page``."""
    at = new_app().run()
    at.sidebar.button(key="rc_train").click()
    run_until(at, has_metric("Clean test accuracy"), timeout=timeout)
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def app_with_arch(arch: str, timeout: float = 300.0) -> AppTest:
    """A session whose current model is ``arch`` trained from the sidebar with the default
    recipe (or loaded from the zoo)."""
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    at.run()
    at.sidebar.selectbox(key="rc_arch").set_value(arch).run()
    at.sidebar.button(key="rc_train").click()
    run_until(
        at,
        lambda a: any("Current model" in s.value and arch in s.value for s in a.sidebar.success),
        timeout=timeout,
    )
    return at
