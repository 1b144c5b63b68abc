"""Choosing a whole response where no answer extractor applies (an open question, a summary, advice):

    usc      Universal Self-Consistency: the model reads the N responses and names the most consistent one
    medoid   meaning clusters: the responses embedded (sentence-transformers), the largest cluster's medoid

Both draw N samples on their own (`usc8:model` at the server) or take an earlier stage's (`sc(n=8) | usc()`). The
answer is the chosen sample's answer (its whole text on the chat task; on a benchmark task, what the task reads
from it, so the choice can be graded), with the record that chose it. USC's selection call goes through
`ctx.verifier()`: one budget, reported apart as verification.
"""
from __future__ import annotations

from pydantic import Field

from tts.kernel.context import Context
from tts.kernel.types import Answer, Frozen, GenerateRequest, Problem, Sample
from tts.kit.open_choice import clusters, medoid, usc_messages, usc_pick
from tts.strategies.registry import StrategySpec, register
from tts.strategies.samples import answer_from, fit_tail, needs_samples
from tts.strategies.self_consistency import SCConfig, sample


class USCConfig(Frozen):
    n: int = Field(8, ge=2, le=64)
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    # each response is shown within this many tokens (its tail: where a solution's conclusion is)
    response_tokens: int = Field(512, ge=16)
    select_tokens: int = Field(24, ge=4)  # "The most consistent response is Response X" and a little slack


class MedoidConfig(Frozen):
    n: int = Field(8, ge=2, le=256)
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    # cosine similarity (all-MiniLM-L6-v2, unit vectors) at which two responses say the same thing
    threshold: float = Field(0.85, gt=0.0, le=1.0)


async def _drawn(ctx: Context, problem: Problem, config: USCConfig | MedoidConfig,
                 upstream: Answer | None) -> list[Sample]:
    if upstream is not None:
        return list(upstream.samples)
    drawn = await sample(ctx, problem, SCConfig(n=config.n, temperature=config.temperature, seed=config.seed,
                                                max_tokens=config.max_tokens, early_stop=False))
    return list(drawn.samples)


def _chosen(ctx: Context, samples: list[Sample], index: int | None, record: dict, fallback_note: str) -> Answer:
    """The Answer for the chosen sample (by its index), or the vote's when nothing was chosen (said in the note)."""
    base = answer_from(ctx, samples, "majority")
    if index is None:
        note = "; ".join(x for x in (fallback_note, base.note) if x)
        return base.model_copy(update={"note": note, "meta": {**base.meta, **record, "fell_back": True}})
    pick = next(s for s in base.samples if s.index == index)
    return base.model_copy(update={"answer": pick.answer, "chosen": pick.index, "meta": {**base.meta, **record}})


async def run_usc(ctx: Context, problem: Problem, config: USCConfig, upstream: Answer | None = None) -> Answer:
    samples = await _drawn(ctx, problem, config, upstream)
    shown = [s for s in samples if s.status == "ok" and (s.text or s.tool_calls)]
    if len(shown) < 2:
        only = shown[0].index if shown else None
        return _chosen(ctx, samples, only, {"usc": {"ran": False}}, "no responses to choose among")
    texts = [fit_tail(ctx.count_tokens, s.text, config.response_tokens) for s in shown]
    request = GenerateRequest(messages=usc_messages(problem.question, texts), max_tokens=config.select_tokens,
                              temperature=0.0)
    [reply] = await ctx.verifier().generate(request)
    k = usc_pick(reply.text, len(shown))
    ctx.emit("judge", scorer="usc", chosen=None if k is None else shown[k].index)
    record = {"usc": {"ran": True, "said": reply.text[:80], "chosen": None if k is None else shown[k].index}}
    return _chosen(ctx, samples, None if k is None else shown[k].index, record,
                   "USC's reply named no response: the vote's answer")


async def run_medoid(ctx: Context, problem: Problem, config: MedoidConfig, upstream: Answer | None = None) -> Answer:
    from tts.kit.embed import embed

    samples = await _drawn(ctx, problem, config, upstream)
    shown = [s for s in samples if s.status == "ok" and s.text.strip()]
    if len(shown) < 2:
        only = shown[0].index if shown else None
        return _chosen(ctx, samples, only, {"medoid": {"ran": False}}, "no responses to choose among")
    vectors = await embed([s.text for s in shown])
    similarity = (vectors @ vectors.T).tolist()
    groups = clusters(similarity, config.threshold)
    k = medoid(groups[0], similarity)
    ctx.emit("judge", scorer="medoid", chosen=shown[k].index, cluster=len(groups[0]))
    record = {"medoid": {"clusters": [[shown[i].index for i in g] for g in groups], "chosen": shown[k].index,
                         "threshold": config.threshold}}
    return _chosen(ctx, samples, shown[k].index, record, "")


register(StrategySpec("usc", run_usc, USCConfig, takes_upstream=True, check_upstream=needs_samples,
                      description="N samples; the model names the most consistent whole response (open-ended)"))
register(StrategySpec("medoid", run_medoid, MedoidConfig, takes_upstream=True, check_upstream=needs_samples,
                      description="N samples embedded; the medoid of the largest meaning cluster (open-ended)"))
