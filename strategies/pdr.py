"""Parallel-Distill-Refine (PDR) and sequential refinement (SR, its one-draft case).

From "Rethinking Thinking Tokens: LLMs as Improvement Operators": each round drafts M solutions in parallel (round 1
from the problem, later rounds from the workspace), distils them into a bounded textual workspace of at most W
tokens, and the next round refines from it. Every call's context is the problem plus at most W workspace tokens,
however many tokens the run spends. All drafts of a round share one prompt, so the engine's prefix cache serves
them; each round's cached prompt tokens are reported in `Answer.meta["rounds"]`.

Distillation (`distill`):
- "topk": the k best drafts (most-voted answer first, then most confident, then shortest), each cut from the front
  to fit W/k tokens, so that its conclusion stays.
- "summary": the model writes a summary of agreements, contradictions and open steps in at most W tokens
  (enforced by the call's max_tokens).
Stops early when a round's answers agree (semantic entropy <= `stop_entropy`; for SR, when a refinement keeps the
previous answer). The final answer is the vote over the last round's drafts.
"""
from __future__ import annotations

from functools import partial
from typing import Literal

from pydantic import Field

from tts.strategies.registry import StrategySpec, register
from tts.strategies.samples import VoteRule, answer_from, canonical, fit_tail, outcome_sample, to_sample
from tts.kit.aggregate import vote_counts
from tts.kernel.context import Context
from tts.kit.probe import ProbeConfig
from tts.strategies.probed import run_probed
from tts.kit.prune import PruneConfig
from tts.strategies.pruned import run_pruned
from tts.kernel.types import Answer, Frozen, GenerateRequest, Message, Problem, Sample
from tts.kit.voting import semantic_entropy

SUMMARY_PROMPT = (
    "Below are {m} independent attempts at the same problem. Write a concise workspace for someone who will solve "
    "it again: the steps and results the attempts agree on, where they contradict each other, which steps look "
    "wrong or remain open, and the candidate final answers with how many attempts reached each. Do not solve the "
    "problem from scratch.\n\nProblem: {question}\n\n{attempts}"
)
REFINE_SUFFIX = (
    "\n\nEarlier attempts were distilled into this workspace (it may contain mistakes):\n<workspace>\n{workspace}\n"
    "</workspace>\n\nUse it: check the steps, fix what is wrong, and write a complete, improved solution."
)


