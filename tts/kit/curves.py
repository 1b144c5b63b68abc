"""Figures computed after a run from its recorded samples: every voting rule on the same samples, and accuracy at
smaller n from subsets of the same samples (averaged over all subsets of each size, as search-and-learn does)."""
from __future__ import annotations

from itertools import combinations
from typing import Callable

from tts.kernel.types import Sample, TraceStats
from tts.kit.voting import RULES, vote


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


def accuracy_at_n(rows: list[dict], grade: Callable[[dict, str | None], bool], ns: list[int],
                  rule: str = "majority", max_subsets: int = 256) -> dict[int, float]:
    out = {}
    for n in ns:
        total = 0.0
        for r in rows:
            samples = [s for s in samples_of(r) if s.status == "ok"]
            if len(samples) < n:
                continue
            subsets = list(combinations(samples, n))[:max_subsets]
            total += sum(grade(r, vote(list(sub), rule)[0]) for sub in subsets) / len(subsets)
        out[n] = total / len(rows)
    return out
