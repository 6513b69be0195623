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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run each folder's Home tests first: they check what a first visit shows (no model
    yet), before other tests of the same session train the default model that a new
    session then loads on its own."""
    folders: dict[Path, int] = {}
    for item in items:
        folders.setdefault(Path(str(item.fspath)).parent, len(folders))

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int]:
        i, item = pair
        path = Path(str(item.fspath))
        return (folders[path.parent], 0 if path.name.startswith("test_home") else 1, i)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
