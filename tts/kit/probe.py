"""Probe consensus: stop a group of streaming traces once their current answers agree (Dynasor's certaindex,
Parallel-Probe), and prune the traces whose current answer stays an outlier.

At every checkpoint (each `checkpoint_tokens` tokens of a live branch), once `min_final` traces have finished, every
running trace long enough is probed for its current answer (tts/kit/watched.py: a short greedy continuation of its
prefix, charged like any call). The answers of finished traces and the probed answers of running ones are pooled;
when the most common answer holds at least `agree` of them (and at least `min_answers` answers exist) at `patience`
checkpoints in a row, the running traces are stopped and vote with their probed answer (status "probed"). A running
trace whose probed answer differs from a majority answer at `patience` checkpoints in a row is pruned (no vote).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from pydantic import Field

from tts.kernel.branches import BranchGroup, BranchOutcome, StopRule
from tts.kernel.context import Context
from tts.kernel.types import Completion, Frozen, GenerateRequest, Sample
from tts.kit.watched import Checkpoints, probe_answers, run_watched


class ProbeConfig(Frozen):
    checkpoint_tokens: int = Field(48, ge=1)
    min_tokens: int = Field(32, ge=1, description="traces shorter than this are not probed")
    probe_tokens: int = Field(12, ge=1)
    agree: float = Field(0.75, gt=0.5, le=1.0, description="share of pooled answers the leading answer must hold")
    min_answers: int = Field(3, ge=1)
    # No probe before this many traces have finished. On multi-step problems every trace passes through the same
    # intermediate quantities at about the same time, and early probes agree on one of them (live, GSM8K: 16 eggs a
    # day for an answer of 18); a finished trace's answer is final, and it must be part of the consensus.
    min_final: int = Field(1, ge=0)
    patience: int = Field(2, ge=1, description="checkpoints in a row a consensus (or an outlier) must hold")
    prune_outliers: bool = True


class ProbeConsensus(Checkpoints):
    def __init__(self, ctx: Context, config: ProbeConfig, requests: list[GenerateRequest]) -> None:
        super().__init__(len(requests), config.checkpoint_tokens)
        self.ctx, self.config, self.requests = ctx, config, requests
        self.last: dict[int, str | None] = {}  # each branch's latest probed answer
        self.stopped: dict[int, str | None] = {}  # branches stopped on consensus -> the answer they vote
        self.pruned: list[int] = []
        self._streak = 0
        self._leader: str | None = None
        self._outlier = Counter()

    async def check(self, group: BranchGroup, finished: list[int]) -> None:
        c = self.config
        running = [i for i in group.pending() if self.tokens[i] >= c.min_tokens]
        if not running or len(finished) < c.min_final:
            return
        probes = await probe_answers(self.ctx, self.requests, self.text, running, c.probe_tokens)
        self.last.update(probes)
        done = [getattr(group.outcome(i).value, "answer", None) for i in finished]
        pooled = self.ctx.task.canonicalize([*done, *probes.values()])
        votes = Counter(a for a in pooled if a is not None)
        if not votes:
            self._streak = 0
            return
        leader, count = votes.most_common(1)[0]
        total = sum(votes.values())
        agreed = total >= c.min_answers and count / total >= c.agree
        self._streak = self._streak + 1 if agreed and leader == self._leader else int(agreed)
        self._leader = leader
        by_branch = dict(zip(running, pooled[len(done):]))
        if self._streak >= c.patience:
            self.ctx.emit("probe_consensus", answer=leader, share=round(count / total, 3), answers=total,
                          stopped=len(group.pending()))
            for i in list(group.pending()):
                self.stopped[i] = by_branch.get(i, self.last.get(i))
                group.cancel(i, f"probe consensus on {leader} ({count}/{total})")
            return
        if c.prune_outliers and count * 2 > total:
            for i, answer in by_branch.items():
                self._outlier[i] = self._outlier[i] + 1 if answer != leader else 0
                if self._outlier[i] >= c.patience and len(group.pending()) > 1:
                    if group.cancel(i, f"probe outlier ({answer} against {leader})", status="pruned"):
                        self.pruned.append(i)
                        self.ctx.emit("probe_prune", branch=i, branch_path=list(group.paths[i]), answer=answer,
                                      leader=leader, tokens=self.tokens[i])

    def sample(self, outcome: BranchOutcome[Sample], fallback: Callable[[BranchOutcome], Sample]) -> Sample:
        """A branch's sample: a trace stopped on consensus votes with its probed answer."""
        i = outcome.index
        if outcome.status == "cancelled" and i in self.stopped:
            return Sample(index=i, text=self.text[i], answer=self.stopped[i], completion_tokens=self.tokens[i],
                          status="probed")
        return fallback(outcome)


async def run_probed(ctx: Context, requests: list[GenerateRequest], config: ProbeConfig, *, label: str = "sample",
                     stop_when: StopRule | None = None,
                     convert: Callable[[int, Completion], Any] = lambda i, c: c
                     ) -> tuple[list[BranchOutcome], ProbeConsensus]:
    watcher = ProbeConsensus(ctx, config, requests)
    outcomes = await run_watched(ctx, requests, watcher, label=label, stop_when=stop_when, convert=convert)
    return outcomes, watcher
