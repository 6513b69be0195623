"""AppTest: every page that attacks or defends a model, opened before any model exists,
shows its title and says what to do instead of failing."""

from __future__ import annotations

import pytest
from helpers.apptest import new_app

from robustcore.ui.shell import PAGES

MODEL_PAGES = [
    (path, title)
    for section, pages in PAGES.items()
    if section != "Reports"  # they read the result store, no model needed
    for path, title, _ in pages
    if path != "pages/home.py"
]


def test_every_listed_page_but_home_needs_a_model():
    assert len(MODEL_PAGES) >= 11  # the registry is what this test walks


@pytest.mark.parametrize(("path", "title"), MODEL_PAGES, ids=[p for p, _ in MODEL_PAGES])
def test_page_without_model_explains_what_to_do(path, title):
    at = new_app()
    at.session_state["rc_autoload_done"] = True  # no default model from earlier tests
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == title
    assert any("No model yet" in i.value for i in at.info)
