"""The web page in real headless Chromium (Debian's `chromium`, driven by Playwright): upload
the astronaut, see "happiness" and a Grad-CAM overlay; the screenshot is kept as an artifact
(GIMEFIVE_ARTIFACTS, default ./artifacts)."""

import os
import pathlib
import shutil

import cv2
import pytest

from test_serve import server

REPO = pathlib.Path(__file__).resolve().parents[1]


def chromium():
    """Debian's chromium; in CI its absence is a failure, elsewhere a skip."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI installs it from packages.txt")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


def test_the_page_shows_happiness_and_an_overlay_on_the_astronaut(tmp_path):
    from playwright.sync_api import expect, sync_playwright
    from skimage import data

    executable = chromium()
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    artifacts = pathlib.Path(os.environ.get("GIMEFIVE_ARTIFACTS", REPO / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with server() as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream"])  # a synthetic camera, allowed without asking
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            outside = []
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith((url, "data:", "blob:")) else None)
            page.goto(url + "/")
            page.set_input_files("#file", str(photo))
            expect(page.locator("#faces .emotion").first).to_have_text("happiness",
                                                                        timeout=60_000)
            expect(page.locator("#status")).to_have_text("1 face found.")
            expect(page.locator("#view")).to_have_attribute("data-faces", "1")
            page.check("#overlay")
            expect(page.locator("#view")).to_have_attribute("data-overlays", "1",
                                                            timeout=60_000)
            page.screenshot(path=str(artifacts / "serve_page.png"), full_page=True)
            # The webcam: Chromium's synthetic camera shows a test pattern, not a face.
            page.click("#camera")
            expect(page.locator("#snap")).to_be_visible(timeout=30_000)
            page.wait_for_function("document.getElementById('video').videoWidth > 0",
                                   timeout=30_000)
            page.click("#snap")
            expect(page.locator("#status")).to_have_text("No face found in this picture.",
                                                         timeout=60_000)
            assert not outside  # nothing fetched from anywhere but the server
        finally:
            browser.close()
    assert (artifacts / "serve_page.png").stat().st_size > 10_000
