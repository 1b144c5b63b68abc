"""Voting rules over sampled traces, trace confidence statistics, and semantic entropy.

Every rule maps samples to a score per answer and picks the best; ties go to the answer whose first sample has the
lowest index, so a vote never depends on completion order.
- majority: one vote per trace.
- logprob: each trace weighs exp(mean token logprob) (its geometric-mean token probability).
- deepconf: DeepConf-style: a trace's confidence is its lowest sliding-window mean of token confidence
  (-mean of the top-k logprobs at a token); only the most confident `keep` fraction of traces vote, weighted by it.
- entropy: inverse-entropy weighting: each trace weighs 1 / (mean token entropy over its top-logprob
  distributions), as in "The Sequential Edge".
- shortest: shortest-majority vote ("Revisiting the Test-Time Scaling of o1-like Models"): an answer scores its
  count divided by the mean length of its traces, so among near-ties the answer reached by shorter traces wins.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Iterable, Sequence

from tts.kernel.confidence import confidences, lowest_group
from tts.kernel.types import Sample, TokenLogprob, TraceStats

VOTING = ("ok", "inherited", "probed")  # sample statuses that cast a vote


def trace_stats(logprobs: Sequence[TokenLogprob], window: int = 64) -> TraceStats:
    lps = [t.logprob for t in logprobs]
    mean_lp = sum(lps) / len(lps) if lps else 0.0
    if not logprobs or not logprobs[0].top:
        return TraceStats(tokens=len(lps), mean_logprob=mean_lp)
    entropies = []
    for t in logprobs:
        probs = [math.exp(lp) for _, lp in t.top] or [math.exp(t.logprob)]
        z = sum(probs)
        entropies.append(-sum(p / z * math.log(p / z) for p in probs if p > 0))
    confs = confidences(logprobs, len(logprobs[0].top))
    return TraceStats(tokens=len(lps), mean_logprob=mean_lp, mean_entropy=sum(entropies) / len(entropies),
                      lowest_window_conf=lowest_group(confs, window))


def voters(samples: Iterable[Sample]) -> list[Sample]:
    """The samples that cast a vote, in index order (so ties break the same way every run)."""
    return sorted((s for s in samples if s.status in VOTING and s.answer is not None), key=lambda s: s.index)


def _weighted(samples: Iterable[Sample], weight: Callable[[Sample], float]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for s in voters(samples):
        scores[s.answer] = scores.get(s.answer, 0.0) + weight(s)
    return scores


def _stat(s: Sample, name: str) -> float:
    value = getattr(s.stats, name, None) if s.stats else None
    if value is None:
        raise ValueError(f"this voting rule needs per-token logprobs ({name}): sample with logprobs=k")
    return value


def scores_majority(samples):
    return _weighted(samples, lambda s: 1.0)


def scores_logprob(samples):
    return _weighted(samples, lambda s: math.exp(_stat(s, "mean_logprob")))


def scores_entropy(samples):
    return _weighted(samples, lambda s: 1.0 / (_stat(s, "mean_entropy") + 1e-6))


def scores_deepconf(samples, keep: float = 0.9):
    voting = voters(samples)
    if not voting:
        return {}
    ranked = sorted(voting, key=lambda s: (-_stat(s, "lowest_window_conf"), s.index))
    kept = {s.index for s in ranked[: max(1, math.ceil(keep * len(ranked)))]}
    return _weighted([s for s in voting if s.index in kept], lambda s: _stat(s, "lowest_window_conf"))


def scores_shortest(samples):
    counts: dict[str, int] = defaultdict(int)
    lengths: dict[str, int] = defaultdict(int)
    for s in voters(samples):
        counts[s.answer] += 1
        lengths[s.answer] += max(1, s.completion_tokens)
    return {a: counts[a] / (lengths[a] / counts[a]) for a in counts}


RULES: dict[str, Callable[[list[Sample]], dict[str, float]]] = {
    "majority": scores_majority, "logprob": scores_logprob, "deepconf": scores_deepconf,
    "entropy": scores_entropy, "shortest": scores_shortest,
}


def best(scores: dict[str, float]) -> str | None:
    """Highest score; dict order (first sample index) breaks ties."""
    if not scores:
        return None
    top = max(scores.values())
    return next(a for a, v in scores.items() if v == top)


def vote(samples: list[Sample], rule: str = "majority") -> tuple[str | None, dict[str, float]]:
    if rule not in RULES:
        raise ValueError(f"unknown voting rule '{rule}'; known: {', '.join(RULES)}")
    scores = RULES[rule](samples)
    return best(scores), scores


def semantic_entropy(answers: Iterable[str | None]) -> float:
    """Entropy (nats) of the distribution of answer classes; answers must already be canonical. None is a class."""
    counts: dict[str | None, int] = defaultdict(int)
    for a in answers:
        counts[a] += 1
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return max(0.0, -sum(c / total * math.log(c / total) for c in counts.values()))
