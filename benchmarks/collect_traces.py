"""Sample N traces per problem on the CPU engine and keep everything a replay needs: each trace's text, its tokens,
its answer and grade, and its per-token DeepConf confidence (-mean of the top-k logprobs at each token).

The replays (benchmarks/policy_replay.py, benchmarks/grader_agreement.py) then compare stopping and allocation
policies on one fixed set of traces, free of sampling noise.

Usage: python benchmarks/collect_traces.py --task gsm8k --limit 40 -n 16 --model qwen2.5-coder-1.5b \
           --out /tmp/traces/gsm8k-1.5b.jsonl   [--data FILE] [--topk 10] [--max-tokens 384]
Resumable: problems already in --out are skipped. One JSON line per problem.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import time
from pathlib import Path


def _confidences(logprobs) -> list[float]:
    # DeepConf's token confidence: -(1/k) * sum of the top-k logprobs of the distribution the token came from
    return [round(-sum(lp for _, lp in t.top) / max(1, len(t.top)), 4) for t in logprobs or ()]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--data")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from tts.engine_adapters import make_engine
    from tts.kernel.types import GenerateRequest
    from tts.tasks import get

    task = get(args.task)
    problems = task.load(args.data)[args.offset: args.offset + args.limit]
    done = set()
    if args.out.exists():
        done = {json.loads(x)["id"] for x in args.out.read_text().splitlines() if x.strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    todo = [p for p in problems if p.id not in done]
    print(f"{len(todo)} problems to sample ({len(done)} done)", flush=True)
    engine = await make_engine("vllm", model=args.model)
    gate = asyncio.Semaphore(args.concurrency)
    t_start = time.monotonic()

    async def one(problem) -> None:
        async with gate:
            t0 = time.monotonic()
            request = GenerateRequest(messages=task.messages(problem), n=args.n, max_tokens=args.max_tokens,
                                      temperature=args.temperature, top_p=0.95, logprobs=args.topk)
            completions = await engine.generate(request)
            traces = []
            for c in completions:
                answer = task.extract(c.text)
                correct = task.grade(problem, answer)
                if inspect.isawaitable(correct):
                    correct = await correct
                traces.append({"text": c.text, "tokens": c.completion_tokens, "finish": c.finish_reason,
                               "answer": answer, "correct": bool(correct), "conf": _confidences(c.logprobs)})
            row = {"id": problem.id, "gold": problem.gold, "question": problem.question,
                   "prompt_tokens": completions[0].prompt_tokens, "seconds": round(time.monotonic() - t0, 2),
                   "traces": traces}
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            toks = sum(t["tokens"] for t in traces)
            print(f"{problem.id}: {sum(t['correct'] for t in traces)}/{len(traces)} correct, {toks} tokens, "
                  f"{row['seconds']} s (elapsed {time.monotonic() - t_start:.0f} s)", flush=True)

    try:
        async with asyncio.TaskGroup() as tg:
            for p in todo:
                tg.create_task(one(p))
    finally:
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
