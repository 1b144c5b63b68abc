"""Voting over sampled answers, and the early-stop rule that knows when a vote is decided."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from tts.kernel.types import Sample
from tts.kit.voting import voters


def vote_counts(samples: Iterable[Sample]) -> dict[str, int]:
    """Votes per answer, ordered by the index of each answer's first sample (so ties break the same way every run)."""
    return dict(Counter(s.answer for s in voters(samples)))


def majority(votes: dict[str, int]) -> str | None:
    """The most-voted answer; a tie goes to the answer whose first sample has the lowest index."""
    from tts.kit.voting import best

    return best(votes)


def vote_decided(votes: dict[str, int], pending: int) -> bool:
    """True when the leader keeps a strict lead even if every pending sample goes to the runner-up."""
    if not votes:
        return False
    ranked = sorted(votes.values(), reverse=True)
    runner_up = ranked[1] if len(ranked) > 1 else 0
    return ranked[0] > runner_up + pending
