"""Self-consistency: N samples in parallel, answer extraction, majority vote, early stop once the vote is decided."""
from __future__ import annotations

from functools import partial

from pydantic import Field

from strategies import StrategySpec, register
from tts.aggregate import majority, vote_counts, vote_decided
from tts.context import BranchOutcome, Context
from tts.types import Answer, Completion, Frozen, GenerateRequest, Problem, Sample


class SCConfig(Frozen):
    n: int = Field(8, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    early_stop: bool = True
    logprobs: int | None = Field(None, ge=0)
    # With early stop off, one request with n lets an engine batch the samples; early stop needs one request per
    # sample so that each can be cancelled on its own.
    batch: bool = True


def to_sample(ctx: Context, index: int, completion: Completion) -> Sample:
    mean_lp = None
    if completion.logprobs:
        mean_lp = sum(t.logprob for t in completion.logprobs) / len(completion.logprobs)
    return Sample(index=index, text=completion.text, answer=ctx.task.extract(completion.text),
                  completion_tokens=completion.completion_tokens, mean_logprob=mean_lp)


def outcome_sample(o: BranchOutcome[Sample]) -> Sample:
    if o.status == "ok" and o.value is not None:
        return o.value
    return Sample(index=o.index, text="", answer=None, completion_tokens=0, status=o.status, error=o.error)


def _decided(outcomes: list[BranchOutcome[Sample] | None]) -> str | None:
    done = [o.value for o in outcomes if o is not None and o.status == "ok" and o.value is not None]
    pending = sum(o is None for o in outcomes)
    return "vote decided" if vote_decided(vote_counts(done), pending) else None


async def run(ctx: Context, problem: Problem, config: SCConfig) -> Answer:
    base = GenerateRequest(
        messages=ctx.task.messages(problem), max_tokens=config.max_tokens, temperature=config.temperature,
        top_p=config.top_p, seed=config.seed, logprobs=config.logprobs,
    )
    if config.n > 1 and config.batch and not config.early_stop:
        async def batch() -> list[Sample]:
            completions = await ctx.generate(base.model_copy(update={"n": config.n}))
            return [to_sample(ctx, i, c) for i, c in enumerate(completions)]

        [outcome] = await ctx.branches([batch], label="batch")
        samples = outcome.value if outcome.status == "ok" and outcome.value else []
        failed = [] if samples else [outcome_sample(outcome)]
        return _answer(ctx, samples + failed, stopped_early=False)

    async def one(i: int) -> Sample:
        [completion] = await ctx.generate(base.model_copy(update={"seed": config.seed + i}))
        return to_sample(ctx, i, completion)

    outcomes = await ctx.branches(
        [partial(one, i) for i in range(config.n)], label="sample",
        stop_when=_decided if config.early_stop else None,
    )
    stopped = any(o.status == "cancelled" for o in outcomes)
    return _answer(ctx, [outcome_sample(o) for o in outcomes], stopped_early=stopped)


def _answer(ctx: Context, samples: list[Sample], stopped_early: bool) -> Answer:
    votes = vote_counts(samples)
    exhausted = any(s.status == "budget" for s in samples)
    errors = [s.error for s in samples if s.status == "error"]
    notes = []
    if exhausted:
        notes.append(f"budget exhausted ({ctx.budget.exhausted_reason}): answered from {sum(votes.values())} votes")
    if errors:
        notes.append(f"{len(errors)} sample(s) failed: {errors[0]}")
    return Answer(answer=majority(votes), votes=votes, samples=tuple(samples), stopped_early=stopped_early,
                  budget_exhausted=exhausted, note="; ".join(notes) or None)


register(StrategySpec("self-consistency", run, SCConfig, aliases=("sc",)))


class GreedyConfig(Frozen):
    max_tokens: int = Field(512, ge=1)
    logprobs: int | None = Field(None, ge=0)


async def run_greedy(ctx: Context, problem: Problem, config: GreedyConfig) -> Answer:
    sc = SCConfig(n=1, temperature=0.0, top_p=1.0, max_tokens=config.max_tokens, logprobs=config.logprobs,
                  early_stop=False)
    return await run(ctx, problem, sc)


register(StrategySpec("greedy", run_greedy, GreedyConfig))
