"""Redundancy pruning of in-flight traces, as a step any strategy can wrap around a set of sampled branches: its
settings, signals and clustering, pure (the pruner that watches the streams is in strategies/pruned.py).

Branches stream; every `checkpoint_tokens` generated tokens the pruner scores the running partial traces with a
signal, clusters them online (greedy: a trace joins the first cluster whose representative is similar enough;
finished traces seed the clusters), and cancels running members beyond `quota` per cluster, never leaving fewer than
`min_alive` traces. Signals, switchable so they can be compared:
- prefix: embedding of the whole partial trace (the naive DeepPrune baseline);
- step: embedding of its last step only (where traces that took the same route still differ);
- probe: ask the model, on a copy of the trace's prefix (served by the prefix cache), for its current answer, and
  cluster by answer equivalence;
- mix: same probe answer and similar last step;
- numbers: overlap (Jaccard) of the intermediate results the partial traces have written (numbers not in the
  question). Free to compute, and for math it tracks the route a trace took better than its wording does.
Every prune is a trace event (branch, cluster, similarity, tokens so far). With `shadow`, pruned branches are finished
afterwards outside the run's budget, to measure how often a prune threw away an answer no kept trace reached.
"""
from __future__ import annotations

import re
from typing import Callable, Literal

from pydantic import Field

from tts.kernel.types import Frozen, Sample


class PruneConfig(Frozen):
    signal: Literal["prefix", "step", "probe", "mix", "numbers"] = "prefix"
    checkpoint_tokens: int = Field(32, ge=1)
    threshold: float = Field(0.9, ge=-1.0, le=1.0, description="cosine similarity that makes two traces redundant")
    quota: int = Field(2, ge=1, description="traces kept per cluster")
    min_tokens: int = Field(48, ge=1, description="traces shorter than this are not judged")
    min_alive: int = Field(2, ge=1)
    probe_tokens: int = Field(12, ge=1)
    shadow: bool = False
    # On: a pruned trace votes as its cluster's representative ends (the prune's own claim). Off by default: replayed
    # on 30 GSM8K + 30 SVAMP SC runs of the 0.5B model it lost more problems than dropping the votes (the
    # similarity is too weak a claim to vote on; benchmarks/prune_replay.py)
    inherit_votes: bool = False


class PruneRecord(Frozen):
    """One prune: which branch, judged redundant with which kept one, on what signal, after how many tokens; and,
    with `shadow`, the answer the pruned trace would have reached and what finishing it cost."""

    branch: int
    branch_path: tuple[int, ...]
    cluster: int
    representative: int
    similarity: float
    tokens_at_prune: int
    signal: str
    probe_answer: str | None = None
    partial_text: str = ""
    shadow_answer: str | None = None
    shadow_tokens: int | None = None


def last_step(text: str) -> str:
    steps = [s for s in re.split(r"\n+|(?<=[.!?])\s+", text.strip()) if s.strip()]
    return steps[-1] if steps else text


_NUM = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def numbers(text: str, exclude: frozenset[str] = frozenset()) -> frozenset[str]:
    """The numbers a text writes (commas and trailing zeros normalised), minus `exclude` (the question's own)."""
    out = set()
    for m in _NUM.findall(text):
        v = m.replace(",", "")
        if "." in v:
            v = v.rstrip("0").rstrip(".")
        out.add(v)
    return frozenset(out - exclude)


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def inherit_votes(samples: list[Sample], pruned: list[PruneRecord]) -> list[Sample]:
    """Pruned samples take the answer (and trace statistics) of the kept trace they were judged redundant with,
    following representatives that were themselves pruned later; status "inherited"."""
    rep_of = {r.branch: r.representative for r in pruned}
    by_index = {s.index: s for s in samples}
    out = []
    for s in samples:
        if s.index in rep_of:
            j, seen = s.index, set()
            while j in rep_of and j not in seen:
                seen.add(j)
                j = rep_of[j]
            src = by_index.get(j)
            if src is not None and src.status == "ok":
                s = s.model_copy(update={"answer": src.answer, "stats": src.stats, "status": "inherited",
                                         "error": f"pruned; votes as branch {j}"})
        out.append(s)
    return out


def cluster(order: list[int], similar: Callable[[int, int], tuple[bool, float]]) -> list[list[tuple[int, float]]]:
    """Greedy online clustering: each trace joins the first cluster whose representative it is `similar` to.
    Returns clusters as lists of (index, similarity to the representative), the representative first."""
    clusters: list[list[tuple[int, float]]] = []
    for i in order:
        for members in clusters:
            joined, sim = similar(i, members[0][0])
            if joined:
                members.append((i, sim))
                break
        else:
            clusters.append([(i, 1.0)])
    return clusters


def select_prunes(clusters: list[list[tuple[int, float]]], running: set[int], quota: int, min_alive: int,
                  alive: int) -> list[tuple[int, int, float]]:
    """(index, cluster, similarity) of running members beyond each cluster's quota, never below `min_alive`."""
    out = []
    for k, members in enumerate(clusters):
        for i, sim in members[quota:]:
            if alive <= min_alive or i not in running:
                continue
            out.append((i, k, sim))
            alive -= 1
    return out
