"""The dashboard's web UI in a real browser, for the tests that open it: headless Chromium
driven through Selenium, with the fixtures ``chromium`` (one browser per module),
``logged_in`` (logged in to the module's ``dashboard_cluster``), ``browser`` and
``fresh_browser`` (one test's ``Browser``; logged out for the second). A test module
imports the fixtures it uses and marks its tests ``needs_browser``.

Debian's ``chromium`` and ``chromium-driver`` run it (``.ci/run`` installs them); nothing is
downloaded. Every test ends by reading the browser's console, which must hold no error but
the ones the test expects, and the page's text, which must show no ``undefined``, ``NaN`` or
``null``. A failed test leaves a screenshot, the page's HTML and the console under pytest's
temporary directory and prints where.
"""

from __future__ import annotations

import os
import re

import psutil
import pytest

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the tests that need it are skipped
    webdriver = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: What a page may take to show a change (the live stream polls every second).
UI_TIMEOUT_S = 20
#: What a page shows when it renders a value that is missing or not text.
_GARBAGE = re.compile(r"\bundefined\b|\bNaN\b|\[object |(^|\n)null($|\n)")

needs_browser = pytest.mark.skipif(
    webdriver is None or not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs selenium (the test extra), and Debian's chromium and chromium-driver "
           "(.ci/run installs them)")


# -- the browser --

@pytest.fixture(scope="module")
def chromium(tmp_path_factory, module_daemons):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    web = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    web.set_page_load_timeout(30)
    # The browser (under chromedriver) lives for the module: no test leaked its renderers.
    module_daemons.append(psutil.Process(web.service.process.pid))
    try:
        yield web
    finally:
        web.quit()


class Browser:
    """The module's browser, for one test: helpers to open pages and wait on them, and the
    console errors the test expects (``expect_console``)."""

    def __init__(self, web, url: str):
        self.web = web  #: the Selenium WebDriver (``driver`` is the raggio driver fixture)
        self.url = url
        self.expected_errors: list[str] = []

    def expect_console(self, fragment: str) -> None:
        """A console error that contains ``fragment`` is part of the test."""
        self.expected_errors.append(fragment)

    def open(self, route: str) -> None:
        """Load the app at ``#/route`` afresh, and mark the window: ``reloaded()`` then says
        whether the page was loaded again since."""
        self.web.get(f"{self.url}/#/{route}")
        self.wait_for(lambda: self.web.execute_script("return document.title")
                      .endswith("raggio dashboard"), "the app to start")
        self.web.execute_script("window.__sameLoad = true")

    def go(self, route: str) -> None:
        """Follow an in-app link to ``#/route`` (no reload)."""
        self.web.execute_script("location.hash = arguments[0]", f"#/{route}")

    def reloaded(self) -> bool:
        return not self.web.execute_script("return window.__sameLoad === true")

    def wait_for(self, condition, what: str, timeout_s: float = UI_TIMEOUT_S):
        """Wait until ``condition()`` is truthy and return it (elements go stale as pages
        redraw: that is a retry, not a failure)."""
        def attempt(_driver):
            try:
                return condition()
            except StaleElementReferenceException:
                return False
        return WebDriverWait(self.web, timeout_s, poll_frequency=0.1).until(
            attempt, f"timed out after {timeout_s} s waiting for {what}")

    def click(self, css: str, what: str, timeout_s: float = UI_TIMEOUT_S) -> None:
        """Click the element ``css`` selects once it is there; found and clicked in one go,
        so that a redraw between the two is a retry."""
        def clicked():
            self.web.find_element(By.CSS_SELECTOR, css).click()
            return True
        self.wait_for(clicked, what, timeout_s)

    def text(self, css: str = "#page") -> str:
        return "\n".join(e.text for e in self.web.find_elements(By.CSS_SELECTOR, css))

    def wait_text(self, fragment: str, css: str = "#page", timeout_s: float = UI_TIMEOUT_S):
        return self.wait_for(lambda: fragment in self.text(css),
                             f"{fragment!r} in {css}", timeout_s)

    def row(self, key: str):
        """The table row of an entity (its id or task:attempt), or None."""
        rows = self.web.find_elements(By.CSS_SELECTOR, f'tr[data-key="{key}"]')
        return rows[0] if rows else None

    def wait_row_text(self, key: str, fragment: str, timeout_s: float = UI_TIMEOUT_S):
        return self.wait_for(lambda: (row := self.row(key)) is not None and fragment in row.text,
                             f"the row of {key} to show {fragment!r}", timeout_s)

    def console_errors(self) -> list[str]:
        entries = self.web.get_log("browser")
        return [e["message"] for e in entries if e["level"] == "SEVERE"
                and not any(fragment in e["message"] for fragment in self.expected_errors)]

    def log_in(self, token: str) -> None:
        self.web.get(f"{self.url}/login#token={token}")
        self.wait_for(lambda: "/login" not in self.web.current_url, "the login to finish")


@pytest.fixture(scope="module")
def logged_in(chromium, dashboard_cluster):
    """The module's browser, logged in to the module's cluster."""
    Browser(chromium, dashboard_cluster.url).log_in(dashboard_cluster.token)
    return chromium


def _keep_evidence(browser: Browser, name: str, out_dir, console: list | None = None) -> str:
    """Save the page's screenshot, HTML and console (``console``: what was read of it
    already) under ``out_dir``; return the files' common stem."""
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, name)
    browser.web.save_screenshot(stem + ".png")
    with open(stem + ".html", "w") as f:
        f.write(browser.web.page_source)
    with open(stem + ".console.txt", "w") as f:
        f.write("\n".join(str(e) for e in (console or browser.web.get_log("browser"))))
    return stem


def browser_for(request, web, url: str):
    browser = Browser(web, url)
    web.get_log("browser")  # what earlier tests left
    failed_before = request.session.testsfailed
    yield browser
    # The test's own report comes before its teardown: a count that grew means it failed.
    failed = request.session.testsfailed > failed_before
    errors = [] if failed else browser.console_errors()
    shown = "" if failed else browser.web.execute_script("return document.body.innerText")
    garbage = _GARBAGE.search(shown)
    if failed or errors or garbage:
        out_dir = request.config._tmp_path_factory.getbasetemp() / "screenshots"
        stem = _keep_evidence(browser, request.node.name, out_dir, errors)
        print(f"\nscreenshot of the failed test's page: {stem}.png (and .html, .console.txt)")
    assert not errors, f"the browser's console has errors: {errors}"
    assert garbage is None, f"the page shows {garbage.group(0)!r}: {shown[:2000]}"


@pytest.fixture
def browser(request, logged_in, dashboard_cluster):
    """The logged-in browser for one test; its console must stay free of errors."""
    yield from browser_for(request, logged_in, dashboard_cluster.url)


@pytest.fixture
def fresh_browser(request, chromium, dashboard_cluster):
    """The module's browser without a session cookie (logged out)."""
    chromium.delete_all_cookies()
    yield from browser_for(request, chromium, dashboard_cluster.url)
