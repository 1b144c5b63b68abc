"""Tool calls voted, on a real model: the tools task's 12 questions (tasks/tool_qa.py: six that need four parallel
`prime_factors` calls, six chains of atlas lookups) sent as an agent sends them, a user message with the task's four
tools as OpenAI function schemas, to vLLM's engine; `self-consistency` with the `chat` task samples N responses and
votes their tool calls in canonical form (tts/kit/structured.py). Graded afterwards against the gold first turn:

  exact   the turn's calls, as a set, are the gold turn's (parallel: the four prime_factors calls; chain: the first
          lookup)
  step    the turn calls something and every call is one of the gold turn's (a right first step, e.g. one
          prime_factors call at a time)

Arguments are compared as the tool would receive them (validated by its argument model: "84" and 84 are one call).
One sample's accuracy is the mean over every sample of a question (its expectation, not one draw's luck); the vote
is the strategy's chosen turn.

Usage: python benchmarks/tool_call_vote.py [--model qwen2.5-coder-1.5b] [-n 8] [--sim]
Writes results/bench/tool_call_vote.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

from common import write

from tts.app import wire
from tts.app.runner import wilson
from tts.app.session import opened
from tts.kernel.types import Problem
from tts.tasks.tool_qa import ATLAS, CHAINS, PARALLEL, make_tools, problems


TOOLS = make_tools(latency=False)


def schemas() -> list[dict]:
    out = []
    for t in TOOLS.values():
        params = t.args_model.model_json_schema()
        params.pop("title", None)
        for p in params.get("properties", {}).values():
            p.pop("title", None)
        out.append({"type": "function", "function": {"name": t.name, "description": t.description,
                                                      "parameters": params}})
    return out


def gold_turn(problem: Problem) -> set[str]:
    kind, i = problem.id.split("-")
    if kind == "parallel":
        return {_key("prime_factors", {"n": n}) for n in PARALLEL[int(i)]}
    start, attrs = CHAINS[int(i)]
    assert start in ATLAS
    return {_key("lookup", {"entity": start, "attribute": attrs[0]})}


def _key(name: str, args: dict) -> str:
    return json.dumps([name, args], sort_keys=True)


def as_received(name: str, arguments: str) -> str | None:
    """The call as the tool would receive it, or None when the tool does not exist or refuses the arguments."""
    tool = TOOLS.get(name)
    if tool is None:
        return None
    try:
        args = json.loads(arguments or "{}")
        return _key(name, tool.args_model(**args).model_dump()) if isinstance(args, dict) else None
    except Exception:  # noqa: BLE001 - a call the tool would refuse is a wrong call, whatever the reason
        return None


def grade(calls: list[tuple[str, str]] | None, gold: set[str]) -> tuple[bool, bool]:
    if not calls:
        return False, False
    got = [as_received(n, a) for n, a in calls]
    if None in got:
        return False, False
    return set(got) == gold, set(got) <= gold


async def main(args) -> None:
    items = problems()
    t0 = time.monotonic()
    engine = "sim" if args.sim else "vllm"
    per = []
    async with opened(engine, task="chat", strategy="self-consistency",
                      options={"n": args.n, "max_tokens": args.max_tokens, "temperature": args.temperature,
                               "early_stop": False},  # every sample drawn: one sample's expectation is over all N
                      problems=items, **({} if args.sim else {"model": args.model})) as session:
        async def one(p: Problem):
            asked = Problem(id=p.id, question=p.question, tools=wire.tools(schemas(), None))
            solved = await session.solve(asked)
            answer = solved.answer
            gold = gold_turn(p)
            samples = [s for s in answer.samples if s.status == "ok"]
            graded = [grade([(c.name, c.arguments) for c in s.tool_calls or ()], gold) for s in samples]
            voted = wire.chosen_calls(answer)
            v = grade([(c["function"]["name"], c["function"]["arguments"]) for c in voted or ()], gold)
            per.append({"id": p.id, "samples": len(samples),
                        "one_exact": sum(g[0] for g in graded) / max(1, len(graded)),
                        "one_step": sum(g[1] for g in graded) / max(1, len(graded)),
                        "no_call": sum(not s.tool_calls for s in samples),
                        "vote_exact": v[0], "vote_step": v[1], "votes": answer.votes,
                        "without_a_call": [s.text[:300] for s in samples if not s.tool_calls][:3],
                        "tokens": solved.usage.completion_tokens})

        async with asyncio.TaskGroup() as tg:
            for p in items:
                tg.create_task(one(p))
    per.sort(key=lambda r: r["id"])
    n = len(per)
    out = {"model": "simulator" if args.sim else args.model, "engine": engine, "questions": n, "samples": args.n,
           "temperature": args.temperature, "seconds": round(time.monotonic() - t0, 1)}
    for what in ("exact", "step"):
        one = sum(r[f"one_{what}"] for r in per)
        vote = sum(r[f"vote_{what}"] for r in per)
        out[what] = {"one_sample_expected": round(one / n, 3), "voted": round(vote / n, 3),
                     "voted_ci95": [round(x, 3) for x in wilson(vote, n)],
                     "voted_right_where_one_sample_mostly_wrong": sum(r[f"vote_{what}"] and r[f"one_{what}"] < 0.5
                                                                      for r in per),
                     "voted_wrong_where_one_sample_mostly_right": sum(not r[f"vote_{what}"] and r[f"one_{what}"] > 0.5
                                                                      for r in per)}
    out["samples_without_a_call"] = sum(r["no_call"] for r in per)
    out["completion_tokens"] = sum(r["tokens"] for r in per)
    out["per_question"] = per
    write("tool_call_vote", out)
    print(json.dumps({k: v for k, v in out.items() if k != "per_question"}, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--sim", action="store_true")
    asyncio.run(main(ap.parse_args()))
