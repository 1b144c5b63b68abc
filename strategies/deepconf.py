"""DeepConf online (Fu et al., "Deep Think with Confidence"): a few warm-up traces run to the end and calibrate a
confidence threshold; every later trace is ended as soon as its sliding-window confidence falls below it (inside
the engine where the engine can, else by cancelling its stream), and the group stops once the vote is settled.
The answer is the confidence-weighted vote of the traces that finished.
"""
from __future__ import annotations

from functools import partial

from pydantic import Field, model_validator

from tts.kernel.client_stop import ClientConfidenceStop
from tts.kernel.confidence import calibrate
from tts.kernel.context import Context
from tts.kernel.types import Answer, ConfidenceStop, Frozen, GenerateRequest, Problem, Sample
from tts.strategies.registry import StrategySpec, register
from tts.kit import stopping
from tts.kit.aggregate import vote_counts
from tts.strategies.samples import (StopName, VoteRule, answer_from, canonical, outcome_sample, to_sample,
                                     vote_stop_rule)


class DeepConfConfig(Frozen):
    n: int = Field(16, ge=2, le=16_384, description="traces at most, warm-up included")
    warmup: int = Field(4, ge=1, description="traces that run to the end and calibrate the threshold")
    # the share of warm-up-like traces allowed to finish: 0.9 is DeepConf-high (safe), 0.1 DeepConf-low (aggressive)
    keep: float = Field(0.9, gt=0.0, le=1.0)
    window: int = Field(32, ge=1)
    top_k: int = Field(10, ge=1, le=20)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    early_stop: bool = True  # stop the remaining traces once the vote (warm-up included) is settled
    stop_rule: StopName = "decided"
    stop_params: dict[str, float] = Field(default_factory=dict)
    vote: VoteRule = "deepconf"
    # traces after the warm-up that run at once (None: all). When the vote settles, the traces running are paid for
    # up to that point and the ones not started cost nothing: fewer at once spend fewer tokens, at more latency.
    in_flight: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _room_after_warmup(self) -> "DeepConfConfig":
        if self.warmup >= self.n:
            raise ValueError(f"warmup ({self.warmup}) must be below n ({self.n}): later traces are what it saves on")
        try:  # the stop rule is built now, so a bad parameter is a config error, not an error on every row
            stopping.make(self.stop_rule, **self.stop_params)
        except TypeError as e:
            raise ValueError(f"stop_params do not fit stop rule '{self.stop_rule}': {e}") from None
        return self


def _warmup_lowest(samples: list[Sample]) -> list[float]:
    return [s.stats.lowest_window_conf for s in samples
            if s.status == "ok" and s.stats is not None and s.stats.lowest_window_conf is not None]


async def run(ctx: Context, problem: Problem, config: DeepConfConfig) -> Answer:
    base = GenerateRequest(**ctx.task.inputs(problem), max_tokens=config.max_tokens,
                           temperature=config.temperature, top_p=config.top_p, logprobs=config.top_k)

    async def one(i: int, stop: ConfidenceStop | None) -> Sample:
        request = base.model_copy(update={"seed": config.seed + i, "confidence_stop": stop})
        [completion] = await ctx.generate(request)
        return to_sample(ctx, i, completion, window=config.window)

    warm = await ctx.branches([partial(one, i, None) for i in range(config.warmup)], label="warmup")
    warmup = [outcome_sample(o) for o in warm]
    lowest = _warmup_lowest(warmup)
    if not lowest:  # every warm-up trace failed: nothing to calibrate on, and nothing more is worth spending
        return answer_from(ctx, warmup, config.vote, threshold=None, warmup=config.warmup)
    threshold = calibrate(lowest, config.keep)
    stop = ConfidenceStop(threshold=threshold, window=config.window, top_k=config.top_k)
    ctx.emit("confidence_threshold", threshold=round(threshold, 4), warmup=len(lowest), keep=config.keep)
    rule = vote_stop_rule(ctx, config.stop_rule, config.stop_params, prior=warmup) if config.early_stop else None
    # the warm-up may already settle the vote (every trace agreeing): then no trace is worth starting
    votes = vote_counts(canonical(ctx.task, warmup))
    settled = config.early_stop and bool(votes) and stopping.make(config.stop_rule, **config.stop_params)(
        votes, config.n - config.warmup)
    rest = [] if settled else await ctx.branches(
        [partial(one, i, stop) for i in range(config.warmup, config.n)], label="sample", stop_when=rule,
        max_in_flight=config.in_flight)
    samples = warmup + [outcome_sample(o) for o in rest]
    lowconf = sum(s.status == "lowconf" for s in samples)
    by = "client" if isinstance(ctx.engine, ClientConfidenceStop) else "engine"
    return answer_from(ctx, samples, config.vote, stopped_early=settled or any(o.status == "cancelled" for o in rest),
                       threshold=round(threshold, 4), warmup=config.warmup, lowconf=lowconf, stopped_by=by)


register(StrategySpec("deepconf", run, DeepConfConfig,
                      description="DeepConf online: warm-up traces set a confidence bar; later traces stop below it"))
