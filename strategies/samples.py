"""Pieces every sampling strategy shares: a completion turned into a Sample, an outcome into a Sample, answers mapped
to their equivalence class, an incremental early-stop rule, the Answer from a vote, and a text cut to a token limit."""
from __future__ import annotations

from typing import Callable, Literal, Sequence

from tts.kernel.context import BranchOutcome, Context
from tts.kernel.errors import ConfigError
from tts.kernel.confidence import lowest_group
from tts.kernel.types import Answer, Completion, Sample, TraceStats
from tts.kit import stopping
from tts.kit.aggregate import vote_counts
from tts.kit.voting import semantic_entropy, trace_stats, vote

VoteRule = Literal["majority", "logprob", "deepconf", "entropy", "shortest"]
StopName = Literal["decided", "lead", "beta", "dirichlet"]


def to_sample(ctx: Context, index: int, completion: Completion, window: int = 64) -> Sample:
    stats = None
    if completion.logprobs:
        stats = trace_stats(completion.logprobs, window)
    elif completion.confidence:
        stats = TraceStats(tokens=len(completion.confidence), lowest_window_conf=lowest_group(completion.confidence,
                                                                                              window))
    if completion.finish_reason == "confidence":  # cut short by a confidence stop: its partial text has no answer
        return Sample(index=index, text=completion.text, answer=None, completion_tokens=completion.completion_tokens,
                      status="lowconf", stats=stats, thinking_tokens=completion.thinking_tokens)
    answer = ctx.task.read(completion)
    ctx.answered(answer)
    return Sample(index=index, text=completion.text, answer=answer, completion_tokens=completion.completion_tokens,
                  stats=stats, thinking_tokens=completion.thinking_tokens, tool_calls=completion.tool_calls)


def outcome_sample(o: BranchOutcome[Sample]) -> Sample:
    if o.status == "ok" and o.value is not None:
        return o.value
    # a branch cut by a stop, a pruner or the budget was charged what it generated: its row says so
    return Sample(index=o.index, text="", answer=None, completion_tokens=o.tokens, status=o.status, error=o.error)


def canonical(task, samples: list[Sample]) -> list[Sample]:
    """Samples whose answers are replaced by their equivalence class's representative (the task decides)."""
    answers = task.canonicalize([s.answer for s in samples])
    return [s if s.answer == a else s.model_copy(update={"answer": a}) for s, a in zip(samples, answers)]


def vote_stop_rule(ctx: Context, name: StopName, params: dict[str, float], prior: Sequence[Sample] = ()):
    """A branch group's stop rule: stop once the vote over the samples so far (`prior` ones included) is settled by
    criterion `name`. It keeps the votes and the class representatives as outcomes arrive: O(classes) per outcome."""
    criterion = stopping.make(name, **params)
    reps: list[str] = []
    votes: dict[str, int] = {}

    def count(sample: Sample) -> None:
        if sample.status == "ok" and sample.answer is not None:
            answer = ctx.task.canonicalize([*reps, sample.answer])[-1]
            if answer not in votes:
                reps.append(answer)
            votes[answer] = votes.get(answer, 0) + 1

    for sample in prior:
        count(sample)

    def rule(outcome: BranchOutcome[Sample], pending: int) -> str | None:
        if outcome.status == "ok" and outcome.value is not None:
            count(outcome.value)
        return f"vote settled ({name})" if votes and criterion(votes, pending) else None

    return rule


def answer_from(ctx: Context, samples: list[Sample], rule: str, stopped_early: bool = False, **meta) -> Answer:
    samples = canonical(ctx.task, samples)
    chosen, _ = vote(samples, rule)
    votes = vote_counts(samples)
    top = sorted(votes.values(), reverse=True)
    if ctx.task.merge is not None and len(top) > 1 and top[0] == top[1]:  # whole answers tie: vote on their parts
        merged = ctx.task.merge([s.answer for s in samples if s.status == "ok" and s.answer is not None])
        if merged is not None:
            chosen, meta = merged[0], {**meta, "merged": merged[1]}
    exhausted = any(s.status == "budget" for s in samples)
    errors = [s.error for s in samples if s.status == "error"]
    notes = []
    if exhausted:
        notes.append(f"budget exhausted ({ctx.budget.exhausted_reason}): answered from {sum(votes.values())} votes")
    if errors:
        notes.append(f"{len(errors)} sample(s) failed: {errors[0]}")
    unread = sum(s.status == "ok" and s.answer is None for s in samples)
    if unread:  # e.g. JSON that does not meet the request's schema: dropped from the vote, counted here
        notes.append(f"{unread} sample(s) gave no answer that could be read")
        meta = {**meta, "unread": unread}
    ok = [s.answer for s in samples if s.status == "ok"]
    first = next((s.index for s in samples if s.status == "ok" and s.answer == chosen and chosen is not None), None)
    return Answer(answer=chosen, votes=votes, chosen=first, samples=tuple(samples), stopped_early=stopped_early,
                  budget_exhausted=exhausted, semantic_entropy=round(semantic_entropy(ok), 4) if ok else None,
                  note="; ".join(notes) or None, meta=meta)


def needs_samples(previous) -> None:
    """check_upstream of a stage that chooses among the previous stage's samples: there must be several."""
    if getattr(previous, "n", 2) < 2 or type(previous).__name__ == "GreedyConfig":
        raise ConfigError("a judge chooses among samples: the stage before it draws one (give it n >= 2)")


def fit_tail(count_tokens: Callable[[str], int], text: str, limit: int) -> str:
    """The longest tail of `text` within `limit` tokens (the end of a solution holds its answer)."""
    if count_tokens(text) <= limit:
        return text
    lo, hi = 0, len(text)  # binary search on how many leading characters to drop
    while lo < hi:
        mid = (lo + hi) // 2
        if count_tokens(text[mid:]) <= limit:
            hi = mid
        else:
            lo = mid + 1
    return "..." + text[lo + 3:] if lo + 3 < len(text) else ""
