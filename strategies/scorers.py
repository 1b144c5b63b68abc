"""Scorers: how a strategy judges candidates beside counting their answers. One registration per kind, at the bottom;
a scorer is a config model plus `async def judge(ctx, problem, candidates, config) -> Judgement`, and it makes its
calls through `ctx.verifier()`, so they are charged to the run's one budget and reported apart from generation.

Kinds:
- `verifier`: a chat model asked whether a solution is correct, scored by P(yes) from its verdict token (pointwise);
- `pairwise`: two solutions compared (P(A) against P(B), asked in both orders), in a knockout over the candidates;
- `select`: the model names the best of k solutions (GenSelect);
- `reward`: a reward model behind vLLM's `/pooling` (process rewards per step, Qwen2.5-Math-PRM style) or
  `/classify` (an outcome reward), over HTTP (strategies/reward_http.py);
- `tests`: code candidates run on the calls their prompt shows, in the sandbox: a score is the share that ran.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, Field, ValidationError

from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.kernel.types import Frozen, GenerateRequest, Problem, Sample
from tts.kit import judging


class Judgement(Frozen):
    """A scorer's verdict on the candidates it was given: a score per candidate (None: the judge could not say),
    the candidate it would choose, and what it did."""

    scores: tuple[float | None, ...]
    chosen: int | None
    calls: int = 0
    record: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class ScorerSpec:
    name: str
    judge: Callable[..., Awaitable[Judgement]]  # (ctx, problem, candidates, config) -> Judgement
    config: type[BaseModel]
    description: str = ""
    pointwise: bool = True  # a score per candidate on its own (best-of-N, weighted majority); else a comparison
    # checked before any engine starts (e.g. that a reward server answers on its endpoint); None: nothing to check
    preflight: Callable[[BaseModel], Awaitable[None]] | None = None
    # ends what the kind keeps open across problems (an in-process reward model); None: it keeps nothing
    close: Callable[[], Awaitable[None]] | None = None


_SCORERS: dict[str, ScorerSpec] = {}


def register(spec: ScorerSpec) -> ScorerSpec:
    _SCORERS[spec.name] = spec
    return spec


def names() -> list[str]:
    return sorted(_SCORERS)


def get(name: str) -> ScorerSpec:
    try:
        return _SCORERS[name]
    except KeyError:
        raise ConfigError(f"unknown scorer '{name}'; known: {', '.join(names())}") from None


def make(name: str, options: dict[str, Any] | None = None) -> tuple[ScorerSpec, BaseModel]:
    spec = get(name)
    try:
        return spec, spec.config(**(options or {}))
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"invalid option for scorer '{name}': {'.'.join(map(str, first['loc']))}: "
                          f"{first['msg']}") from None


async def close_all() -> None:
    """End what any scorer kind keeps open: the app calls it when a run, a session or the server ends."""
    for spec in _SCORERS.values():
        if spec.close is not None:
            await spec.close()


def _best(scores: tuple[float | None, ...]) -> int | None:
    scored = [(s, -i) for i, s in enumerate(scores) if s is not None]
    return -max(scored)[1] if scored else None  # ties go to the earlier candidate


def _verdict_request(messages, max_tokens: int = 1, top: int = 20) -> GenerateRequest:
    return GenerateRequest(messages=messages, max_tokens=max_tokens, temperature=0.0, logprobs=top)


class VerifierConfig(Frozen):
    top_logprobs: int = Field(20, ge=1, le=20)


async def judge_verifier(ctx: Context, problem: Problem, candidates: list[Sample], config: VerifierConfig
                         ) -> Judgement:
    vctx = ctx.verifier()

    async def one(sample: Sample) -> float | None:
        request = _verdict_request(judging.verify_messages(problem.question, sample.text), top=config.top_logprobs)
        [c] = await vctx.generate(request)
        return judging.p_yes(c.logprobs, c.text)

    outcomes = await vctx.branches([lambda s=s: one(s) for s in candidates], label="verify")
    scores = tuple(o.value if o.status == "ok" else None for o in outcomes)
    return Judgement(scores=scores, chosen=_best(scores), calls=len(candidates),
                     record={"p_yes": [None if s is None else round(s, 4) for s in scores]})


class PairwiseConfig(Frozen):
    both_orders: bool = True  # ask A-vs-B and B-vs-A and average: a judge's position bias cancels
    top_logprobs: int = Field(20, ge=1, le=20)


async def compare(ctx: Context, problem: Problem, a: Sample, b: Sample, config: PairwiseConfig) -> float | None:
    """P(a is the right one over b), from one or two verdicts."""
    orders = [(a, b, False), (b, a, True)] if config.both_orders else [(a, b, False)]

    async def ask(x: Sample, y: Sample, flipped: bool) -> float | None:
        request = _verdict_request(judging.pair_messages(problem.question, x.text, y.text), top=config.top_logprobs)
        [c] = await ctx.generate(request)
        p = judging.p_first(c.logprobs, c.text)
        return None if p is None else (1.0 - p if flipped else p)

    outcomes = await ctx.branches([lambda o=o: ask(*o) for o in orders], label="compare")
    ps = [o.value for o in outcomes if o.status == "ok" and o.value is not None]
    return sum(ps) / len(ps) if ps else None


async def judge_pairwise(ctx: Context, problem: Problem, candidates: list[Sample], config: PairwiseConfig
                         ) -> Judgement:
    """A knockout: the first candidate meets the second, the winner the third, and so on (k - 1 comparisons);
    a candidate's score is the comparisons it won."""
    vctx = ctx.verifier()
    wins = [0.0] * len(candidates)
    holder, matches = 0, []
    for challenger in range(1, len(candidates)):
        p = await compare(vctx, problem, candidates[holder], candidates[challenger], config)
        winner = challenger if p is not None and p < 0.5 else holder  # an undecided match keeps the holder
        wins[winner] += 1
        matches.append({"a": holder, "b": challenger, "p_a": None if p is None else round(p, 4), "winner": winner})
        holder = winner
    per_match = 2 if config.both_orders else 1
    return Judgement(scores=tuple(wins), chosen=holder if candidates else None,
                     calls=per_match * max(0, len(candidates) - 1), record={"matches": matches})


