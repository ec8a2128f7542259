"""End to end in a real browser: headless Chromium, driven by Playwright, on the served page."""

import base64
import io
import shutil

import pytest
from PIL import Image

from vaekit.web import running

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
# Chromium as the closed network here needs it: no sandbox as root, no background connections.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DECODED = "img => img.complete && img.naturalWidth > 0"


def image_src(page, selector: str) -> str:
    return page.eval_on_selector(selector, "img => img.src")


def wait_for_new_image(page, selector: str, old: str) -> str:
    page.wait_for_function(
        f"([s, old]) => {{ const img = document.querySelector(s); return img.src !== old && ({DECODED})(img); }}",
        arg=[selector, old],
    )
    return image_src(page, selector)


def test_the_page_samples_interpolates_and_encodes_an_upload(app, tmp_path):
    upload = tmp_path / "green.png"
    Image.new("RGB", (50, 50), (20, 200, 40)).save(upload)
    with running(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]", timeout=30000)

        samples = page.locator("#samples img")
        assert samples.count() == 16
        assert all(samples.nth(i).evaluate(DECODED) for i in range(16))

        samples.nth(0).click()  # into A
        samples.nth(1).click()  # then into B
        halfway = wait_for_new_image(page, "#mixed", "")
        page.locator("#mix").fill("0.95")
        near_b = wait_for_new_image(page, "#mixed", halfway)
        assert near_b != halfway
        assert page.locator("#mix-value").text_content() == "0.95"

        old_recon = image_src(page, "#recon-a")
        page.set_input_files("#upload-a", str(upload))
        assert wait_for_new_image(page, "#recon-a", old_recon).startswith("data:image/png;base64,")
        assert page.eval_on_selector("#original-a", DECODED)
        with Image.open(io.BytesIO(base64.b64decode(image_src(page, "#original-a").split(",", 1)[1]))) as shown:
            assert shown.convert("RGB").getpixel((8, 8)) == (20, 200, 40)  # the upload, at the model's size
            assert shown.size == (16, 16)
        assert page.locator("#attribute-sliders input").count() == 2
        page.wait_for_function("document.querySelectorAll('#traversal img').length === 9")
        assert page.locator("#error").is_hidden()
        assert not errors
        browser.close()


def test_an_attribute_name_that_is_markup_stays_text(tmp_path):
    """A label CSV or a shared model may name an attribute with HTML: it is shown, never run."""
    import torch

    from tests.helpers import tiny_config
    from vaekit.explore.attributes import AttributeVectors
    from vaekit.training.trainer import Trainer
    from vaekit.web import create_app

    run = Trainer(tiny_config(**{"train.max_steps": 2}), tmp_path / "run").fit()
    hostile = "<img src=x onerror=\"document.title='XSS_RAN'\">"
    AttributeVectors({hostile: torch.ones(4)}, {hostile: {"with": 1, "without": 1}}).save(run / "model")
    with running(create_app(run)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        page.wait_for_timeout(500)
        assert page.title() != "XSS_RAN"
        assert page.locator("#attribute-sliders span").first.text_content() == hostile
        assert page.locator("#attribute-sliders img").count() == 0
        browser.close()


def test_the_api_docs_page_lists_every_endpoint_with_no_network_but_the_server(app):
    with running(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        elsewhere = []
        page.on("request", lambda request: None if request.url.startswith(url) else elsewhere.append(request.url))
        page.goto(url + "api/docs" if url.endswith("/") else url + "/api/docs")
        page.wait_for_selector("section.endpoint")
        headings = page.locator("section.endpoint h2").all_text_contents()
        assert "POST /api/samples" in headings and "GET /api/info" in headings
        assert not elsewhere and page.locator("#error").is_hidden()
        browser.close()
