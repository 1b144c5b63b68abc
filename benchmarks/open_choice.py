"""Open-ended choice without an extractor, on recorded samples: a sampling run's problems (their sample texts, as the
run folder keeps them) are handed as the upstream stage's Answer to the real `usc` and `medoid` strategies
(strategies/open_ended.py); USC's selection call runs live on vLLM (the policy model judging its own samples). The
chosen whole response is graded afterwards by the task's grader; paired against, on the same samples:

  one sample       the expected accuracy of a single sample (the mean over each problem's samples)
  majority         the vote over the extracted answers (the run's own answer)
  oracle           some sample is right

The goal (issue 29): the open-ended choice recovers at least half of majority's gain over one sample. Tokens:
USC adds one selection call per problem (its prompt holds every response), reported apart; medoid adds none.

Usage: python benchmarks/open_choice.py RUN_DIR [--task gsm8k] [--model qwen2.5-coder-0.5b] [--sim]
Writes results/bench/open_choice.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from common import write
from judge_replay import upstream_of

from tts import tasks
from tts.app.runner import read_finished, wilson
from tts.kernel.context import Context
from tts.strategies.open_ended import MedoidConfig, USCConfig, run_medoid, run_usc


def paired(right: list[bool], vote: list[bool], one_sample: float) -> dict:
    """A choice's figures against the vote on the same problems: accuracy, problems gained and lost, and the share
    of the vote's gain over one sample (`one_sample`: the expected number right with one sample) it recovers."""
    n, k, gain = len(right), sum(right), sum(vote) - one_sample
    return {"correct": k, "accuracy": round(k / n, 4), "ci95": wilson(k, n),
            "gained_vs_majority": sum(a and not b for a, b in zip(right, vote)),
            "lost_vs_majority": sum(b and not a for a, b in zip(right, vote)),
            "share_of_majority_gain": round((k - one_sample) / gain, 3) if gain > 0 else None}


async def main(args) -> None:
    task = tasks.get(args.task)
    rows = [r for r in read_finished(Path(args.run) / "results.jsonl").values() if "error" not in r]
    rows = [r for r in rows if sum(s.get("status") == "ok" for s in r.get("samples", ())) >= 2]
    problems = {p.id: p for p in task.load()}
    if args.sim:
        from tts.engine_adapters.sim import SimulatedEngine

        engine = SimulatedEngine.for_problems(list(problems.values()))
    else:
        from common import start_vllm

        engine = start_vllm(args.model)
    graded = lambda p, a: bool(task.grade(p, a))  # noqa: E731
    one, vote, oracle, usc, medoid = [], [], [], [], []
    usc_prompt = usc_generated = fell_back = 0
    t0 = time.monotonic()
    try:
        for row in rows:
            problem = problems[row["id"]]
            ok = [s for s in row["samples"] if s.get("status") == "ok"]
            one.append(sum(graded(problem, s.get("answer")) for s in ok) / len(ok))
            vote.append(graded(problem, row.get("answer")))
            oracle.append(any(graded(problem, s.get("answer")) for s in ok))
            ctx = Context(engine, task=task, judge=engine)
            chosen = await run_usc(ctx, problem, USCConfig(response_tokens=args.response_tokens),
                                   upstream=upstream_of(row))
            usc.append(graded(problem, chosen.answer))
            fell_back += bool(chosen.meta.get("fell_back"))
            usc_prompt += ctx.usage.verify_prompt_tokens
            usc_generated += ctx.usage.verify_completion_tokens
            ctx = Context(engine, task=task)
            chosen = await run_medoid(ctx, problem, MedoidConfig(), upstream=upstream_of(row))
            medoid.append(graded(problem, chosen.answer))
            print(row["id"], f"one {one[-1]:.2f} vote {vote[-1]} usc {usc[-1]} medoid {medoid[-1]}", flush=True)
    finally:
        await engine.aclose()
    n = len(rows)
    base = sum(one)

    figures = lambda right: paired(right, vote, base)  # noqa: E731

    generated = sum(r["usage"]["completion_tokens"] for r in rows)
    out = {"task": args.task, "run": args.run, "model": args.model, "problems": n,
           "samples_per_problem": sorted({len(r["samples"]) for r in rows}),
           "one_sample": {"expected_correct": round(base, 2), "accuracy": round(base / n, 4)},
           "majority": figures(vote), "oracle": figures(oracle), "usc": figures(usc), "medoid": figures(medoid),
           "usc_fell_back": fell_back, "generated_tokens": generated,
           "usc_selection_prompt_tokens": usc_prompt, "usc_selection_generated_tokens": usc_generated,
           "seconds": round(time.monotonic() - t0, 1),
           "note": "samples drawn with the task's prompt (it asks for 'The answer is N'); usc and medoid choose by "
                   "the whole text, never by the extracted answer, which only grades the choice afterwards"}
    print(json.dumps(out) if args.sim else write("open_choice", out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--response-tokens", type=int, default=400)
    ap.add_argument("--sim", action="store_true", help="the simulator selects (a dry run; figures not kept)")
    asyncio.run(main(ap.parse_args()))
