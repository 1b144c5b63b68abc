"""`tts view` as a person uses it: the page of a run opened in headless Chromium, the problem table there, the filter
working, a click showing the problem's timeline; and the page is self-contained (no network, no external asset)."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

TTS = [sys.executable, "-m", "tts.app.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        reason = f"playwright not installed: {e}"
    else:
        if CHROMIUM:
            return sync_playwright
        reason = "no chromium on this machine (Debian package chromium)"
    if os.environ.get("TTS_REQUIRE_REAL_ENGINE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("view")
    r = subprocess.run([*TTS, "eval", "--engine", "sim", "--task", "demo", "-n", "8", "--sim-accuracy", "0.6",
                        "--sim-latency", "0.002", "--run-id", "sc", "--no-progress", "--output", str(tmp)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*TTS, "view", str(tmp / "sc")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"view: {tmp / 'sc' / 'view.html'}", r.stderr
    return tmp / "sc" / "view.html"


def test_page_is_self_contained(page_file):
    html = page_file.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no external script, style or image
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert len(data["problems"]) == 20 and all(p["bars"] for p in data["problems"])


def test_table_filter_and_timeline_in_chromium(page_file, tmp_path):
    sync_playwright = _browser()
    rows = [json.loads(x) for x in (page_file.parent / "results.jsonl").read_text().splitlines()]
    wrong = [r["id"] for r in rows if not r["correct"]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            requests = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_file.as_uri())
            assert page.locator("#problems tbody tr").count() == 20
            assert "accuracy" in page.locator("#summary").inner_text()
            page.click("#filters button[data-f=wrong]")
            shown = page.locator("#problems tbody tr td:first-child").all_inner_texts()
            assert sorted(shown) == sorted(wrong)  # the filter shows exactly the wrong ones
            page.click("#filters button[data-f=all]")
            page.click("th[data-k=tokens]")  # sort by tokens, ascending
            tokens = [int(t) for t in page.locator("#problems tbody tr td:nth-child(6)").all_inner_texts()]
            assert tokens == sorted(tokens)
            target = rows[0]
            page.click(f'#problems tbody tr[data-id="{target["id"]}"]')
            assert page.locator("#detail-title").inner_text().startswith(target["id"])
            branches = page.locator("#timeline rect.bar")
            assert branches.count() == len(target["samples"])  # one bar per sample branch
            assert page.locator("#samples details").count() == len(target["samples"])
            # what the model saw: the question and the prompt, with its sampling parameters
            assert target["id"] and page.locator("#question").inner_text().startswith(
                page_data_question(page_file, target["id"]))
            assert page.locator("#prompts details").count() >= 1
            page.click("#prompts details summary")
            assert "Solve the following math problem" in page.locator("#prompts pre").first.inner_text()
            assert '"temperature":0.7' in page.locator("#prompts summary").first.inner_text()
            # each bar says whether its answer is right; it agrees with the row's grading of the final answer
            rights = branches.evaluate_all("els => els.map(e => e.dataset.right)")
            bars = page_problem(page_file, target["id"])["bars"]
            assert rights == [{True: "true", False: "false", None: "null"}[b[8]] for b in bars]
            # a branch that gave the final answer is graded as the row is
            assert all(b[8] == target["correct"] for b in bars if b[6] == target["answer"])
            assert all((b[8] is None) == (b[6] is None) for b in bars)  # every answered branch is graded
            assert "true" in rights and "false" in rights
            assert "SIMULATOR" in page.locator("#summary").inner_text()
            # ids sort as people read them
            page.click("th[data-k=id]")
            ids = page.locator("#problems tbody tr td:first-child").all_inner_texts()
            assert ids[:3] == ["demo-1", "demo-2", "demo-3"] and ids.index("demo-10") == 9
            page.screenshot(path=str(tmp_path / "view.png"))
            assert (tmp_path / "view.png").stat().st_size > 20_000
            assert all(u.startswith("file:") for u in requests)  # nothing fetched from anywhere else
        finally:
            browser.close()


def page_problem(page_file, problem_id: str) -> dict:
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page_file.read_text(),
                                re.S).group(1))
    return next(p for p in data["problems"] if p["id"] == problem_id)


def page_data_question(page_file, problem_id: str) -> str:
    question = page_problem(page_file, problem_id)["question"]
    assert question and len(question) > 10
    return question[:40]


def test_ties_are_explained():
    from tts.app.viewer import _tie

    assert _tie({"3": 2, "4": 2, "5": 1}, "3").startswith("tie at 2 between 3, 4: 3 wins")
    assert _tie({"3": 3, "4": 2}, "3") is None
