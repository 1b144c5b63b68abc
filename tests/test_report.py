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
