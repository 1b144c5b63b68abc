"""Branches that stream under a watcher: every `checkpoint_tokens` generated tokens of a branch, the watcher looks at
the running partial traces and may cancel some (the pruner, strategies/pruned.py) or all of them (probe consensus,
strategies/probed.py). Also the answer probe both use: ask the model, on a copy of a trace's prefix (served by the
prefix cache), for its current answer; the probe's tokens are charged like any call.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Callable, Protocol

from tts.kernel.branches import BranchGroup, BranchOutcome, StopRule
from tts.kernel.context import Context
from tts.kernel.types import Chunk, Completion, GenerateRequest, Message
from tts.kit.watched import PROBE_LEAD, answer_cue


class Watcher(Protocol):
    wake: asyncio.Event
    due: bool

    def on_chunk(self, i: int, chunk: Chunk) -> None: ...

    async def check(self, group: BranchGroup, finished: list[int]) -> None: ...


class Checkpoints:
    """The partial text and token count of each branch, and a `due` flag raised every `every` tokens of any branch."""

    def __init__(self, n: int, every: int) -> None:
        self.every = every
        self.text = [""] * n
        self.tokens = [0] * n
        self._next = [every] * n
        self.wake = asyncio.Event()
        self.due = False

    def on_chunk(self, i: int, chunk: Chunk) -> None:
        self.text[i] += chunk.text
        self.tokens[i] = chunk.completion_tokens
        if self.tokens[i] >= self._next[i] and chunk.completion is None:
            self._next[i] = self.tokens[i] + self.every
            self.due = True
            self.wake.set()


async def probe_answers(ctx: Context, requests: list[GenerateRequest], texts: list[str], indices: list[int],
                        probe_tokens: int) -> dict[int, str | None]:
    """Each indexed trace's current answer (canonical), by a short greedy continuation of its prefix."""
    cue = answer_cue(ctx.task)

    async def probe(i: int) -> str | None:
        req = requests[i]
        messages = (*req.messages, Message(role="assistant", content=texts[i] + PROBE_LEAD + cue))
        [c] = await ctx.generate(GenerateRequest(messages=messages, continue_final=True, temperature=0.0,
                                                 max_tokens=probe_tokens))
        return ctx.task.extract(cue + c.text)

    outcomes = await ctx.branches([partial(probe, i) for i in indices], label="probe")
    answers = [o.value if o.status == "ok" else None for o in outcomes]
    return dict(zip(indices, ctx.task.canonicalize(answers)))


async def run_watched(ctx: Context, requests: list[GenerateRequest], watcher: Watcher, *, label: str = "sample",
                      stop_when: StopRule | None = None,
                      convert: Callable[[int, Completion], Any] = lambda i, c: c) -> list[BranchOutcome]:
    """Stream one branch per request with `watcher` checking at its checkpoints; every branch's outcome (its value
    is `convert(index, completion)`), in request order."""
    async def one(i: int):
        try:
            return convert(i, await ctx.stream(requests[i], on_chunk=partial(watcher.on_chunk, i)))
        finally:
            watcher.wake.set()

    async with ctx.group(label, stop_when) as group:
        for i in range(len(requests)):
            group.spawn(partial(one, i))
        while group.pending():
            await watcher.wake.wait()
            watcher.wake.clear()
            if watcher.due and group.live():
                watcher.due = False
                finished = [i for i, o in enumerate(group.outcomes()) if o is not None and o.status == "ok"]
                await watcher.check(group, finished)
    return [o for o in group.outcomes() if o is not None]
