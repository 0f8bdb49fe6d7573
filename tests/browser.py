"""Fixtures for tests that drive a real browser against a real server.

Import the fixtures a test module needs:

    from tests.browser import browser, live_server, logged_in_page  # noqa: F401 (fixtures)
"""
import threading

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def live_server(app):
    """The test app served over HTTP on a free port, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


# Module scope, not session: each module that imports this fixture gets a
# fixture of its own, and two Playwright instances cannot run at once.
@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, shared by the tests of a module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def logged_in_page(browser, live_server, operator):
    """A fresh browser page that logged in through the login form as `operator`."""
    context = browser.new_context(base_url=live_server)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=email]", operator.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server}/")
    yield page
    context.close()
