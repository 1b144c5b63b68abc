"""Early-stopping criteria for sampling strategies: given the votes so far and how many samples are still running,
is the vote settled? Each is `(votes, pending) -> bool`, built from a name and its parameters.

- decided: the leader stays strictly ahead even if every pending sample goes to the runner-up (never changes the
  outcome of the full vote; it only saves the samples that cannot matter).
- lead: the leader is at least `k` votes ahead of the runner-up (may stop before the vote is decided).
- beta: Adaptive-Consistency's Beta stopping rule: with a uniform prior on the share p of the leader between the top
  two answers, stop when P(p > 1/2 | votes) >= `confidence`.
- dirichlet: Adaptive-Consistency's Dirichlet rule over all answers: stop when the probability that the leader has the
  largest share, under a Dirichlet(1 + votes) posterior, is >= `confidence` (Monte Carlo with a fixed seed).
"""
from __future__ import annotations

import random
from math import comb
from typing import Callable

from tts.kit.aggregate import vote_decided

StopCriterion = Callable[[dict[str, int], int], bool]


def _top_two(votes: dict[str, int]) -> tuple[int, int]:
    ranked = sorted(votes.values(), reverse=True) + [0, 0]
    return ranked[0], ranked[1]


def lead(k: int = 3) -> StopCriterion:
    def rule(votes: dict[str, int], pending: int) -> bool:
        v1, v2 = _top_two(votes)
        return v1 > 0 and (v1 - v2 >= k or vote_decided(votes, pending))
    return rule


def beta_prob_leader(v1: int, v2: int) -> float:
    """P(X > 1/2) for X ~ Beta(v1 + 1, v2 + 1), exact for integer counts."""
    a, b = v1 + 1, v2 + 1
    n = a + b - 1
    cdf = sum(comb(n, j) for j in range(a, n + 1)) / 2**n  # I_{1/2}(a, b)
    return 1.0 - cdf


def beta(confidence: float = 0.95, min_votes: int = 3) -> StopCriterion:
    def rule(votes: dict[str, int], pending: int) -> bool:
        v1, v2 = _top_two(votes)
        if vote_decided(votes, pending):
            return True
        return v1 + v2 >= min_votes and beta_prob_leader(v1, v2) >= confidence
    return rule


def dirichlet(confidence: float = 0.95, min_votes: int = 3, draws: int = 2000, seed: int = 0) -> StopCriterion:
    def rule(votes: dict[str, int], pending: int) -> bool:
        if vote_decided(votes, pending):
            return True
        if sum(votes.values()) < min_votes:
            return False
        counts = list(votes.values())
        leader = counts.index(max(counts))
        rng = random.Random(seed)
        wins = 0
        for _ in range(draws):
            # one extra class stands for every answer not seen yet
            g = [rng.gammavariate(c + 1, 1.0) for c in counts] + [rng.gammavariate(1, 1.0)]
            wins += max(range(len(g)), key=g.__getitem__) == leader
        return wins / draws >= confidence
    return rule


def decided() -> StopCriterion:
    return lambda votes, pending: vote_decided(votes, pending)


CRITERIA: dict[str, Callable[..., StopCriterion]] = {"decided": decided, "lead": lead, "beta": beta,
                                                      "dirichlet": dirichlet}


def make(name: str, **params) -> StopCriterion:
    if name not in CRITERIA:
        raise ValueError(f"unknown stopping rule '{name}'; known: {', '.join(CRITERIA)}")
    return CRITERIA[name](**params)
