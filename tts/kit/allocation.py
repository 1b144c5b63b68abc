"""A job's token budget spent across its problems: every problem starts with a few samples, then the rest goes in
draws to the problems whose votes are least settled. The policy is a pure function of the votes so far, so that a
live run (tts/app/allocate.py), its resume and a replay take exactly the same decisions.

A problem's uncertainty is the probability, under Adaptive-Consistency's Beta posterior on the leader's share
between the top two answers, that the leader is not the majority answer: 0.5 for a tie, 1/8 after two agreeing
votes, 1/32 after four. A problem whose uncertainty is below `1 - settled` gets nothing more.
"""
from __future__ import annotations

from typing import Collection, Mapping

from pydantic import Field

from tts.kernel.types import Frozen
from tts.kit.stopping import beta_prob_leader


class AllocationConfig(Frozen):
    total_tokens: int = Field(..., ge=1, description="generated tokens for the whole run")
    initial: int = Field(2, ge=1, description="samples every problem starts with")
    step: int = Field(2, ge=1, description="samples a chosen problem gets per round")
    max_samples: int = Field(16, ge=1, description="samples a problem can get in all")
    settled: float = Field(0.95, gt=0.5, lt=1.0, description="a problem this sure of its leader gets no more")


class ProblemVotes(Frozen):
    votes: dict[str, int] = {}  # canonical answer -> votes
    samples: int = 0  # samples drawn, answered or not


def uncertainty(state: ProblemVotes) -> float:
    ranked = sorted(state.votes.values(), reverse=True) + [0, 0]
    if ranked[0] == 0:
        return 1.0  # no answer yet: as unsettled as a problem gets
    return 1.0 - beta_prob_leader(ranked[0], ranked[1])


def plan_round(states: Mapping[str, ProblemVotes], remaining_tokens: float, tokens_per_sample: float,
               config: AllocationConfig) -> dict[str, int]:
    """Samples to draw next, by problem id: the least settled problems first (fewer samples breaks a tie, then the
    problems' order), `step` each, while the estimated cost fits the remaining budget. Empty: the run is done."""
    open_ = [(uncertainty(s), s.samples, i, pid) for i, (pid, s) in enumerate(states.items())
             if s.samples < config.max_samples and uncertainty(s) > 1.0 - config.settled]
    open_.sort(key=lambda t: (-t[0], t[1], t[2]))
    plan: dict[str, int] = {}
    cost = max(tokens_per_sample, 1.0)
    for _, drawn, _, pid in open_:
        k = min(config.step, config.max_samples - drawn, int(remaining_tokens // cost))
        if k <= 0:
            break
        plan[pid] = k
        remaining_tokens -= k * cost
    return plan


class Draw(Frozen):
    problem: str
    samples: int
    cap: int  # the most generated tokens this draw may spend


def next_draw(states: Mapping[str, ProblemVotes], busy: Collection[str], available: float,
              tokens_per_sample: float, config: AllocationConfig) -> Draw | None:
    """The next draw when a slot frees (the run keeps several in flight): problems not yet at `initial` samples
    first, then the least settled, skipping problems with a draw in flight (`busy`: their votes are not in yet).
    Its cap is its samples' even share of `available` (the budget not spent and not reserved by draws in flight)
    over every sample the policy would draw now, as a round would share it. None: nothing to draw until a draw in
    flight comes back (or, with none in flight, the run is done)."""
    free = {pid: s for pid, s in states.items() if pid not in busy}
    plan = {pid: config.initial - s.samples for pid, s in free.items() if s.samples < config.initial}
    if not plan:
        plan = plan_round(free, available, tokens_per_sample, config)
    if not plan:
        return None
    share = int(available // sum(plan.values()))
    if share < 1:
        return None
    pid, k = next(iter(plan.items()))
    return Draw(problem=pid, samples=k, cap=share * k)
