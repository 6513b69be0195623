"""Shared test setup: a private ROBUSTCORE_HOME for the whole session, tiny cached models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before robustcore is imported anywhere, so nothing touches ~/.robustcore.
# ROBUSTCORE_TEST_HOME (for development only) reuses one folder across pytest sessions, so
# models trained by an earlier session come from its zoo; tests of a first visit (no model
# yet) may then fail. CI never sets it.
_SESSION_HOME = Path(
    os.environ.get("ROBUSTCORE_TEST_HOME") or tempfile.mkdtemp(prefix="robustcore-test-")
)
_SESSION_HOME.mkdir(parents=True, exist_ok=True)
os.environ["ROBUSTCORE_HOME"] = str(_SESSION_HOME)
os.environ.setdefault("ROBUSTCORE_DEVICE", "cpu")


@pytest.fixture(scope="session")
def session_home() -> Path:
    """The ROBUSTCORE_HOME shared by the tests that want cached models across tests."""
    return _SESSION_HOME


@pytest.fixture(scope="session")
def mnist5k():
    from robustcore.data import load

    return load("mnist5k")


@pytest.fixture(scope="session")
def tiny_cnn(mnist5k):
    """A small CNN trained for one epoch on mnist5k (cached in the session's zoo)."""
    from robustcore.models import train_entry

    return train_entry("small_cnn", mnist5k, {"epochs": 1, "seed": 0})


# Folders whose tests share one worker (pytest-xdist ``--dist loadgroup``, the default in
# pyproject.toml): the AppTests share the worker's session home and the Playwright tests
# share one ``streamlit run`` server, and in both the Home tests must see a first visit.
# xdist hands the largest groups out first, so each of these starts its worker's session.
SERIAL_FOLDERS = ("app", "e2e")


@pytest.hookimpl(tryfirst=True)  # before xdist turns the group marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run each folder's Home tests first: they check what a first visit shows (no model
    yet), before other tests of the same session train the default model that a new
    session then loads on its own. The app and e2e folders each run on one worker, in
    this order; the unit and oracle tests are spread over the workers one by one."""
    folders: dict[Path, int] = {}
    for item in items:
        folder = Path(str(item.fspath)).parent
        folders.setdefault(folder, len(folders))
        if folder.name in SERIAL_FOLDERS and folder.parent.name == "tests":
            item.add_marker(pytest.mark.xdist_group(folder.name))

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int]:
        i, item = pair
        path = Path(str(item.fspath))
        return (folders[path.parent], 0 if path.name.startswith("test_home") else 1, i)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
