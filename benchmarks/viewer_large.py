"""Does `tts view` stay usable on a large run? 1,200 problems x 12 samples (14,400 samples) on the simulator: the
HTML's size, the time to write it, and in headless Chromium the time until the problem table is drawn and the time a
click takes to show a problem's timeline and samples.

Usage: python benchmarks/viewer_large.py   (needs Debian's chromium and the playwright package)
Writes results/bench/viewer_large.json.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS, N = 1200, 12


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "problems.jsonl"
        with data.open("w") as f:
            for i in range(PROBLEMS):
                f.write(json.dumps({"question": f"Ann has {i} apples and buys {i} more. How many?",
                                    "answer": f"#### {2 * i}"}) + "\n")
        tts = [sys.executable, "-m", "tts.app.cli"]
        subprocess.run([*tts, "eval", "--engine", "sim", "--task", "gsm8k", "--data", str(data), "-n", str(N),
                        "--sim-accuracy", "0.6", "--sim-latency", "0", "--concurrency", "64", "--run-id", "big",
                        "--output", tmp, "--no-progress"], check=True, capture_output=True)
        t0 = time.perf_counter()
        subprocess.run([*tts, "view", f"{tmp}/big"], check=True, capture_output=True)
        write_s = time.perf_counter() - t0
        page = Path(tmp) / "big" / "view.html"
        out = {"problems": PROBLEMS, "samples": PROBLEMS * N, "html_bytes": page.stat().st_size,
               "write_seconds_incl_startup": round(write_s, 2)}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            t0 = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_selector("#problems tbody tr")
            out["open_to_table_seconds"] = round(time.perf_counter() - t0, 3)
            out["rows_drawn"] = tab.locator("#problems tbody tr").count()
            t0 = time.perf_counter()
            tab.locator("#problems tbody tr").nth(PROBLEMS // 2).click()
            tab.wait_for_selector("#timeline rect.bar")
            out["click_to_timeline_seconds"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            tab.click("#filters button[data-f=wrong]")
            out["filter_seconds"] = round(time.perf_counter() - t0, 3)
            browser.close()
    path = ROOT / "results" / "bench" / "viewer_large.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
