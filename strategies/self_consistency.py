"""Self-consistency: N samples in parallel, answer extraction, a vote, and early stop once the vote is settled."""
from __future__ import annotations

from functools import partial
from typing import Literal

from pydantic import Field

from tts.strategies import StrategySpec, register
from tts.kit import stopping
from tts.kit.aggregate import vote_counts
from tts.kernel.context import BranchOutcome, Context
from tts.kit.prune import PruneConfig, inherit_votes, run_pruned
from tts.kernel.types import Answer, Completion, Frozen, GenerateRequest, Problem, Sample
from tts.kit.voting import semantic_entropy, trace_stats, vote

VoteRule = Literal["majority", "logprob", "deepconf", "entropy", "shortest"]


class SCConfig(Frozen):
    n: int = Field(8, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    early_stop: bool = True
    stop_rule: Literal["decided", "lead", "beta", "dirichlet"] = "decided"
    stop_params: dict[str, float] = Field(default_factory=dict)
    vote: VoteRule = "majority"
    # None: logprobs only when the vote rule needs them (5 alternatives per token for deepconf / entropy).
    logprobs: int | None = Field(None, ge=0)
    # With early stop off, one request with n lets an engine batch the samples; early stop needs one request per
    # sample so that each can be cancelled on its own.
    batch: bool = True
    # Redundancy pruning of in-flight samples (they stream; see tts/prune.py); None = off.
    prune: PruneConfig | None = None

    def wanted_logprobs(self) -> int | None:
        if self.logprobs is not None:
            return self.logprobs
        return {"logprob": 0, "deepconf": 5, "entropy": 5}.get(self.vote)


def to_sample(ctx: Context, index: int, completion: Completion) -> Sample:
    stats = trace_stats(completion.logprobs) if completion.logprobs else None
    answer = ctx.task.extract(completion.text)
    ctx.emit("partial_answer", answer=answer)  # anytime consumers (the server's stream) watch these
    return Sample(index=index, text=completion.text, answer=answer, completion_tokens=completion.completion_tokens,
                  stats=stats)


def outcome_sample(o: BranchOutcome[Sample]) -> Sample:
    if o.status == "ok" and o.value is not None:
        return o.value
    return Sample(index=o.index, text="", answer=None, completion_tokens=0, status=o.status, error=o.error)


def canonical(ctx: Context, samples: list[Sample]) -> list[Sample]:
    """Samples whose answers are replaced by their equivalence class's representative (the task decides)."""
    answers = ctx.task.canonicalize([s.answer for s in samples])
    return [s if s.answer == a else s.model_copy(update={"answer": a}) for s, a in zip(samples, answers)]


def stop_rule(ctx: Context, config: SCConfig):
    criterion = stopping.make(config.stop_rule, **config.stop_params)

    def rule(outcomes: list[BranchOutcome[Sample] | None]) -> str | None:
        done = canonical(ctx, [o.value for o in outcomes if o is not None and o.status == "ok" and o.value])
        pending = sum(o is None for o in outcomes)
        return f"vote settled ({config.stop_rule})" if criterion(vote_counts(done), pending) else None

    return rule


async def sample(ctx: Context, problem: Problem, config: SCConfig) -> tuple[list[Sample], bool]:
    """Draw the samples (the part other strategies reuse); returns them and whether early stop cut them short."""
    base = GenerateRequest(
        messages=ctx.task.messages(problem), max_tokens=config.max_tokens, temperature=config.temperature,
        top_p=config.top_p, seed=config.seed, logprobs=config.wanted_logprobs(),
    )
    stop = stop_rule(ctx, config) if config.early_stop else None
    if config.prune is not None:
        requests = [base.model_copy(update={"seed": config.seed + i}) for i in range(config.n)]
        outcomes, pruner = await run_pruned(ctx, requests, config.prune, stop_when=stop,
                                            convert=lambda i, c: to_sample(ctx, i, c))
        ctx.scratch["prunes"] = [{k: v for k, v in r.items() if k != "partial_text"} for r in pruner.pruned]
        samples = [outcome_sample(o) for o in outcomes]
        if config.prune.inherit_votes:
            samples = inherit_votes(samples, pruner.pruned)
        return samples, any(
            o.status == "cancelled" and not (o.error or "").startswith("pruned") for o in outcomes)
    if config.n > 1 and config.batch and not config.early_stop:
        async def batch() -> list[Sample]:
            completions = await ctx.generate(base.model_copy(update={"n": config.n}))
            return [to_sample(ctx, i, c) for i, c in enumerate(completions)]

        [outcome] = await ctx.branches([batch], label="batch")
        return (outcome.value if outcome.status == "ok" and outcome.value else [outcome_sample(outcome)]), False

    async def one(i: int) -> Sample:
        [completion] = await ctx.generate(base.model_copy(update={"seed": config.seed + i}))
        return to_sample(ctx, i, completion)

    outcomes = await ctx.branches([partial(one, i) for i in range(config.n)], label="sample", stop_when=stop)
    return [outcome_sample(o) for o in outcomes], any(o.status == "cancelled" for o in outcomes)


def answer_from(ctx: Context, samples: list[Sample], rule: str, stopped_early: bool = False, **meta) -> Answer:
    samples = canonical(ctx, samples)
    chosen, _ = vote(samples, rule)
    votes = vote_counts(samples)
    exhausted = any(s.status == "budget" for s in samples)
    errors = [s.error for s in samples if s.status == "error"]
    notes = []
    if exhausted:
        notes.append(f"budget exhausted ({ctx.budget.exhausted_reason}): answered from {sum(votes.values())} votes")
    if errors:
        notes.append(f"{len(errors)} sample(s) failed: {errors[0]}")
    ok = [s.answer for s in samples if s.status == "ok"]
    return Answer(answer=chosen, votes=votes, samples=tuple(samples), stopped_early=stopped_early,
                  budget_exhausted=exhausted, semantic_entropy=round(semantic_entropy(ok), 4) if ok else None,
                  note="; ".join(notes) or None, meta=meta)


async def run(ctx: Context, problem: Problem, config: SCConfig) -> Answer:
    samples, stopped = await sample(ctx, problem, config)
    extra = {"prunes": ctx.scratch.pop("prunes")} if "prunes" in ctx.scratch else {}
    return answer_from(ctx, samples, config.vote, stopped_early=stopped, **extra)


register(StrategySpec("self-consistency", run, SCConfig, aliases=("sc",)))


class GreedyConfig(Frozen):
    max_tokens: int = Field(512, ge=1)
    logprobs: int | None = Field(None, ge=0)


async def run_greedy(ctx: Context, problem: Problem, config: GreedyConfig) -> Answer:
    sc = SCConfig(n=1, temperature=0.0, top_p=1.0, max_tokens=config.max_tokens, logprobs=config.logprobs,
                  early_stop=False)
    return await run(ctx, problem, sc)


register(StrategySpec("greedy", run_greedy, GreedyConfig))
