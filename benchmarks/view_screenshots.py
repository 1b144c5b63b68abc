"""Screenshots of `tts view` pages of real runs, as a person sees them: the page opened in headless Chromium, one
problem clicked (the first stopped early, else the first), the timeline in view.

Usage: python benchmarks/view_screenshots.py NAME=RUN_DIR [NAME=RUN_DIR ...]
Writes results/screenshots/NAME.png (and each run's view.html stays in its run folder).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tts.app.viewer import write_html

    out_dir = ROOT / "results" / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        for arg in sys.argv[1:]:
            name, run = arg.split("=", 1)
            run = str(Path(run).resolve())
            page_file = write_html(Path(run))
            rows = [json.loads(x) for x in (Path(run) / "results.jsonl").read_text().splitlines() if x.strip()]
            pick = next((r for r in rows if r.get("stopped_early")), rows[0])
            tab = browser.new_page(viewport={"width": 1500, "height": 1000})
            tab.goto(page_file.as_uri())
            tab.click(f'#problems tbody tr[data-id="{pick["id"]}"]')
            tab.wait_for_selector("#detail-title")
            shot = out_dir / f"{name}.png"
            tab.screenshot(path=str(shot), full_page=False)
            print(f"{name}: problem {pick['id']} -> {shot}")
        browser.close()


if __name__ == "__main__":
    main()
