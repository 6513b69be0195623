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


# Tests that share state run on one pytest-xdist worker, in this file's order
# (``--dist loadgroup --no-loadscopereorder``, the defaults in pyproject.toml): the
# AppTests of a group share the worker's session home, the Playwright tests of a group
# share one ``streamlit run`` server, and the Home tests (first in their group) must see a
# first visit. Groups come first in the collection, so xdist hands each worker an app group
# and then an e2e group before any unit test: with two workers, each group starts on a
# fresh home and a fresh server. The split balances the groups' measured times.
SECOND_GROUP = {
    "app": {
        "test_blackbox_page.py",
        "test_defense_pages.py",
        "test_inversion_extraction_pages.py",
        "test_pages_without_model.py",
        "test_privacy_pages.py",
        "test_query_limitation.py",
        "test_report_pages.py",
        "test_scorecard_page.py",
    },
    "e2e": {
        "test_defenses_e2e.py",
        "test_extraction_e2e.py",
        "test_inference_defenses_e2e.py",
        "test_poisoning_e2e.py",
    },
}


def xdist_group(path: Path) -> str | None:
    """The worker group of a test file: ``app_a``/``app_b``, ``e2e_a``/``e2e_b``, or None
    (unit and oracle tests, spread over the workers one by one)."""
    folder = path.parent
    if folder.parent.name != "tests" or folder.name not in SECOND_GROUP:
        return None
    return f"{folder.name}_{'b' if path.name in SECOND_GROUP[folder.name] else 'a'}"


@pytest.hookimpl(tryfirst=True)  # before xdist turns the group marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run each folder's Home tests first: they check what a first visit shows (no model
    yet), before other tests of the same session train the default model that a new
    session then loads on its own. Mark each app and e2e file with its worker group."""
    folders: dict[Path, int] = {}
    for item in items:
        path = Path(str(item.fspath))
        folders.setdefault(path.parent, len(folders))
        group = xdist_group(path)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int]:
        i, item = pair
        path = Path(str(item.fspath))
        return (folders[path.parent], 0 if path.name.startswith("test_home") else 1, i)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
