"""`tts report`: every figure means what its header says."""
import json

from tests.test_cli import tts
from tts.app.report import subset_curve_refusal, table


def run(tmp_path, run_id, *args):
    r = tts("eval", "--engine", "sim", "--task", "demo", "-n", "8", "--concurrency", "4", "--sim-latency", "0.01",
            "--no-progress", "--run-id", run_id, *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path / "results" / run_id


def test_wall_seconds_is_the_runs_wall_time_not_the_sum_over_problems(tmp_path):
    path = run(tmp_path, "w", "--no-early-stop")
    rows = [json.loads(x) for x in (path / "results.jsonl").read_text().splitlines()]
    summary = json.loads((path / "summary.json").read_text())
    text, _ = table([path])
    wall = float(text.splitlines()[-1].split()[-1])
    assert abs(wall - summary["wall_seconds"]) < 0.11
    assert wall < 0.6 * sum(r["seconds"] for r in rows)  # 4 problems at a time: the sum would be ~4x


def test_subset_curves_are_refused_for_early_stopped_runs(tmp_path):
    stopped = run(tmp_path, "es", "--sim-accuracy", "0.95")
    rows = [json.loads(x) for x in (stopped / "results.jsonl").read_text().splitlines()]
    config = json.loads((stopped / "config.json").read_text())
    assert any(r["stopped_early"] for r in rows)
    assert "early-stopped" in subset_curve_refusal(config, rows)
    full = run(tmp_path, "full", "--no-early-stop")
    rows = [json.loads(x) for x in (full / "results.jsonl").read_text().splitlines()]
    assert subset_curve_refusal(json.loads((full / "config.json").read_text()), rows) is None
    r = tts("report", str(stopped), str(full), "--plots", "plots", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "plots" / "demo.png").stat().st_size > 10_000


def test_report_draws_a_policy_replay_frontier(tmp_path):
    import json
    import subprocess
    import sys

    replay = tmp_path / "replay.json"
    pol = lambda share, acc: {"token_share_of_sc16": share, "accuracy": acc, "ci95": [acc - 0.1, acc + 0.1]}  # noqa: E731
    replay.write_text(json.dumps({"sets": {"gsm8k": {"problems": 40, "policies": {
        "sc@8": pol(0.5, 0.8), "sc@16": pol(1.0, 0.85), "deepconf-keep0.9": pol(0.4, 0.84),
        "job-budget-25%": pol(0.25, 0.8)}}}}))
    cli = [sys.executable, "-m", "tts.app.cli", "report", "--replay"]
    r = subprocess.run([*cli, str(replay), "--plots", str(tmp_path / "p")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    png = tmp_path / "p" / "replay.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    r = subprocess.run([*cli, str(tmp_path / "missing.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.json'}: missing (policy replay)"]


def test_runs_of_one_name_in_two_folders_keep_their_own_figures(tmp_path):
    import shutil

    first = run(tmp_path, "same", "--no-early-stop")
    other = tmp_path / "elsewhere" / "same"
    shutil.copytree(first, other)
    summary = json.loads((other / "summary.json").read_text())
    summary["engine_applied"] = {"pool": {"policy": "affinity", "replicas": [
        {"name": "http://replica-b/v1", "requests": 7, "completion_tokens": 70, "prompt_tokens": 700,
         "cached_prompt_tokens": 0, "failures": 0, "busy_seconds": 1.0, "healthy": True}]}}
    (other / "summary.json").write_text(json.dumps(summary))
    text, by_task = table([first, other])
    assert [path for path, *_ in by_task["demo"]] == [first, other]
    assert text.count("replica-b") == 1 and text.splitlines()[-1].strip().startswith("http://replica-b")
