"""report.html as a person sees it: rendered by headless Chromium (the system's, driven by
Playwright), every image loads, nothing is fetched and nothing goes wrong on the page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hyperpilot.pipelines.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root (CI) Chromium needs --no-sandbox; the rest keep it off this machine's closed network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install -e '.[test]')")
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page_of(tmp_path_factory: pytest.TempPathFactory):
    """Open a report.html in a fresh headless Chromium; what the page said and fetched."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        def open_page(path: Path) -> dict:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            seen: dict = {"console": [], "errors": [], "requests": []}
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            seen["images"] = page.evaluate(
                "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
            seen["title"] = page.title()
            seen["text"] = page.inner_text("body")
            page.close()
            return seen

        yield open_page
        browser.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "run"
    assert main(["run", "predict the diagnosis, optimise roc auc", "--data",
                 "sklearn:breast_cancer", "--out", str(out), "--llm", "none", "--trials", "6",
                 "--no-experience"]) == 0
    return out


def test_every_image_loads_and_the_page_has_no_console_errors(page_of, run_dir: Path) -> None:
    seen = page_of(run_dir / "report.html")
    assert seen["images"], "the page shows no image"
    broken = [alt for alt, complete, width in seen["images"] if not complete or width == 0]
    assert broken == []
    assert {alt for alt, _, _ in seen["images"]} >= {"Search trace", "Model families",
                                                     "Permutation importance",
                                                     "Confusion matrix"}
    assert [m for m in seen["console"] if m[0] in ("error", "warning")] == []
    assert seen["errors"] == []
    # The page itself, and nothing else: no request leaves the file.
    assert all(url.startswith(("file:", "data:")) for url in seen["requests"])
    assert seen["title"].startswith("hyperpilot run")
    assert "Verification" in seen["text"] and "holdout roc_auc" in seen["text"]


def test_a_broken_image_is_caught(page_of, tmp_path: Path) -> None:
    """The check above can fail: a page with an image that does not load fails it."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                    '<img alt="gone" src="data:image/png;base64,AAAA"></body></html>')
    seen = page_of(page)
    assert seen["images"] == [["gone", True, 0]]
