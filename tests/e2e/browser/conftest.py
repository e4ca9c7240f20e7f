"""Real-browser fixtures: Playwright for Python driving Debian's chromium (no download).

``live`` serves the real Flask app (werkzeug, threaded) on 127.0.0.1 and a free port,
on a throwaway SQLite file with the demo data loaded, as ``order-flow up`` would (the
demo is loaded once per test process and each test gets a copy of the file). There is
no worker process: a test calls ``live.run_steps()`` where the worker would act.

``chromium`` is launched once per test process. Without playwright or chromium the
tests skip, unless ORDER_FLOW_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.engine.publisher import RecordingPublisher
from order_flow.engine.versions import deploy_files
from order_flow.services.demo import load_demo, run_steps
from order_flow.store.db import make_engine
from order_flow.store.schema import Base
from tests.conftest import FAST_PASSWORD_HASH, ROOT, WORKFLOWS, service_missing
from web import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("ORDER_FLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Every wait in a browser test is bounded by this (milliseconds); generous for busy CI.
TIMEOUT_MS = 15_000
LAUNCH_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 800}
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@dataclass
class LiveServer:
    """The web app on a real socket, and the App behind it for setup and assertions."""

    app: App
    url: str

    def run_steps(self) -> int:
        """What the worker would do now: run every due job in-process."""
        return run_steps(self.app)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        service_missing("a browser (chromium)", f"playwright is not installed: {exc}")
    if not Path(CHROMIUM).is_file():
        service_missing("a browser (chromium)", f"{CHROMIUM} is missing (apt install chromium)")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_MS
        )
    except Error as exc:
        pw.stop()
        service_missing("a browser (chromium)", exc)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


def _settings(database: Path, data_dir: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        data_dir=data_dir,
        workflows_dir=WORKFLOWS,
        password_hash=FAST_PASSWORD_HASH,
    )


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the workflows deployed and the demo loaded, made once; each
    test serves a copy of it."""
    folder = tmp_path_factory.mktemp("demo")
    database = folder / "demo.db"
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    engine.dispose()
    app = bootstrap(_settings(database, folder), publisher=RecordingPublisher())
    try:
        deploy_files(app.engine, [WORKFLOWS])
        assert load_demo(app).loaded
    finally:
        app.close()  # the last connection closed: the WAL is folded into the file
    return database


@pytest.fixture
def live(demo_db: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """The demo system on its own SQLite copy behind a threaded werkzeug server."""
    database = tmp_path / "browser.db"
    shutil.copyfile(demo_db, database)
    app = bootstrap(_settings(database, tmp_path), publisher=RecordingPublisher())
    flask_app = create_app(of_app=app)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        app.close()


@dataclass
class Shots:
    """Screenshots of one test, numbered in order, under test-artifacts/browser/<test>/."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Page, name: str, full_page: bool = True) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    return Shots(ARTIFACTS / name)


PageFactory = Callable[..., "Page"]


@pytest.fixture
def new_page(chromium: Browser, live: LiveServer) -> Iterator[PageFactory]:
    """Pages in fresh browser contexts (one per person), in zh-CN at 1280x800."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> Page:
        context = chromium.new_context(
            base_url=live.url,
            viewport=VIEWPORT,  # type: ignore[arg-type]
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            **options,
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
