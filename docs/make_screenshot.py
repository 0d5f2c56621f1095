"""Rebuild docs/report.png, the README's picture of a report: a run on a bundled set, its
report.html rendered by the system's headless Chromium (Debian's chromium, driven by
Playwright from the [test] extra).

    python docs/make_screenshot.py [--out docs/report.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from hyperpilot.pipelines.cli import main

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TASK = "predict the diagnosis of the tumours, optimise roc auc"


def shoot(out: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("make_screenshot: Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        code = main(["run", TASK, "--data", "sklearn:breast_cancer", "--out", str(run),
                     "--llm", "none", "--trials", "24", "--seed", "0", "--no-experience",
                     "--no-live"])
        if code != 0:
            sys.exit(f"make_screenshot: the run failed (exit {code})")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1700})
            page.goto((run / "report.html").as_uri(), wait_until="load")
            page.screenshot(path=str(out))  # the top of the page: headline, asked, plots
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("report.png"))
    shoot(parser.parse_args().out)
