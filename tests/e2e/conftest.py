"""End-to-end fixtures: a real ``streamlit run app.py`` server and headless Debian Chromium.

The server gets its own fresh ``ROBUSTCORE_HOME`` (not the root conftest's shared one), so
the first training in a session is a real cold run and later identical requests are
served from that server's run store.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 10.0

# The running server's (stdout, stderr) log files and process, for failure reports.
_SERVER_LOGS: list[Path] = []
_SERVER_PROC: list[subprocess.Popen] = []
_SERVER_HOME: list[Path] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is an ``e2e`` test (so ``-m "not e2e"`` skips it)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item (``item.rep_setup`` / ``rep_call`` / ...)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, n: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no output captured>"
    return text[-n:] if text else "<empty>"


def _server_output() -> str:
    if not _SERVER_LOGS:
        return "<no streamlit server was started>"
    out_path, err_path = _SERVER_LOGS
    return f"--- stdout ---\n{_tail(out_path)}\n--- stderr ---\n{_tail(err_path)}"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200 and resp.read().decode(errors="replace").strip() == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free port; yield its base URL."""
    home = Path(tempfile.mkdtemp(prefix="robustcore-e2e-home-"))
    _SERVER_HOME[:] = [home]
    logs = tmp_path_factory.mktemp("streamlit-server")
    out_path, err_path = logs / "stdout.log", logs / "stderr.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        ROBUSTCORE_HOME=str(home),
        ROBUSTCORE_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    _SERVER_LOGS[:] = [out_path, err_path]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
    _SERVER_PROC[:] = [proc]
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(f"{base_url}/_stcore/health"):
            if proc.poll() is not None:
                pytest.fail(
                    f"streamlit exited with code {proc.returncode} before becoming healthy\n"
                    + _server_output(),
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit was not healthy at {base_url} after "
                    f"{SERVER_START_TIMEOUT_S:.0f} s\n" + _server_output(),
                    pytrace=False,
                )
            time.sleep(0.25)
        yield base_url
        if proc.poll() is not None:
            pytest.fail(
                f"streamlit died during the e2e session (code {proc.returncode})\n"
                + _server_output(),
                pytrace=False,
            )
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
        _SERVER_LOGS.clear()
        _SERVER_PROC.clear()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def server_home(streamlit_server: str) -> Path:
    """The running server's ROBUSTCORE_HOME (its result store and zoo)."""
    return _SERVER_HOME[0]


def _fail_if_server_died() -> None:
    if _SERVER_PROC and _SERVER_PROC[0].poll() is not None:
        pytest.fail(
            f"the streamlit server died (exit code {_SERVER_PROC[0].returncode})\n"
            + _server_output(),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _server_alive() -> Iterator[None]:
    """Fail a test with the server's output if the server is found dead before or after it."""
    _fail_if_server_died()
    yield
    _fail_if_server_died()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium (Playwright's own browser downloads are not used)."""
    if not CHROMIUM.exists():
        msg = (
            f"{CHROMIUM} not found: the e2e tests need Debian's chromium "
            "(apt-get install chromium)."
        )
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    """A fresh context and page (a new Streamlit session each time).

    ``page.errors`` collects uncaught page errors and console errors, as strings.
    On a failed test a full-page screenshot goes to ``test-artifacts/`` and the tail of the
    server's output is printed (shown in the failure report).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.errors = errors
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.on(
        "console",
        lambda msg: (
            errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    try:
        yield pg
    finally:
        failed = any(
            getattr(request.node, f"rep_{when}", None) is not None
            and getattr(request.node, f"rep_{when}").failed
            for when in ("setup", "call")
        )
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
            try:
                pg.screenshot(path=str(ARTIFACTS / f"FAILED_{name}.png"), full_page=True)
            except Exception as exc:  # best effort: never mask the test's own failure
                print(f"could not save a failure screenshot: {exc}")
            print("browser errors:", *errors, sep="\n  ")
            print("streamlit server output:\n" + _server_output())
        context.close()
