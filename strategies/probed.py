"""Probe consensus over streaming traces: the watcher that pools probed and final answers and stops the group
once they agree (settings and the method in tts/kit/probe.py)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from tts.kernel.branches import BranchGroup, BranchOutcome, StopRule
from tts.kernel.context import Context
from tts.kernel.types import Completion, GenerateRequest, Sample
from tts.kit.probe import ProbeConfig
from tts.strategies.watched import Checkpoints, probe_answers, run_watched


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
        running = [i for i in group.live() if self.tokens[i] >= c.min_tokens]
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
                          stopped=len(group.live()))
            for i in list(group.live()):
                self.stopped[i] = by_branch.get(i, self.last.get(i))
                group.cancel(i, f"probe consensus on {leader} ({count}/{total})")
            return
        if c.prune_outliers and count * 2 > total:
            for i, answer in by_branch.items():
                self._outlier[i] = self._outlier[i] + 1 if answer != leader else 0
                if self._outlier[i] >= c.patience and len(group.live()) > 1:
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
