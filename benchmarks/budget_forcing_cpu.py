"""Budget forcing on the CPU engine: the same GSM8K problems, greedy, with the local model asked to think inside
<think> tags, without and with a thinking budget; thinking tokens per sample before and after the cap.

Usage: python benchmarks/budget_forcing_cpu.py [--limit 8] [--budget 48] [--runs /tmp/runs]
Runs `tts eval` twice (one engine at a time) unless the run folders exist; writes results/bench/budget_forcing_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--budget", type=int, default=48)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/runs"))
    args = ap.parse_args()
    common = ["--task", "gsm8k", "--strategy", "greedy", "--limit", str(args.limit), "--max-tokens", "320",
              "--concurrency", "4", "--reasoning-opt", "instruct=true", "--output", str(args.runs), "--no-progress"]
    out = {"command": "tts eval " + " ".join(common) + " [--thinking-budget N]", "model": "qwen2.5-coder-0.5b"}
    for name, extra in (("free", []), (f"budget_{args.budget}", ["--thinking-budget", str(args.budget)])):
        run = args.runs / f"bf-{name}"
        if not (run / "summary.json").exists():
            subprocess.run([sys.executable, "-m", "tts.app.cli", "eval", *common, *extra, "--run-id", run.name],
                           check=True, cwd=ROOT)
        rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines() if x.strip()]
        samples = [s for r in rows for s in r.get("samples", [])]
        out[name] = {"problems": len(rows), "correct": sum(bool(r.get("correct")) for r in rows),
                     "answered": sum(r.get("answer") is not None for r in rows),
                     "thinking_tokens_per_sample": [s.get("thinking_tokens", 0) for s in samples],
                     "tokens_per_sample": [s["tokens"] for s in samples],
                     "calls": sum(r["usage"]["calls"] for r in rows)}
    path = ROOT / "results" / "bench" / "budget_forcing_cpu.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
