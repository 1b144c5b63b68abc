"""Pure pieces of choosing by judgment: the judge prompts, reading a judge's verdict from its logprobs, a process
reward's per-step aggregation, and votes weighted by scores. No engine calls here (strategies/scorers.py makes them).

The prompts end with a fixed question whose first answer token is the verdict (Yes/No, A/B, a number), so one token
with its top logprobs is the whole judgment: P(yes) is the probability mass on "yes" against "no" among the top
tokens, as generative verifiers score (pointwise); a pairwise judge compares P(A) with P(B), asked in both orders to
cancel the position bias."""
from __future__ import annotations

import math
import re
from typing import Literal, Sequence

from tts.kernel.types import Message, TokenLogprob

VERIFY_CUE = "Is the proposed solution correct? Answer Yes or No."
PAIR_CUE = "Which solution reaches the correct final answer? Answer A or B."
SELECT_CUE = "Which solution reaches the correct final answer? Answer with its number only."
Aggregate = Literal["min", "last", "product", "mean"]


def verify_messages(question: str, solution: str) -> tuple[Message, ...]:
    return (Message(role="user", content=f"Problem:\n{question}\n\nProposed solution:\n{solution}\n\n{VERIFY_CUE}"),)


def pair_messages(question: str, a: str, b: str) -> tuple[Message, ...]:
    return (Message(role="user", content=f"Problem:\n{question}\n\nSolution A:\n{a}\n\nSolution B:\n{b}\n\n"
                                         f"{PAIR_CUE}"),)


def select_messages(question: str, solutions: Sequence[str]) -> tuple[Message, ...]:
    listed = "\n\n".join(f"Solution {i + 1}:\n{s}" for i, s in enumerate(solutions))
    return (Message(role="user", content=f"Problem:\n{question}\n\n{listed}\n\n{SELECT_CUE}"),)


def _mass(first: TokenLogprob, labels: dict[str, str]) -> dict[str, float]:
    """Probability mass on each label among the first token's alternatives (case and spaces ignored)."""
    mass = {label: 0.0 for label in set(labels.values())}
    seen = set()
    for token, lp in (first.top or ((first.token, first.logprob),)):
        key = token.strip().lower()
        if key in labels and token not in seen:
            seen.add(token)
            mass[labels[key]] += math.exp(lp)
    return mass


def _verdict(logprobs: Sequence[TokenLogprob] | None, text: str, first: str, second: str) -> float | None:
    """P(first) / (P(first) + P(second)) from the verdict token's alternatives; from the text where they name
    neither; None when the judge said neither (counted as unscored, never guessed)."""
    if logprobs:
        m = _mass(logprobs[0], {first: first, second: second})
        if m[first] + m[second] > 0:
            return m[first] / (m[first] + m[second])
    word = text.strip().lower()
    return 1.0 if word.startswith(first) else 0.0 if word.startswith(second) else None


def p_yes(logprobs: Sequence[TokenLogprob] | None, text: str) -> float | None:
    """A pointwise verifier's P(yes) against P(no)."""
    return _verdict(logprobs, text, "yes", "no")


def p_first(logprobs: Sequence[TokenLogprob] | None, text: str) -> float | None:
    """A pairwise judge's P(A) against P(B)."""
    return _verdict(logprobs, text, "a", "b")


def picked(text: str, k: int) -> int | None:
    """The 0-based solution a select-one-of-k judge named, or None."""
    m = re.search(r"\d+", text or "")
    if m and 1 <= int(m.group()) <= k:
        return int(m.group()) - 1
    return None


def aggregate_steps(step_rewards: Sequence[float], how: Aggregate) -> float | None:
    """A process reward model's per-step positive probabilities as one score."""
    if not step_rewards:
        return None
    if how == "min":
        return min(step_rewards)
    if how == "last":
        return step_rewards[-1]
    if how == "product":
        return math.prod(step_rewards)
    return sum(step_rewards) / len(step_rewards)


def split_steps(text: str, delimiter: str = "\n\n") -> list[str]:
    """A solution's steps, Qwen2.5-Math-PRM style: split on a delimiter, empty pieces dropped."""
    return [s.strip() for s in text.split(delimiter) if s.strip()]


def weighted_votes(answers: Sequence[str | None], scores: Sequence[float | None]) -> dict[str, float]:
    """Each answer class's summed score (weighted majority); unscored and unanswered samples add nothing."""
    out: dict[str, float] = {}
    for answer, score in zip(answers, scores):
        if answer is not None and score is not None:
            out[answer] = out.get(answer, 0.0) + score
    return out


def close_vote(votes: dict[str, int], margin: float) -> bool:
    """Whether the two leading classes are within `margin` of the votes cast (a share), so a judge should look."""
    total = sum(votes.values())
    if total == 0 or len(votes) < 2:
        return False
    first, second = sorted(votes.values(), reverse=True)[:2]
    return (first - second) / total <= margin
