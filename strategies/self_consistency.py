"""Self-consistency: N samples in parallel, answer extraction, a vote, and early stop once the vote is settled."""
from __future__ import annotations

from functools import partial

from pydantic import Field, model_validator

from tts.kit import stopping
from tts.kernel.context import Context
from tts.kernel.types import Answer, Frozen, GenerateRequest, Problem, Sample
from tts.kit.probe import ProbeConfig
from tts.strategies.probed import run_probed
from tts.kit.prune import PruneConfig, PruneRecord, inherit_votes
from tts.strategies.pruned import run_pruned
from tts.strategies.registry import StrategySpec, register
from tts.strategies.samples import StopName, VoteRule, answer_from, outcome_sample, to_sample, vote_stop_rule



class SCConfig(Frozen):
    n: int = Field(8, ge=1, le=16_384)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    early_stop: bool = True
    stop_rule: StopName = "decided"
    stop_params: dict[str, float] = Field(default_factory=dict)
    vote: VoteRule = "majority"
    # None: logprobs only when the vote rule needs them (5 alternatives per token for deepconf / entropy).
    logprobs: int | None = Field(None, ge=0)
    # With early stop off, one request with n lets an engine batch the samples; early stop needs one request per
    # sample so that each can be cancelled on its own.
    batch: bool = True
    # samples that run at once (None: all): an early stop pays for the samples running, not for those not started
    in_flight: int | None = Field(None, ge=1)
    # Redundancy pruning of in-flight samples (they stream; see tts/kit/prune.py); None = off.
    prune: PruneConfig | None = None
    # Probe consensus: stop the samples once their probed current answers agree (strategies/probed.py); None = off.
    probe: ProbeConfig | None = None

    @model_validator(mode="after")
    def _one_watcher(self) -> "SCConfig":
        if self.prune is not None and self.probe is not None:
            raise ValueError("prune and probe both watch the streaming samples: choose one")
        try:  # the stop rule is built from stop_params now, so a bad parameter is a config error, not a row error
            stopping.make(self.stop_rule, **self.stop_params)
        except TypeError as e:
            raise ValueError(f"stop_params do not fit stop rule '{self.stop_rule}': {e}") from None
        return self

    def wanted_logprobs(self) -> int | None:
        if self.logprobs is not None:
            return self.logprobs
        return {"logprob": 0, "deepconf": 5, "entropy": 5}.get(self.vote)


class Sampled(Frozen):
    """What sampling handed back: the samples, whether early stop cut them short, and the pruner's records."""

    samples: tuple[Sample, ...]
    stopped_early: bool = False
    prunes: tuple[PruneRecord, ...] = ()


async def sample(ctx: Context, problem: Problem, config: SCConfig) -> Sampled:
    """Draw the samples (the part other strategies reuse)."""
    base = GenerateRequest(
        **ctx.task.inputs(problem), max_tokens=config.max_tokens, temperature=config.temperature,
        top_p=config.top_p, seed=config.seed, logprobs=config.wanted_logprobs(),
    )
    stop = vote_stop_rule(ctx, config.stop_rule, config.stop_params) if config.early_stop else None
    # one request per sample, each with its own seed (the watched paths stream them one by one)
    requests = [base.model_copy(update={"seed": config.seed + i}) for i in range(config.n)]
    if config.probe is not None:
        outcomes, watcher = await run_probed(ctx, requests, config.probe, stop_when=stop,
                                             convert=lambda i, c: to_sample(ctx, i, c))
        samples = [watcher.sample(o, outcome_sample) for o in outcomes]
        return Sampled(samples=tuple(samples), stopped_early=bool(watcher.stopped) or any(
            o.status == "cancelled" and o.index not in watcher.stopped for o in outcomes))
    if config.prune is not None:
        outcomes, pruner = await run_pruned(ctx, requests, config.prune, stop_when=stop,
                                            convert=lambda i, c: to_sample(ctx, i, c))
        samples = [outcome_sample(o) for o in outcomes]
        if config.prune.inherit_votes:
            samples = inherit_votes(samples, pruner.pruned)
        return Sampled(samples=tuple(samples), stopped_early=any(o.status == "cancelled" for o in outcomes),
                       prunes=tuple(pruner.pruned))
    if config.n > 1 and config.batch and not config.early_stop:
        async def batch() -> list[Sample]:
            completions = await ctx.generate(base.model_copy(update={"n": config.n}))
            return [to_sample(ctx, i, c) for i, c in enumerate(completions)]

        [outcome] = await ctx.branches([batch], label="batch")
        return Sampled(samples=tuple(outcome.value if outcome.status == "ok" and outcome.value
                                     else [outcome_sample(outcome)]))

    async def one(i: int) -> Sample:
        [completion] = await ctx.generate(requests[i])
        return to_sample(ctx, i, completion)

    outcomes = await ctx.branches([partial(one, i) for i in range(config.n)], label="sample", stop_when=stop,
                                  max_in_flight=config.in_flight)
    return Sampled(samples=tuple(outcome_sample(o) for o in outcomes),
                   stopped_early=any(o.status == "cancelled" for o in outcomes))


async def run(ctx: Context, problem: Problem, config: SCConfig) -> Answer:
    drawn = await sample(ctx, problem, config)
    extra = {"prunes": [r.model_dump(exclude={"partial_text"}) for r in drawn.prunes]} if config.prune else {}
    return answer_from(ctx, list(drawn.samples), config.vote, stopped_early=drawn.stopped_early, **extra)


register(StrategySpec("self-consistency", run, SCConfig, aliases=("sc",),
                      description="N samples, majority (or weighted) vote, early stop once the vote is decided"))


class GreedyConfig(Frozen):
    max_tokens: int = Field(512, ge=1)
    logprobs: int | None = Field(None, ge=0)


async def run_greedy(ctx: Context, problem: Problem, config: GreedyConfig) -> Answer:
    sc = SCConfig(n=1, temperature=0.0, top_p=1.0, max_tokens=config.max_tokens, logprobs=config.logprobs,
                  early_stop=False)
    return await run(ctx, problem, sc)


register(StrategySpec("greedy", run_greedy, GreedyConfig, description="one sample at temperature 0"))
