"""The README's screenshot of `vaekit serve`: serve RUN, pick two samples, upload an image, capture.

.venv/bin/python docs/explorer_screenshot.py runs/demo IMAGE docs/explorer.png
"""

import shutil
import sys

from playwright.sync_api import sync_playwright

from vaekit.serve import create_app, running

FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


def main(run: str, image: str, output: str) -> None:
    with running(create_app(run)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        page.locator("#samples img").nth(3).click()
        page.locator("#samples img").nth(9).click()
        page.locator("#mix").fill("0.3")
        page.set_input_files("#upload-b", image)
        page.wait_for_function("document.querySelectorAll('#traversal img').length === 9")
        page.wait_for_timeout(1500)
        page.screenshot(path=output, full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