class SelectConfig(Frozen):
    max_candidates: int = Field(8, ge=2, le=32)


async def judge_select(ctx: Context, problem: Problem, candidates: list[Sample], config: SelectConfig) -> Judgement:
    shown = candidates[: config.max_candidates]
    request = GenerateRequest(messages=judging.select_messages(problem.question, [s.text for s in shown]),
                              max_tokens=4, temperature=0.0)
    [c] = await ctx.verifier().generate(request)
    chosen = judging.picked(c.text, len(shown))
    scores = tuple(None if chosen is None else float(i == chosen) for i in range(len(candidates)))
    return Judgement(scores=scores, chosen=chosen, calls=1, record={"said": c.text[:40]})


class TestsConfig(Frozen):
    pass


async def judge_tests(ctx: Context, problem: Problem, candidates: list[Sample], config: TestsConfig) -> Judgement:
    """Code candidates scored by the share of the prompt's example calls that run without error, in the sandbox
    (the task's own execution path; its hidden tests are never used to choose)."""
    task = ctx.task
    if task is None or task.program is None:
        raise ConfigError("scorer 'tests' needs a code task (humaneval, mbpp)")
    from tts.tools.sandbox import SandboxLimits, run_python

    calls = task.example_calls(problem)
    limits = SandboxLimits(timeout_s=5, cpu_s=5, memory_mb=256)

    async def one(sample: Sample) -> float | None:
        if not sample.answer or not calls:
            return 0.0 if sample.answer is None else None
        source = task.program(problem, sample.answer) + "\n" + "\n".join(
            f"try:\n    {call}\n    print('ok')\nexcept Exception:\n    print('fail')" for call in calls)
        result = await run_python(source, limits)
        return result.stdout.count("ok\n") / len(calls)

    scores = tuple(await asyncio.gather(*(one(s) for s in candidates)))
    return Judgement(scores=scores, chosen=_best(scores), calls=0, record={"example_calls": len(calls)})


register(ScorerSpec("verifier", judge_verifier, VerifierConfig,
                    "a chat model asked if a solution is correct; P(yes) from its verdict token"))
register(ScorerSpec("pairwise", judge_pairwise, PairwiseConfig,
                    "two solutions compared (both orders), knockout over the candidates", pointwise=False))
register(ScorerSpec("select", judge_select, SelectConfig, "the model names the best of k solutions (GenSelect)",
                    pointwise=False))
register(ScorerSpec("tests", judge_tests, TestsConfig, "code run on the prompt's example calls, in the sandbox"))
