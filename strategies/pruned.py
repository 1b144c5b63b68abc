"""The pruner: streams a group's branches and, at each checkpoint, clusters the running partial traces by the
configured signal and cancels those beyond each cluster's quota (the method and its settings: tts/kit/prune.py)."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from tts.kernel.branches import BranchOutcome, StopRule
from tts.kernel.budget import Budget
from tts.kernel.context import Context
from tts.kernel.types import Completion, GenerateRequest, Message
from tts.kit.prune import PruneConfig, PruneRecord, cluster, jaccard, last_step, numbers, select_prunes
from tts.strategies.watched import Checkpoints, probe_answers, run_watched


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
        running = [i for i in group.live() if self.tokens[i] >= c.min_tokens]
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
        pending = set(group.live())
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
