"""Figures computed after a run from its recorded samples: every voting rule on the same samples, and accuracy at
smaller n from subsets of the same samples.

Accuracy at n is the expected accuracy of a vote over a uniformly random n-subset of a problem's N samples. For
majority it is computed exactly from the answer-class counts (a hypergeometric sum, memory linear in n); for the
weighted rules, by uniform random subsets with a stated seed. A tie inside a subset is split evenly between the tied
classes: the samples of a problem are exchangeable, so that is the expected value of the vote's own tie-break (lowest
index first) over the order in which they happened to be drawn. Taking the first subsets in lexicographic order (as
this module once did) puts samples 0-4 in nearly every subset and biases the curve."""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from tts.kernel.types import Sample, TraceStats
from tts.kit.voting import RULES, VOTING, vote


def samples_of(row: dict) -> list[Sample]:
    return [Sample(index=s["index"], text=s.get("text", ""), answer=s["answer"], completion_tokens=s["tokens"],
                   status=s["status"], stats=TraceStats(**s["stats"]) if s.get("stats") else None)
            for s in row.get("samples", [])]


def rule_accuracy(rows: list[dict], grade: Callable[[dict, str | None], bool]) -> dict[str, float]:
    out = {}
    for rule in RULES:
        try:
            out[rule] = sum(grade(r, vote(samples_of(r), rule)[0]) for r in rows) / len(rows)
        except ValueError:  # the run has no logprobs for this rule
            continue
    return out


@dataclass(frozen=True)
class CurvePoint:
    """Accuracy at n over the problems that have at least n usable samples, with a 95% interval over problems."""

    n: int
    accuracy: float
    ci95: tuple[float, float]
    problems: int  # problems with at least n usable samples (the others are left out, and counted here)
    method: str  # "exact" or "random subsets (k per problem, seed s)"


def majority_win_probabilities(counts: dict[str, int], abstain: int, n: int,
                               classes: list[str] | None = None) -> dict[str, float]:
    """P(each class wins a majority vote) over a uniform n-subset of samples with these class counts (plus
    `abstain` samples that cast no vote); ties split evenly. Exact, in integers: for the class g taking k of
    the n slots, a polynomial over the other classes counts the ways they fill the rest with at most k each,
    tracked by how many of them tie at exactly k. `classes`: only these (a curve needs only the right ones)."""
    total = sum(counts.values()) + abstain
    if not 1 <= n <= total:
        raise ValueError(f"subset size {n} outside 1..{total}")
    subsets = math.comb(total, n)
    out = {}
    for g in counts if classes is None else classes:
        c_g = counts[g]
        others = [c for a, c in counts.items() if a != g]
        wins = 0.0
        for k in range(1, min(n, c_g) + 1):
            # ways[s][t]: choose s samples from the classes seen so far, each class at most k, t of them at k
            ways = [[0] * (len(others) + 1) for _ in range(n - k + 1)]
            ways[0][0] = 1
            for c in others:
                nxt = [[0] * (len(others) + 1) for _ in range(n - k + 1)]
                for s, row in enumerate(ways):
                    for t, w in enumerate(row):
                        if not w:
                            continue
                        for j in range(0, min(k, c, n - k - s) + 1):
                            nxt[s + j][t + (j == k)] += w * math.comb(c, j)
                ways = nxt
            # the abstaining samples fill whatever the voting classes leave
            wins += math.comb(c_g, k) * sum(w * math.comb(abstain, n - k - s) / (t + 1)
                                            for s, row in enumerate(ways) for t, w in enumerate(row) if w)
        out[g] = wins / subsets
    return out


def _interval(values: list[float]) -> tuple[float, float]:
    """95% normal interval of the mean of per-problem accuracies (the problems are the sampling unit)."""
    m = len(values)
    mean = sum(values) / m
    if m < 2:
        return (mean, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (m - 1))
    half = 1.96 * sd / math.sqrt(m)
    return (round(max(0.0, mean - half), 4), round(min(1.0, mean + half), 4))


def accuracy_curve(rows: list[dict], grade: Callable[[dict, str | None], bool], ns: list[int],
                   rule: str = "majority", subsets: int = 2000, seed: int = 0) -> dict[int, CurvePoint]:
    """Expected accuracy at each n: exact for majority, else over `subsets` uniform random n-subsets per problem."""
    rng = random.Random(seed)
    out = {}
    for n in ns:
        per_problem = []
        for r in rows:
            usable = [s for s in samples_of(r) if s.status == "ok"]
            if len(usable) < n:
                continue
            if rule == "majority":
                votes = Counter(s.answer for s in usable if s.status in VOTING and s.answer is not None)
                abstain = len(usable) - sum(votes.values())
                right = [answer for answer in votes if grade(r, answer)]
                wins = majority_win_probabilities(dict(votes), abstain, n, right) if right else {}
                per_problem.append(sum(wins.values()))
            else:
                graded: dict[str | None, bool] = {}
                hits = 0
                for _ in range(subsets):
                    answer = vote(rng.sample(usable, n), rule)[0]
                    if answer not in graded:
                        graded[answer] = bool(grade(r, answer))
                    hits += graded[answer]
                per_problem.append(hits / subsets)
        if per_problem:
            method = "exact" if rule == "majority" else f"random subsets ({subsets} per problem, seed {seed})"
            out[n] = CurvePoint(n=n, accuracy=sum(per_problem) / len(per_problem), ci95=_interval(per_problem),
                                problems=len(per_problem), method=method)
    return out


def accuracy_at_n(rows: list[dict], grade: Callable[[dict, str | None], bool], ns: list[int],
                  rule: str = "majority") -> dict[int, float]:
    """Accuracy at each n (see `accuracy_curve`); an n that no problem has enough samples for is left out."""
    return {n: p.accuracy for n, p in accuracy_curve(rows, grade, ns, rule).items()}
