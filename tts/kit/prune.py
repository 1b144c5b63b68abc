"""Redundancy pruning of in-flight traces, as a step any strategy can wrap around a set of sampled branches.

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
from functools import partial
from typing import Any, Callable, Literal

from pydantic import Field

from tts.kernel.branches import BranchOutcome, StopRule
from tts.kernel.budget import Budget
from tts.kernel.context import Context
from tts.kernel.types import Completion, Frozen, GenerateRequest, Message, Sample
from tts.kit.watched import Checkpoints, probe_answers, run_watched


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


class Pruner(Checkpoints):
    def __init__(self, ctx: Context, config: PruneConfig, requests: list[GenerateRequest]) -> None:
        super().__init__(len(requests), config.checkpoint_tokens)
        self.ctx, self.config, self.requests = ctx, config, requests
        self.pruned: list[PruneRecord] = []
        # the numbers signal ignores the numbers the question already gives (every trace repeats them)
        self._question_numbers = numbers(requests[0].prompt_text()) if config.signal == "numbers" else frozenset()

    async def _probe_answers(self, indices: list[int]) -> dict[int, str | None]:
        return await probe_answers(self.ctx, self.requests, self.text, indices, self.config.probe_tokens)

    async def check(self, group, finished: list[int]) -> None:
        """Cluster finished and running traces; cancel running ones beyond each cluster's quota."""
        c = self.config
        running = [i for i in group.pending() if self.tokens[i] >= c.min_tokens]
        if not running:
            return
        order = finished + running
        probes: dict[int, str | None] = {}
        if c.signal in ("probe", "mix"):
            probes = await self._probe_answers(running)
            for i in finished:
                done = group.outcome(i)
                text = getattr(done.value, "text", "") if done else ""
                probes[i] = self.ctx.task.canonicalize([self.ctx.task.extract(text)])[0] if text else None
        vectors = nums = None
        if c.signal == "numbers":
            nums = {i: numbers(self.text[i], self._question_numbers) for i in order}  # finished ones streamed too
        elif c.signal != "probe":
            from tts.kit.embed import embed

            texts = [self.text[i] if c.signal == "prefix" else last_step(self.text[i]) for i in order]
            vectors = dict(zip(order, await embed(texts)))

        def similar(i: int, rep: int) -> tuple[bool, float]:
            same_answer = probes.get(i) is not None and probes.get(i) == probes.get(rep)
            if nums is not None:
                sim = jaccard(nums[i], nums[rep])
            else:
                sim = float(vectors[i] @ vectors[rep]) if vectors is not None else (1.0 if same_answer else 0.0)
            if c.signal == "probe":
                return same_answer, sim
            if c.signal == "mix":
                return same_answer and sim >= c.threshold, sim
            return sim >= c.threshold, sim

        clusters = cluster(order, similar)
        pending = set(group.pending())
        for i, k, sim in select_prunes(clusters, pending, c.quota, c.min_alive, len(pending) + len(finished)):
            reason = f"redundant with branch {clusters[k][0][0]} ({c.signal}, sim {sim:.3f})"
            if group.cancel(i, reason, status="pruned"):
                record = PruneRecord(branch=i, branch_path=group.paths[i], cluster=k,
                                     representative=clusters[k][0][0], similarity=round(sim, 4),
                                     tokens_at_prune=self.tokens[i], signal=c.signal, probe_answer=probes.get(i),
                                     partial_text=self.text[i])
                self.pruned.append(record)
                self.ctx.emit("prune", **record.model_dump(exclude={"partial_text", "shadow_answer", "shadow_tokens"}))

    async def shadow(self, remaining_tokens: int) -> None:
        """Finish each pruned trace from its prefix, outside the run's budget and usage, and record its answer and
        the tokens that one trace took. The shadow context shares the run's tracer, whose scope numbers branches,
        so the shadow branches are new nodes of the one DAG."""
        shadow_ctx = Context(self.ctx.engine, budget=Budget(), tracer=self.ctx.tracer, task=self.ctx.task)

        async def finish(record: PruneRecord) -> tuple[str | None, int]:
            req = self.requests[record.branch]
            messages = (*req.messages, Message(role="assistant", content=record.partial_text))
            [c] = await shadow_ctx.generate(req.model_copy(update={
                "messages": messages, "continue_final": True,
                "max_tokens": max(1, remaining_tokens - record.tokens_at_prune)}))
            return self.ctx.task.extract(record.partial_text + c.text), c.completion_tokens

        outcomes = await shadow_ctx.branches([partial(finish, r) for r in self.pruned], label="shadow")
        self.pruned = [r.model_copy(update=dict(zip(("shadow_answer", "shadow_tokens"),
                                                    o.value if o.status == "ok" else (None, 0))))
                       for r, o in zip(self.pruned, outcomes)]


async def run_pruned(ctx: Context, requests: list[GenerateRequest], config: PruneConfig, *, label: str = "sample",
                     stop_when: StopRule | None = None,
                     convert: Callable[[int, Completion], Any] = lambda i, c: c) -> tuple[list[BranchOutcome], Pruner]:
    """Stream one branch per request with a pruner watching; returns every branch's outcome (its value is
    `convert(index, completion)`) and the pruner, whose `pruned` list is the audit log."""
    pruner = Pruner(ctx, config, requests)
    outcomes = await run_watched(ctx, requests, pruner, label=label, stop_when=stop_when, convert=convert)
    if config.shadow and pruner.pruned:
        await pruner.shadow(max(r.max_tokens for r in requests))
    return outcomes, pruner