class PDRConfig(Frozen):
    drafts: int = Field(4, ge=1, le=1024, description="M: drafts per round")
    rounds: int = Field(2, ge=1, le=64, description="R: rounds")
    workspace_tokens: int = Field(512, ge=16, description="W: the workspace's bound in tokens")
    distill: Literal["topk", "summary"] = "topk"
    top_k: int = Field(2, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    stop_entropy: float | None = Field(0.0, ge=0.0, description="stop when a round's answers agree this much")
    vote: VoteRule = "majority"
    seed: int = 0
    prune: PruneConfig | None = None  # prune redundant drafts of a round while they stream
    probe: ProbeConfig | None = None  # stop a round's drafts once their probed answers agree (strategies/probed.py)


class SRConfig(PDRConfig):
    drafts: int = Field(1, ge=1, le=1)
    rounds: int = Field(3, ge=1, le=64)
    top_k: int = 1


def rank(samples: list[Sample]) -> list[Sample]:
    votes = vote_counts(samples)
    conf = lambda s: s.stats.mean_logprob if s.stats and s.stats.mean_logprob is not None else 0.0
    return sorted((s for s in samples if s.status in ("ok", "probed")),
                  key=lambda s: (-votes.get(s.answer, 0), -conf(s), s.completion_tokens, s.index))


async def distill(ctx: Context, problem: Problem, samples: list[Sample], config: PDRConfig) -> str:
    if config.distill == "summary":
        attempts = "\n\n".join(f"Attempt {i + 1}:\n{fit_tail(ctx.count_tokens, s.text, config.max_tokens)}"
                               for i, s in enumerate(rank(samples)))
        prompt = SUMMARY_PROMPT.format(m=len(samples), question=problem.question, attempts=attempts)
        [c] = await ctx.generate(GenerateRequest(messages=(Message(role="user", content=prompt),),
                                                 max_tokens=config.workspace_tokens, temperature=0.0))
        return c.text.strip()
    chosen = rank(samples)[: config.top_k]
    header = "Candidate solution {i}:\n"
    per = config.workspace_tokens // max(1, len(chosen)) - ctx.count_tokens(header.format(i=9)) - 2
    return "\n\n".join(header.format(i=i + 1) + fit_tail(ctx.count_tokens, s.text, max(per, 1)) for i, s in enumerate(chosen))


async def run(ctx: Context, problem: Problem, config: PDRConfig, upstream: Answer | None = None) -> Answer:
    """`upstream`: the answer of a sampling stage composed before this one; its surviving samples are round
    0's drafts."""
    base = ctx.task.messages(problem)
    workspace: str | None = None
    rounds: list[dict] = []
    samples: list[Sample] = []
    previous: str | None = None
    stopped = False
    if upstream is not None:
        survivors = [s for s in upstream.samples if s.status == "ok"]
        if survivors:
            previous = upstream.answer
            workspace = await distill(ctx, problem, survivors, config)
    for r in range(config.rounds):
        before = ctx.usage
        messages = base if workspace is None else (
            *base[:-1], Message(role="user", content=base[-1].content + REFINE_SUFFIX.format(workspace=workspace)))
        request = GenerateRequest(messages=messages, max_tokens=config.max_tokens, temperature=config.temperature,
                                  top_p=config.top_p, logprobs=0)

        requests = [request.model_copy(update={"seed": config.seed + 1000 * r + i}) for i in range(config.drafts)]
        probed = None
        if config.probe is not None:
            outcomes, probed = await run_probed(ctx, requests, config.probe, label=f"round{r + 1}",
                                                convert=lambda i, c: to_sample(ctx, i, c))
            pruned = len(probed.pruned)
        elif config.prune is not None:
            outcomes, pruner = await run_pruned(ctx, requests, config.prune, label=f"round{r + 1}",
                                                convert=lambda i, c: to_sample(ctx, i, c))
            pruned = len(pruner.pruned)
        else:
            async def draft(i: int) -> Sample:
                [c] = await ctx.generate(requests[i])
                return to_sample(ctx, i, c)

            outcomes = await ctx.branches([partial(draft, i) for i in range(config.drafts)], label=f"round{r + 1}")
            pruned = 0
        samples = canonical(ctx.task, [probed.sample(o, outcome_sample) if probed else outcome_sample(o)
                                  for o in outcomes if o.status != "pruned"])
        answers = [s.answer for s in samples if s.status in ("ok", "probed")]
        agreement = answers if config.drafts > 1 else ([previous] if previous else []) + answers
        entropy = semantic_entropy(agreement) if agreement else None
        spent = ctx.usage - before
        rounds.append({"round": r + 1, "answers": [s.answer for s in samples], "semantic_entropy": entropy,
                       "completion_tokens": spent.completion_tokens, "prompt_tokens": spent.prompt_tokens,
                       "cached_prompt_tokens": spent.cached_prompt_tokens,
                       "workspace_tokens": ctx.count_tokens(workspace) if workspace else 0, "pruned": pruned})
        ctx.emit("round_end", **rounds[-1])
        if not answers or any(s.status == "budget" for s in samples):
            break
        settled = (config.stop_entropy is not None and entropy is not None and len(agreement) > 1
                   and entropy <= config.stop_entropy)
        if r == config.rounds - 1 or settled:
            stopped = settled and r < config.rounds - 1
            break
        previous = answer_from(ctx, samples, config.vote).answer
        workspace = await distill(ctx, problem, samples, config)
    return answer_from(ctx, samples, config.vote, stopped_early=stopped, rounds=rounds)


register(StrategySpec("pdr", run, PDRConfig, aliases=("parallel-distill-refine",), takes_upstream=True,
                      description="parallel-distill-refine: drafts distilled into a workspace, refined in rounds"))
register(StrategySpec("sr", run, SRConfig, aliases=("sequential-refinement",), takes_upstream=True,
                      description="sequential refinement: one draft refined round after round"))
