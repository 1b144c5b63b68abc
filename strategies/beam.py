"""Search over reasoning steps guided by a scorer (a process reward model, or a verifier reading partial solutions):
beam search and diverse verifier tree search (DVTS), as search-and-learn runs them.

A step is a continuation up to a blank line (`delimiter`). Each round, every live beam is extended by one step; the
partial solutions are scored; the best `n // width` are kept (DVTS: the best one of each of the `n // width`
independent subtrees) and each is extended `width` ways in the next round. A beam is finished when its text holds an
answer the task can read, when it ends without reaching the delimiter, or when it reaches `max_tokens`. The answer
is chosen among finished beams by the scorer's last score (`pick="best"`) or by score-weighted majority
(`pick="weighted"`). Scorer calls go through `ctx.verifier()` (one budget, reported apart).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

import tts.strategies.scorers as scorers
from tts.kernel.context import Context
from tts.kernel.types import Answer, Frozen, GenerateRequest, Message, Problem, Sample
from tts.kit import judging
from tts.strategies.registry import StrategySpec, register
from tts.strategies.samples import answer_from


class BeamConfig(Frozen):
    n: int = Field(8, ge=2, le=256, description="beams alive at each round")
    width: int = Field(4, ge=1, le=64, description="extensions of each kept beam (search-and-learn's beam_width)")
    max_steps: int = Field(8, ge=1, le=64)
    step_tokens: int = Field(160, ge=8)
    max_tokens: int = Field(1024, ge=16, description="a beam's whole text")
    temperature: float = Field(0.8, ge=0.0)
    seed: int = 0
    delimiter: str = "\n\n"
    scorer: str = "verifier"
    scorer_options: dict[str, Any] = Field(default_factory=dict)
    dvts: bool = False  # keep the best beam of each subtree (diversity) instead of the best n // width overall
    pick: Literal["best", "weighted"] = "weighted"

    @model_validator(mode="after")
    def _shape(self) -> "BeamConfig":
        if self.n % self.width:
            raise ValueError(f"n ({self.n}) must be a multiple of width ({self.width})")
        scorers.make(self.scorer, self.scorer_options)
        if not scorers.get(self.scorer).pointwise:
            raise ValueError(f"scorer '{self.scorer}' compares candidates; beam search needs a score per beam")
        return self


class Beam(Frozen):
    text: str
    tree: int  # the subtree (DVTS) it grew in
    tokens: int = 0
    score: float | None = None
    done: bool = False


async def _extend(ctx: Context, problem: Problem, config: BeamConfig, beams: list[Beam], step: int) -> list[Beam]:
    """Every beam one step longer (beams that cannot grow are returned finished)."""
    base = ctx.task.messages(problem)

    async def grow(i: int, beam: Beam) -> Beam:
        room = min(config.step_tokens, config.max_tokens - beam.tokens)
        if room <= 0:
            return beam.model_copy(update={"done": True})
        messages = (*base, Message(role="assistant", content=beam.text)) if beam.text else base
        [c] = await ctx.generate(GenerateRequest(
            messages=messages, continue_final=bool(beam.text), max_tokens=room, temperature=config.temperature,
            seed=config.seed + 1000 * step + i, stop=(config.delimiter,)))
        text = beam.text + (config.delimiter if beam.text else "") + c.text.strip()
        ended = (c.finish_reason != "stop" or ctx.task.extract(text) is not None or not c.text.strip()
                 or beam.tokens + c.completion_tokens >= config.max_tokens)
        return Beam(text=text, tree=beam.tree, tokens=beam.tokens + c.completion_tokens, done=ended)

    outcomes = await ctx.branches([lambda i=i, b=b: grow(i, b) for i, b in enumerate(beams)], label=f"step{step}")
    return [o.value for o in outcomes if o.status == "ok" and o.value is not None]


async def _score(ctx: Context, problem: Problem, config: BeamConfig, beams: list[Beam]) -> list[Beam]:
    if not beams:
        return beams
    spec, scorer_config = scorers.make(config.scorer, config.scorer_options)
    candidates = [Sample(index=i, text=b.text, answer=None, completion_tokens=b.tokens) for i, b in enumerate(beams)]
    verdict = await spec.judge(ctx, problem, candidates, scorer_config)
    return [b.model_copy(update={"score": s}) for b, s in zip(beams, verdict.scores)]


def _rank(score: float | None) -> float:
    return -1.0 if score is None else score  # unscored last


def _keep(beams: list[Beam], config: BeamConfig) -> list[Beam]:
    """The beams to extend next round: the best n // width (DVTS: the best of each subtree); unscored last."""
    rank = lambda b: _rank(b.score)  # noqa: E731
    if config.dvts:
        best: dict[int, Beam] = {}
        for b in beams:
            if b.tree not in best or rank(b) > rank(best[b.tree]):
                best[b.tree] = b
        return list(best.values())
    return sorted(beams, key=rank, reverse=True)[: config.n // config.width]


async def run_beam(ctx: Context, problem: Problem, config: BeamConfig) -> Answer:
    keep = config.n // config.width
    live = [Beam(text="", tree=i % keep) for i in range(config.n)]
    finished: list[Beam] = []
    parents: list[Beam] = []
    rounds = 0
    for step in range(config.max_steps):
        if not live or ctx.budget.exhausted_reason:
            break
        rounds += 1
        grown = await _score(ctx, problem, config, await _extend(ctx, problem, config, live, step))
        finished += [b for b in grown if b.done]
        parents = _keep([b for b in grown if not b.done], config)
        if len(finished) >= config.n:
            parents = []
            break
        live = [p for p in parents for _ in range(config.width)][: config.n - len(finished)]
    # out of steps or budget: the kept partial solutions are judged as they stand (most hold no answer)
    finished += [b.model_copy(update={"done": True}) for b in parents]
    samples = [Sample(index=i, text=b.text, answer=ctx.task.extract(b.text), completion_tokens=b.tokens)
               for i, b in enumerate(finished)]
    base = answer_from(ctx, samples, "majority")
    scores = [b.score for b in finished]
    answers = [s.answer for s in base.samples]
    if config.pick == "weighted":
        weights = judging.weighted_votes(answers, scores)
        chosen = max(weights, key=lambda a: weights[a]) if weights else base.answer
    else:
        best = max(range(len(finished)), key=lambda i: _rank(scores[i]), default=None)
        chosen = answers[best] if best is not None else base.answer
    first = next((s.index for s in base.samples if s.answer == chosen and chosen is not None), None)
    return base.model_copy(update={"answer": chosen, "chosen": first, "meta": {
        **base.meta, "rounds": rounds, "finished": len(finished), "scorer": config.scorer, "dvts": config.dvts,
        "scores": [None if s is None else round(s, 4) for s in scores]}})


async def _preflight(config: BeamConfig) -> None:
    spec, scorer_config = scorers.make(config.scorer, config.scorer_options)
    if spec.preflight is not None:
        await spec.preflight(scorer_config)


register(StrategySpec("beam", run_beam, BeamConfig, preflight=_preflight,
                      description="search over reasoning steps, each round's partial solutions scored by a PRM or "
                                  "verifier; the best kept (dvts: the best of each subtree)"))
