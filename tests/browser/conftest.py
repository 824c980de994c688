"""Browser tests: Playwright drives Debian's Chromium against the app served by uvicorn, with a real
Celery worker, on the test database."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.celery import app as celery_app
from tests.browser.chromium import CHROMIUM, LAUNCH_ARGS
from tests.processes import asgi_server, celery_worker

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is open, and
# Django refuses ORM calls from a thread with a running loop, so it must close before other tests run.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"No Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=LAUNCH_ARGS,
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def live_app(transactional_db: None) -> Iterator[str]:
    """The app as `make run` starts it: uvicorn and a worker, sharing the test database and broker."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    with celery_worker(), asgi_server() as url:
        yield url


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
