"""Greedy vs self-consistency vs SR vs PDR on the default CPU engine, at the same problems and settings.

For each data set (30 SVAMP + 30 GSM8K problems by default): greedy, SC n=8 (all 8 samples kept, with top-5
logprobs so every voting rule can be re-scored on the same samples), SR with 3 rounds, PDR with M=4 drafts and 2
rounds. Each: accuracy (95% CI), generated tokens, the largest context of any call, wall time, cached prompt tokens.
Runs are resumable (results/runs/bench-strategies/...); figures go to results/bench/strategies_cpu.json.
Usage: python benchmarks/strategies_cpu.py --svamp FILE --gsm8k FILE [--problems 30] [--max-tokens 320]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts import strategies  # noqa: E402
from tts import tasks  # noqa: E402
from tts.strategies.pdr import PDRConfig, SRConfig  # noqa: E402
from tts.strategies.self_consistency import GreedyConfig, SCConfig  # noqa: E402
from tts.kit.curves import accuracy_at_n, rule_accuracy  # noqa: E402
from tts.app.runner import read_finished, run_eval  # noqa: E402
from tts.app.session import Session  # noqa: E402


def configs(max_tokens: int) -> dict:
    return {
        "greedy": GreedyConfig(max_tokens=max_tokens),
        "sc": SCConfig(n=8, max_tokens=max_tokens, early_stop=False, batch=True, logprobs=5),
        "sr": SRConfig(rounds=3, max_tokens=max_tokens),
        "pdr": PDRConfig(drafts=4, rounds=2, max_tokens=max_tokens),
    }


async def main(args) -> None:
    from tts.engine_adapters.vllm_engine import VLLMEngine
    from tts.engine_adapters.local_models import resolve

    engine = VLLMEngine.start(resolve(args.model), max_model_len=4096)
    out: dict = {"model": args.model, "problems_per_set": args.problems, "max_tokens": args.max_tokens,
                 "concurrency": args.concurrency, "sets": {}}
    runs = ROOT / "results" / "runs" / "bench-strategies"
    try:
        for set_name, task_name, path in [("svamp", "svamp", args.svamp), ("gsm8k", "gsm8k", args.gsm8k)]:
            task = tasks.get(task_name)
            problems = task.load(path)[: args.problems]
            gold = {p.id: p for p in problems}
            grade = lambda row, ans: task.grade(gold[row["id"]], ans)  # noqa: E731
            figures = {}
            for name, config in configs(args.max_tokens).items():
                if args.only and name not in args.only:
                    continue
                run_dir = runs / f"{set_name}-{name}"
                resume = (run_dir / "config.json").exists()
                t0 = time.perf_counter()
                s = await run_eval(Session(engine, task, strategies.get(name), config), problems, run_dir,
                                   {"strategy": name, "task": task_name, "data": str(path), "seed": 0,
                                    "strategy_config": config.model_dump(), "engine": "vllm", "model": args.model},
                                   resume=resume, concurrency=args.concurrency, progress=False)
                figures[name] = {k: s[k] for k in ("accuracy", "accuracy_ci95", "completion_tokens", "prompt_tokens",
                                                   "cached_prompt_tokens", "max_prompt_tokens", "calls",
                                                   "wall_seconds")}
                figures[name]["wall_seconds_this_session"] = round(time.perf_counter() - t0, 2)
                if name == "sc":
                    rows = list(read_finished(run_dir / "results.jsonl").values())
                    figures[name]["voting_rules"] = rule_accuracy(rows, grade)
                    figures[name]["accuracy_at_n"] = accuracy_at_n(rows, grade, [1, 2, 4, 8])
                if name == "pdr" or name == "sr":
                    rows = list(read_finished(run_dir / "results.jsonl").values())
                    per_round: dict[int, dict] = {}
                    for r in rows:
                        for rd in (r.get("meta") or {}).get("rounds", []):
                            agg = per_round.setdefault(rd["round"], {"runs": 0, "prompt_tokens": 0,
                                                                     "cached_prompt_tokens": 0})
                            agg["runs"] += 1
                            agg["prompt_tokens"] += rd["prompt_tokens"]
                            agg["cached_prompt_tokens"] += rd["cached_prompt_tokens"]
                    figures[name]["per_round"] = per_round
                print(set_name, name, json.dumps(figures[name]), flush=True)
                out["sets"][set_name] = figures
                dest = ROOT / "results" / "bench" / "strategies_cpu.json"
                dest.write_text(json.dumps(out, indent=2))
    finally:
        await engine.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--svamp", required=True)
    ap.add_argument("--gsm8k", required=True)
    ap.add_argument("--problems", type=int, default=30)
    ap.add_argument("--max-tokens", type=int, default=320)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--only", nargs="*", help="strategies to run (default: all)")
    asyncio.run(main(ap.parse_args()))
