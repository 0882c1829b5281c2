"""Browser fixtures for the widget tests.

Headless Debian Chromium via Playwright, offline pages, and one JupyterLab server per session.

Without playwright or /usr/bin/chromium the browser tests skip, saying why, except under CI=true
where a missing browser is a failure. Never `playwright install`: the system Chromium is used.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("RLBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install 'rlbench[dev]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RLBENCH_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class PageWatch:
    """Dialogs (an alert means escaping failed), page errors and console errors of one page."""

    def __init__(self, page):
        self.page, self.dialogs, self.errors = page, [], []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda err: self.errors.append(str(err)))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def _open_and_run_all(page, url: str) -> None:
    """Open a notebook in JupyterLab and run all its cells, retrying "Run All" until a cell starts.

    On a loaded machine the status bar can read "Idle" a moment before the kernel accepts work, and
    a "Run All Cells" clicked then does nothing; a started cell shows ``[*]`` or a count in its prompt.
    """
    # ?reset: a fresh workspace, or JupyterLab restores the notebook an earlier test opened on the same
    # server as another tab, and ours may load behind it (hidden)
    page.goto(url + ("&" if "?" in url else "?") + "reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=120_000)
    started = "[...document.querySelectorAll('.jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    for _ in range(6):
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=20_000)
            return
        except Exception:  # playwright's TimeoutError: the click came too early; try again
            page.keyboard.press("Escape")
    raise AssertionError(f"JupyterLab never started running the cells of {url}")


@pytest.fixture
def open_and_run_all():
    """``open_and_run_all(page, url)``: open a notebook in JupyterLab and run all its cells."""
    return _open_and_run_all


@pytest.fixture
def page_watch():
    """The :class:`PageWatch` class: call it on a page to watch that page's console and errors."""
    return PageWatch


@pytest.fixture
def offline_page(browser):
    """A page for file:// URLs with every other request aborted (no network), plus a watcher."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    blocked = []

    def route(r):
        if r.request.url.startswith(("file:", "blob:", "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    watch = PageWatch(page)
    watch.blocked = blocked
    yield page, watch
    context.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    def __init__(self, url: str, root: Path, proc: subprocess.Popen):
        self.url, self.root, self.proc = url, root, proc


@pytest.fixture(scope="session")
def jupyter_lab(browser):
    """`jupyter lab` on 127.0.0.1 (free port, no token, no browser) in a temp folder; shut down after."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        _unavailable("jupyter is not installed in this environment (pip install 'rlbench[notebooks]')")
    tmp = Path(tempfile.mkdtemp(prefix="rlbench-lab-"))
    port = _free_port()
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", MPLBACKEND="Agg",
               JUPYTER_RUNTIME_DIR=str(tmp / ".runtime"), PYTHONPATH=str(ROOT))
    # no "get Jupyter news?" toast over the screenshots
    settings = tmp / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={tmp}", f"--LabApp.workspaces_dir={tmp / '.ws'}",
         f"--LabApp.user_settings_dir={tmp / '.settings'}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield LabServer(url, tmp, proc)
    finally:
        family = _stop(proc)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    from rlbench.testing import processes_gone

    assert processes_gone(family, within=10), f"jupyter lab left processes behind: {family}"


def _stop(proc: subprocess.Popen) -> list[int]:
    """SIGTERM the server's process group (the server and its kernels), SIGKILL if it lingers.

    Returns the pids of the server and every process it had started (kernels), all ended.
    """
    import psutil

    from rlbench.testing import processes_gone

    try:
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if not processes_gone(family[1:], within=10):
        for pid in family[1:]:  # a kernel that left the group: killed by its own id
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return family
