"""Choosing by judgment: best-of-N and weighted majority over sampled traces, and a judge stage that a composition
spends only where the vote is close (`sc(n=16) | judge(kind='pairwise')`). The scorers are in strategies/scorers.py;
their calls go through `ctx.verifier()`: one budget, verification reported apart."""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.kernel.types import Answer, Frozen, Problem, Sample
from tts.kit import judging
import tts.strategies.scorers as scorers
from tts.strategies.registry import StrategySpec, register
from tts.strategies.samples import answer_from, canonical, needs_samples
from tts.strategies.self_consistency import SCConfig, sample


def _check_scorer(kind: str, options: dict[str, Any]) -> None:
    scorers.make(kind, options)  # an unknown scorer or option is a ConfigError now, before any engine starts


class BestOfNConfig(Frozen):
    n: int = Field(8, ge=1, le=1024)
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    scorer: str = "verifier"
    scorer_options: dict[str, Any] = Field(default_factory=dict)
    # weighted majority: the answer class with the largest summed score; else the single best-scored sample
    weighted: bool = False
    # judge one representative per answer class (cheaper: classes, not samples); weighted majority then gives each
    # sample its class's score
    per_class: bool = True

    @model_validator(mode="after")
    def _scorer(self) -> "BestOfNConfig":
        _check_scorer(self.scorer, self.scorer_options)
        if not scorers.get(self.scorer).pointwise:
            raise ValueError(f"scorer '{self.scorer}' compares candidates; best-of-N needs a score per candidate "
                             f"(use judge(kind='{self.scorer}') after a sampling stage)")
        return self


def _representatives(samples: list[Sample]) -> list[Sample]:
    """The first sample of each answer class, in index order."""
    seen: dict[str, Sample] = {}
    for s in sorted(samples, key=lambda s: s.index):
        if s.status in ("ok", "inherited", "probed") and s.answer is not None and s.answer not in seen:
            seen[s.answer] = s
    return list(seen.values())


async def run_best_of_n(ctx: Context, problem: Problem, config: BestOfNConfig) -> Answer:
    drawn = await sample(ctx, problem, SCConfig(n=config.n, temperature=config.temperature, seed=config.seed,
                                                max_tokens=config.max_tokens, early_stop=False, batch=False))
    samples = canonical(ctx.task, list(drawn.samples))
    voters = [s for s in samples if s.status == "ok" and s.answer is not None]
    base = answer_from(ctx, samples, "majority")
    if not voters:
        return base
    spec, scorer_config = scorers.make(config.scorer, config.scorer_options)
    judged = _representatives(voters) if config.per_class else voters
    verdict = await spec.judge(ctx, problem, judged, scorer_config)
    by_answer = {s.answer: score for s, score in zip(judged, verdict.scores)} if config.per_class else None
    scores = [by_answer.get(s.answer) if by_answer is not None else
              verdict.scores[judged.index(s)] for s in voters]
    if config.weighted:
        weights = judging.weighted_votes([s.answer for s in voters], scores)
        chosen = max(weights, key=lambda a: (weights[a], -min(s.index for s in voters if s.answer == a))) \
            if weights else base.answer
    else:
        best = verdict.chosen
        chosen = judged[best].answer if best is not None else base.answer
    unscored = sum(1 for x in verdict.scores if x is None)
    note = f"{unscored} of {len(judged)} candidates unscored by {config.scorer}" if unscored else base.note
    return base.model_copy(update={"answer": chosen, "note": note, "meta": {
        **base.meta, "scorer": config.scorer, "weighted": config.weighted,
        "scores": {str(s.index): (None if x is None else round(x, 4)) for s, x in zip(voters, scores)},
        "judge": verdict.record}})


class JudgeConfig(Frozen):
    kind: str = "pairwise"
    options: dict[str, Any] = Field(default_factory=dict)
    # judge only when the two leading classes are within this share of the votes (0: only exact ties; 1: always)
    margin: float = Field(0.25, ge=0.0, le=1.0)
    contenders: int = Field(2, ge=2, le=16)  # the leading classes the judge chooses among

    @model_validator(mode="after")
    def _kind(self) -> "JudgeConfig":
        _check_scorer(self.kind, self.options)
        return self


async def run_judge(ctx: Context, problem: Problem, config: JudgeConfig, upstream: Answer | None = None) -> Answer:
    """Keep the upstream vote unless it is close; then the judge chooses among the leading classes' first samples."""
    if upstream is None:
        raise ConfigError("judge is a stage after a sampling strategy: e.g. sc(n=16) | judge(kind='pairwise')")
    votes = upstream.votes
    if not judging.close_vote(votes, config.margin):
        return upstream.model_copy(update={"meta": {**upstream.meta, "judge": {"ran": False}}})
    leaders = sorted(votes, key=lambda a: -votes[a])[: config.contenders]
    reps = [r for r in _representatives(list(upstream.samples)) if r.answer in leaders]
    reps.sort(key=lambda r: leaders.index(r.answer))
    spec, scorer_config = scorers.make(config.kind, config.options)
    verdict = await spec.judge(ctx, problem, reps, scorer_config)
    chosen = reps[verdict.chosen].answer if verdict.chosen is not None else upstream.answer
    ctx.emit("judge", scorer=config.kind, contenders=leaders, chosen=chosen, overturned=chosen != upstream.answer)
    return upstream.model_copy(update={"answer": chosen, "meta": {
        **upstream.meta, "judge": {"ran": True, "kind": config.kind, "contenders": leaders, "chosen": chosen,
                                   "overturned": chosen != upstream.answer, **verdict.record}}})


async def _preflight_scorer(kind: str, options: dict[str, Any]) -> None:
    spec, config = scorers.make(kind, options)
    if spec.preflight is not None:
        await spec.preflight(config)


async def _preflight_bon(config: BestOfNConfig) -> None:
    await _preflight_scorer(config.scorer, config.scorer_options)


async def _preflight_judge(config: JudgeConfig) -> None:
    await _preflight_scorer(config.kind, config.options)


register(StrategySpec("best-of-n", run_best_of_n, BestOfNConfig, aliases=("bon",), preflight=_preflight_bon,
                      description="N samples scored by a verifier or reward model; the best (or weighted majority)"))
register(StrategySpec("judge", run_judge, JudgeConfig, takes_upstream=True, needs_upstream=True,
                      check_upstream=needs_samples,
                      preflight=_preflight_judge,
                      description="a stage that lets a judge choose among the leading answers when the vote is close"))
