"""Choosing by judgment, on recorded samples with a live judge: each sampling run's problems (their sample texts, as
the run folder keeps them) are handed, as the upstream stage's Answer, to the real judge stage
(strategies/judged.py run_judge) with the judge model running live in vLLM; paired against the run's own vote.

Settings: the close-vote pairwise stage (margin 0.25, the top two classes), pairwise on every problem with two or more
classes, the pointwise verifier over every class (P(yes), best class), and select-one-of-k. For each: accuracy with a
95% interval, problems gained and lost against the vote, and total tokens (generation + verification). The oracle is
the share of problems where some sample is right.

With `--first K`, each problem keeps its first K samples only (SC@K, its vote recounted from them), and the
figures are set beside the whole recording's vote (SC@16 for a 16-sample run): a judge over SC@8 against SC@16
compares choices at matched tokens.

Usage: python benchmarks/judge_replay.py --task gsm8k RUN_DIR [RUN_DIR ...] [--model qwen2.5-coder-0.5b]
       [--only pairwise,select] [--first 8] [--out judge_replay]
Writes results/bench/judge_replay.json (or --out's name).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from common import start_vllm, write

from tts import tasks
from tts.app.runner import read_finished, wilson
from tts.kernel.context import Context
from tts.kernel.types import Answer, Sample
from tts.kit.voting import vote
from tts.strategies.judged import JudgeConfig, run_judge
from tts.strategies.samples import canonical

SETTINGS = {
    "pairwise, close votes (margin 0.25)": JudgeConfig(kind="pairwise", margin=0.25),
    "pairwise, every split vote": JudgeConfig(kind="pairwise", margin=1.0),
    "verifier P(yes) over all classes": JudgeConfig(kind="verifier", margin=1.0, contenders=16),
    "select one of the classes (GenSelect)": JudgeConfig(kind="select", margin=1.0, contenders=8),
}


def upstream_of(row: dict, task=None, first: int | None = None) -> Answer:
    """The sampling stage's Answer as the row keeps it; with `first`, its first samples only and their vote."""
    kept = sorted(row.get("samples", ()), key=lambda s: s["index"])[:first] if first else row.get("samples", ())
    samples = [Sample(index=s["index"], text=s.get("text") or "", answer=s.get("answer"),
                      completion_tokens=s.get("tokens", 0), status=s.get("status", "ok")) for s in kept]
    if not first:
        return Answer(answer=row.get("answer"), votes=row.get("votes") or {}, samples=tuple(samples))
    samples = canonical(task, samples)
    answer, votes = vote(samples)
    return Answer(answer=answer, votes=votes, samples=tuple(samples))


async def main(args) -> None:
    task = tasks.get(args.task)
    rows: list[tuple[str, dict]] = []
    for run in args.runs:
        rows += [(run, r) for r in read_finished(Path(run) / "results.jsonl").values() if "error" not in r]
    questions = {}
    for run in args.runs:
        config = json.loads((Path(run) / "config.json").read_text())
        data = config.get("data")
        problems = task.load(data if data and not data.startswith(("packaged:", "hub:")) else None)
        questions.update({p.id: p for p in problems})
    if args.sim:  # a dry run of this script: the simulator as the judge
        from tts.engine_adapters.sim import SimulatedEngine

        engine = SimulatedEngine.for_problems(list(questions.values()))
    else:
        engine = start_vllm(args.model)
    out: dict = {"task": args.task, "runs": args.runs, "judge_model": args.model, "problems": len(rows),
                 "settings": {}}
    try:
        graded = lambda p, a: bool(task.grade(p, a))  # noqa: E731
        ups = {r["id"]: upstream_of(r, task, args.first) for _, r in rows}
        if args.first:  # the whole recording's vote, the figure a judge over the first samples is set against
            whole = [graded(questions[r["id"]], r.get("answer")) for _, r in rows]
            out["whole_vote"] = {"samples": max(len(r.get("samples", ())) for _, r in rows),
                                 "accuracy": sum(whole) / len(rows), "ci95": wilson(sum(whole), len(rows)),
                                 "generated_tokens": sum(r["usage"]["completion_tokens"] for _, r in rows)}
            out["first"] = args.first
        vote_right = [graded(questions[r["id"]], ups[r["id"]].answer) for _, r in rows]
        oracle = [any(graded(questions[r["id"]], s.answer) for s in ups[r["id"]].samples if s.answer)
                  for _, r in rows]
        gen_tokens = (sum(s.completion_tokens for u in ups.values() for s in u.samples) if args.first else
                      sum(r["usage"]["completion_tokens"] for _, r in rows))
        # every token the samples' calls processed (prompts too: on the CPU build a short prompt is read per sample)
        all_tokens = sum(round(r["usage"]["prompt_tokens"] * len(ups[r["id"]].samples) / max(1, len(r["samples"])))
                         for _, r in rows) + gen_tokens
        out["vote"] = {"accuracy": sum(vote_right) / len(rows), "ci95": wilson(sum(vote_right), len(rows)),
                       "generated_tokens": gen_tokens, "all_tokens": all_tokens}
        if args.first:
            out["whole_vote"]["all_tokens"] = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
                                                  for _, r in rows)
        out["oracle"] = {"accuracy": sum(oracle) / len(rows), "ci95": wilson(sum(oracle), len(rows))}
        for name, config in SETTINGS.items():
            if args.only and config.kind not in args.only.split(","):
                continue
            t0 = time.monotonic()
            right, verify_prompt, verify_generated, calls, ran, overturned = [], 0, 0, 0, 0, 0
            for _, row in rows:
                problem = questions[row["id"]]
                ctx = Context(engine, task=task, judge=engine)
                answer = await run_judge(ctx, problem, config, upstream=ups[row["id"]])
                right.append(graded(problem, answer.answer))
                verify_prompt += ctx.usage.verify_prompt_tokens
                verify_generated += ctx.usage.verify_completion_tokens
                calls += ctx.usage.verify_calls
                ran += bool(answer.meta.get("judge", {}).get("ran"))
                overturned += bool(answer.meta.get("judge", {}).get("overturned"))
            k = sum(right)
            out["settings"][name] = {
                "accuracy": k / len(rows), "ci95": wilson(k, len(rows)),
                "gained_vs_vote": sum(a and not b for a, b in zip(right, vote_right)),
                "lost_vs_vote": sum(b and not a for a, b in zip(right, vote_right)),
                "judged_problems": ran, "overturned": overturned, "verify_calls": calls,
                "verify_prompt_tokens": verify_prompt, "verify_generated_tokens": verify_generated,
                "total_generated_tokens": gen_tokens + verify_generated,
                "all_tokens": all_tokens + verify_prompt + verify_generated,
                "verify_prompt_share_of_generation": round(verify_prompt / max(1, gen_tokens), 3),
                "seconds": round(time.monotonic() - t0, 1)}
            print(name, json.dumps(out["settings"][name]), flush=True)
            if not args.sim:  # each setting kept as it finishes: a long run cut short keeps what it measured
                write(args.out, out)
    finally:
        await engine.aclose()
    print(json.dumps(out) if args.sim else write(args.out, out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--only", default="", help="judge kinds to run, e.g. pairwise,select (default: all)")
    ap.add_argument("--first", type=int, default=None, help="each problem's first K samples only (SC@K)")
    ap.add_argument("--out", default="judge_replay", help="results/bench/<OUT>.json")
    ap.add_argument("--sim", action="store_true", help="judge with the simulator (a dry run; figures not kept)")
    asyncio.run(main(ap.parse_args()))
