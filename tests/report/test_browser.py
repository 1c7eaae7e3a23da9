"""The report in headless Chromium: it loads without errors and every image renders with a size.

Chromium and chromedriver are Debian's (``/usr/bin/chromium``,
``/usr/bin/chromedriver``). Selenium gets their paths and never
downloads a driver. The test skips when they are missing, except under CI
(``CI=true``), where their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.query.state import AnalystState
from darkvec_stream.report import ReportOptions, build_report, write_report

CHROMIUM = os.environ.get("DARKVEC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DARKVEC_CHROMEDRIVER", "/usr/bin/chromedriver")
# Without the background-networking switches Chromium tries to reach
# update and sync services, which fail on a closed network.
CHROMIUM_SWITCHES = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
)
IMAGE_STATE_SCRIPT = """
return Array.from(document.images).map(image => {
  image.scrollIntoView();
  const box = image.getBoundingClientRect();
  return {complete: image.complete, natural: image.naturalWidth, width: box.width, height: box.height,
          alt: image.alt};
});
"""

pytestmark = pytest.mark.slow


def _browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(path) and os.access(path, os.X_OK))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return ", ".join(missing) or None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"headless Chromium test cannot run under CI: missing {missing}")
        pytest.skip(f"missing {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for switch in (*CHROMIUM_SWITCHES, f"--user-data-dir={profile}"):
        options.add_argument(switch)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        # Selenium Manager would otherwise try to download a driver.
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _check_page(driver: object, page: Path, minimum_images: int) -> None:
    driver.get(page.resolve().as_uri())  # type: ignore[attr-defined]
    assert driver.title  # type: ignore[attr-defined]
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]  # type: ignore[attr-defined]
    assert severe == []
    images = driver.execute_script(IMAGE_STATE_SCRIPT)  # type: ignore[attr-defined]
    assert len(images) >= minimum_images
    for image in images:
        assert image["complete"], image["alt"]
        assert image["natural"] > 0, image["alt"]
        assert image["width"] > 0, image["alt"]
        assert image["height"] > 0, image["alt"]


def test_hostile_report_renders(browser: object, hand_state: AnalystState, tmp_path: Path) -> None:
    content = build_report(hand_state, KnnLabeller(k=1, min_similarity=-1.0, min_margin=0.0), ReportOptions())
    html_path, _ = write_report(content, tmp_path)
    _check_page(browser, html_path, minimum_images=6)
    # No script ran: a hostile string that had become markup would have added elements.
    assert browser.execute_script("return document.scripts.length") == 0  # type: ignore[attr-defined]


def test_simulated_report_renders(browser: object, simulated_report: tuple[Path, str]) -> None:
    _check_page(browser, simulated_report[0] / "report.html", minimum_images=2 * 4 + 1)


def test_broken_image_fails_the_check(browser: object, tmp_path: Path) -> None:
    # The check itself must be able to fail: a PNG data URI with bad bytes does not decode.
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><title>broken</title><img alt="bad" src="data:image/png;base64,AAAA">')
    with pytest.raises(AssertionError):
        _check_page(browser, page, minimum_images=1)
