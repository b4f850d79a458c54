"""Pages in a real browser: headless Debian Chromium driven by Selenium against a real server."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy.engine import Engine

from api.main import create_app
from tests.conftest import ROOT
from tests.services import IN_CI, free_port
from triage.settings import Settings

SHOTS = ROOT / "var" / "screenshots"


@pytest.fixture
def server(settings: Settings, engine: Engine) -> Iterator[str]:
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)
    app.state.engine.dispose()


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        if IN_CI:
            pytest.fail("chromium and chromium-driver are needed under CI")
        pytest.skip("chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to read CSP refusals
    profile = tempfile.mkdtemp(prefix="chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{request.node.name}.png"))
    # Every page a test visited kept to the pages' Content-Security-Policy: nothing the browser
    # refused to load or run (it logs each refusal to the console).
    refused = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
    assert not refused, refused
