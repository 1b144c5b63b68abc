"""Wall time of the job-level budget against SC at the same tokens, replayed on one recording (paired: the same
samples), with the same number of samples in flight.

The replay engine decodes every trace at one speed (`--sim-latency` s/token) whatever else is in flight: a model of a
batched engine with room to spare, where wall time is what the schedule makes it. Compared:
- SC@8, `--concurrency C` problems at once (8C samples in flight);
- the job-level budget at SC@8's tokens, draws of 2 decided as slots free, `--concurrency 4C` draws (8C samples);
- optionally the same budget run by an older tts (`--old DIR`: a folder holding an older `tts` package with its
  strategies/, tasks/ and engine_adapters/ under it), whose rounds wait for their last draw.

Usage: python benchmarks/job_budget_wall.py RECORDING_RUN_DIR [--old DIR] [--concurrency C] [--latency S]
Writes results/bench/job_budget_wall.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(recording: Path, config: dict, args: list[str], work: Path, name: str, latency: str,
        pythonpath: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "tts.app.cli", "eval", "--engine", "replay", "--traces",
           str(recording / "recorded_traces.jsonl"), "--task", config["task"], "--limit", str(config["limit"]),
           "--max-tokens", str(config["max_tokens"]), "--sim-latency", latency, "--no-progress",
           "--output", str(work), "--run-id", name, *args]
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip()[-500:]}")
    s = json.loads((work / name / "summary.json").read_text())
    rows = [json.loads(x) for x in (work / name / "results.jsonl").read_text().splitlines() if x.strip()]
    out = {"wall_s": s["wall_seconds"], "tokens": s["completion_tokens"],
           "correct": sum(bool(r.get("correct")) for r in rows), "problems": len(rows),
           "tokens_per_s": round(s["completion_tokens"] / s["wall_seconds"], 1), "args": " ".join(args)}
    if s.get("allocation"):
        out["draws_or_rounds"] = {k: s["allocation"][k] for k in ("draws", "rounds") if k in s["allocation"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recording", type=Path)
    ap.add_argument("--old", help="a folder with an older tts package (its rounds wait for their last draw)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--latency", default="0.005")
    ap.add_argument("--limit", type=int, help="the first K problems (default: those the recording holds whole)")
    a = ap.parse_args()
    config = json.loads((a.recording / "config.json").read_text())
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from policy_replay import recorded_prefix

    config["limit"] = a.limit or recorded_prefix(a.recording)
    config["max_tokens"] = config.get("max_tokens") or config["strategy_config"]["max_tokens"]
    c = a.concurrency
    res: dict = {"command": "python benchmarks/job_budget_wall.py " + " ".join(sys.argv[1:]),
                 "recording": str(a.recording), "latency_s_per_token": float(a.latency),
                 "samples_in_flight": 8 * c}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        res["sc8"] = run(a.recording, config, ["-s", "sc", "-n", "8", "--no-early-stop", "--concurrency", str(c)],
                         work, "sc8", a.latency)
        total = str(res["sc8"]["tokens"])
        budget = ["-s", "sc", "-n", "16", "--budget-tokens-total", total, "--concurrency", str(4 * c)]
        res["job_budget"] = run(a.recording, config, budget, work, "budget", a.latency)
        if a.old:
            res["job_budget_rounds_old"] = run(a.recording, config, budget, work, "old", a.latency, a.old)
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"{k}: {v}")
    (ROOT / "results" / "bench" / "job_budget_wall.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
