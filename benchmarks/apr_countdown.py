"""APR vs serial chain-of-thought on generated Countdown instances (4 numbers), on the default CPU engine.

Both at the same per-call context limit: every call's prompt + output stays within --context tokens. Reports
accuracy, total tokens, the longest context of any call, wall time, and the share of child prompt tokens served from
the prefix cache. Writes results/bench/apr_countdown.json.
Usage: python benchmarks/apr_countdown.py [--instances 30] [--context 2048]
"""
from __future__ import annotations

import argparse
import asyncio

from common import evaluate, start_vllm, write

from tts import tasks
from tts.strategies.apr import APRConfig
from tts.strategies.self_consistency import GreedyConfig
from tts.tasks import countdown


async def main(args) -> None:
    task = tasks.get("countdown")
    problems = countdown.generate(args.instances, 4, seed=0)
    engine = start_vllm(max_model_len=args.context)
    try:
        serial, _ = await evaluate(engine, task, "greedy", GreedyConfig(max_tokens=args.serial_tokens), problems,
                                   f"countdown-serial-{args.instances}")
        apr_config = APRConfig(thread_tokens=args.thread_tokens, child_tokens=args.child_tokens, max_spawns=1)
        apr, rows = await evaluate(engine, task, "apr", apr_config, problems, f"countdown-apr-{args.instances}")
    finally:
        await engine.aclose()
    child_prompt = sum(r["meta"]["child_prompt_tokens"] for r in rows if r.get("meta"))
    child_cached = sum(r["meta"]["child_cached_prompt_tokens"] for r in rows if r.get("meta"))
    spawned = sum(1 for r in rows if r.get("meta") and len(r["meta"]["threads"]) > 1)
    apr.update(child_prompt_tokens=child_prompt, child_cached_prompt_tokens=child_cached,
               child_cache_share=round(child_cached / child_prompt, 4) if child_prompt else None,
               problems_where_parent_spawned=spawned)
    print(write("apr_countdown", {"instances": args.instances, "numbers": 4, "context_limit": args.context,
                                  "serial_cot": serial, "apr": apr,
                                  "paper_anchor": "83.4% APR vs 60.0% serial at 4k context, trained model"}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=30)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--serial-tokens", type=int, default=512)
    ap.add_argument("--thread-tokens", type=int, default=384)
    ap.add_argument("--child-tokens", type=int, default=256)
    asyncio.run(main(ap.parse_args()))
