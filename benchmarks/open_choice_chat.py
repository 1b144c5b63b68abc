"""Open-ended choice on plain chat (issue 29): GSM8K test and SVAMP questions sent as an agent sends them, the bare
question as one user message, no task prompt and no answer format asked for, N samples each through `sc` with the
`chat` task (whole texts, no extractor). Then, on the same samples (paired, matched generation tokens):

  one sample   the expected accuracy of one response (the mean over a question's samples)
  majority     the vote over answers extracted afterwards by the task's extractor (what an extractor buys)
  usc          Universal Self-Consistency: the model reads the responses and names the most consistent one
  medoid       the medoid of the largest cluster of responses by meaning (sentence-transformers)
  oracle       some response is right

usc and medoid choose among whole texts and never see an extracted answer; the chosen text is graded afterwards by
the task's extractor and grader. USC's selection call is charged apart (its prompt holds every response). Goal: the
open-ended choice recovers at least half of majority's gain over one sample.

Samples are kept in results/runs/open-chat-<set>.jsonl as each question finishes, and a rerun resumes from them.
Usage: python benchmarks/open_choice_chat.py [--model qwen2.5-coder-0.5b] [-n 8] [--limit 40]
       [--svamp ../shared/data/svamp_test.jsonl]    Writes results/bench/open_choice_chat.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from common import RUNS, write
from open_choice import paired

from tts import strategies, tasks
from tts.app.session import Session
from tts.kernel.context import Context
from tts.kernel.types import Answer, Problem, Sample
from tts.strategies.open_ended import MedoidConfig, USCConfig, run_medoid, run_usc


def sets(args) -> dict[str, tuple[object, list[Problem]]]:
    out = {"gsm8k": (tasks.get("gsm8k"), tasks.get("gsm8k").load()[: args.limit])}
    if args.svamp and Path(args.svamp).exists():
        svamp = tasks.get("svamp")
        out["svamp"] = (svamp, svamp.load_checked(Path(args.svamp), None)[0][: args.limit])
    return out


async def sample_all(engine, problems: list[Problem], path: Path, n: int, max_tokens: int,
                     in_flight: int) -> dict[str, list]:
    """Each question's N plain-chat responses [(text, tokens)], drawn once and kept line by line."""
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            done[row["id"]] = row["samples"]
    chat = tasks.get("chat")
    spec = strategies.get("self-consistency")
    session = Session(engine, chat, spec, strategies.make_config(spec, n=n, max_tokens=max_tokens,
                                                                 early_stop=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        async def one(p: Problem) -> None:
            solved = await session.solve(Problem(id=p.id, question=p.question))
            got = [[s.text, s.completion_tokens] for s in solved.answer.samples if s.status == "ok"]
            f.write(json.dumps({"id": p.id, "samples": got}) + "\n")
            f.flush()
            done[p.id] = got
            print(p.id, len(got), sum(t for _, t in got), flush=True)

        slots = asyncio.Semaphore(in_flight)  # questions in flight: the next starts as one finishes

        async def held(p: Problem) -> None:
            async with slots:
                await one(p)

        async with asyncio.TaskGroup() as tg:
            for p in problems:
                if p.id not in done:
                    tg.create_task(held(p))
    return done


async def choose(engine, task, problems, samples, response_tokens: int) -> dict:
    graded = lambda p, text: bool(task.grade(p, task.extract(text)))  # noqa: E731
    one, vote, oracle, usc, medoid = [], [], [], [], []
    usc_prompt = usc_generated = generated = 0
    for p in problems:
        texts = samples[p.id]
        if len(texts) < 2:
            continue
        generated += sum(t for _, t in texts)
        right = [graded(p, t) for t, _ in texts]
        one.append(sum(right) / len(right))
        oracle.append(any(right))
        extracted = [a for a in (task.extract(t) for t, _ in texts) if a is not None]
        keys = task.canonicalize(extracted)
        top = Counter(keys).most_common(1)
        # the winning class graded through one of its own answers, as the task's vote would report it
        vote.append(bool(top) and bool(task.grade(p, extracted[keys.index(top[0][0])])))
        upstream = Answer(answer=None, samples=tuple(Sample(index=i, text=t, answer=t, completion_tokens=k)
                                                     for i, (t, k) in enumerate(texts)))
        chat = tasks.get("chat")
        ctx = Context(engine, task=chat.bind(Problem(id=p.id, question=p.question)), judge=engine)
        chosen = await run_usc(ctx, Problem(id=p.id, question=p.question),
                               USCConfig(n=len(texts), response_tokens=response_tokens), upstream=upstream)
        usc.append(graded(p, chosen.answer or ""))
        usc_prompt += ctx.usage.verify_prompt_tokens
        usc_generated += ctx.usage.verify_completion_tokens
        ctx = Context(engine, task=chat.bind(Problem(id=p.id, question=p.question)))
        chosen = await run_medoid(ctx, Problem(id=p.id, question=p.question), MedoidConfig(n=len(texts)),
                                  upstream=upstream)
        medoid.append(graded(p, chosen.answer or ""))
    n, base = len(one), sum(one)

    figures = lambda right: paired(right, vote, base)  # noqa: E731

    return {"problems": n, "one_sample": {"expected_correct": round(base, 2), "accuracy": round(base / n, 4)},
            "majority_with_extractor": figures(vote), "usc": figures(usc), "medoid": figures(medoid),
            "oracle": figures(oracle), "generated_tokens": generated, "usc_selection_prompt_tokens": usc_prompt,
            "usc_selection_generated_tokens": usc_generated}


async def main(args) -> None:
    from common import start_vllm

    t0 = time.monotonic()
    engine = start_vllm(args.model)
    out = {"model": args.model, "engine": "vllm (CPU build)", "samples": args.n, "max_tokens": args.max_tokens,
           "note": "the bare question as one user message; usc and medoid choose whole texts, graded afterwards "
                   "by the task's extractor and grader"}
    try:
        for name, (task, problems) in sets(args).items():
            samples = await sample_all(engine, problems, RUNS / f"open-chat-{name}-{args.model}-n{args.n}.jsonl", args.n,
                                       args.max_tokens, args.in_flight)
            out[name] = await choose(engine, task, problems, samples, args.response_tokens)
            print(name, json.dumps(out[name]), flush=True)
    finally:
        await engine.aclose()
    out["seconds"] = round(time.monotonic() - t0, 1)
    print(write("open_choice_chat", out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--in-flight", type=int, default=12, help="questions sampled at once")
    ap.add_argument("--response-tokens", type=int, default=256)
    ap.add_argument("--svamp", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "svamp_test.jsonl"))
    asyncio.run(main(ap.parse_args()))
