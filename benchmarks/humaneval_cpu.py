"""HumanEval development problems on the default CPU engine: pass@1 greedy, pass@1 of code self-consistency (n=8,
voting by behaviour), and pass@8 from the same 8 samples (unbiased estimator). Every candidate is graded in the
sandbox. Writes results/bench/humaneval_cpu.json.
Usage: python benchmarks/humaneval_cpu.py --data FILE [--problems 40] [--max-tokens 384]
"""
from __future__ import annotations

import argparse
import asyncio

from common import evaluate, start_vllm, write

from tts import tasks
from tts.strategies.code_sc import CodeSCConfig
from tts.strategies.self_consistency import GreedyConfig
from tts.tasks import humaneval


async def main(args) -> None:
    task = tasks.get("humaneval")
    problems = task.load(args.data)[: args.problems]
    by_id = {p.id: p for p in problems}
    engine = start_vllm()
    try:
        greedy, _ = await evaluate(engine, task, "greedy", GreedyConfig(max_tokens=args.max_tokens), problems,
                                   f"humaneval-greedy-{len(problems)}", concurrency=4)
        if args.greedy_only:  # the figures say what was measured: greedy alone, graded by the runner itself
            print(write("humaneval_cpu", {"problems": len(problems), "greedy_pass@1": greedy["accuracy"],
                                          "greedy": greedy, "graded": greedy.get("graded"),
                                          "code_sc": "not measured (--greedy-only)"}))
            return
        code_sc, rows = await evaluate(engine, task, "code-sc", CodeSCConfig(n=8, max_tokens=args.max_tokens),
                                       problems, f"humaneval-codesc-{len(problems)}", concurrency=2)
    finally:
        await engine.aclose()
    pass1 = pass8 = 0.0
    for row in rows:  # grade every sample of every problem, in the sandbox
        samples = row.get("samples", [])
        passed = await asyncio.gather(*(humaneval.run_tests(by_id[row["id"]], s.get("answer")) for s in samples))
        n, c = len(samples), sum(passed)
        if n:
            pass1 += humaneval.pass_at_k(n, c, 1)
            pass8 += humaneval.pass_at_k(n, c, min(8, n))
    print(write("humaneval_cpu", {
        "problems": len(problems), "greedy_pass@1": greedy["accuracy"], "greedy": greedy,
        "code_sc_n8_pass@1": code_sc["accuracy"], "code_sc": code_sc,
        "sampled_pass@1": round(pass1 / len(rows), 4), "pass@8": round(pass8 / len(rows), 4)}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--greedy-only", action="store_true", help="skip code-sc (n=8): about 8x the tokens")
    asyncio.run(main(ap.parse_args()))
