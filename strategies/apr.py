"""APR spawn/join on a stock engine: a parent thread forks child threads on its own context prefix.

The parent generates until it closes a spawn block (a stop string). Its children run as parallel branches whose
prompt starts with the parent's context, so the engine's prefix cache serves that prefix; each child may spawn in
turn up to `max_depth`, at most `max_children` at a time, and spends at most its token slice (the block's limit,
capped by `child_tokens`). Results, trimmed to `join_tokens`, come back in a join block and the parent continues
its own message. Cancelling a thread cancels its children (they are branches inside it). The answer's meta holds
the thread tree: who spawned whom, with tokens, latency and cached prompt tokens per thread.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Literal

from pydantic import Field

from tts.strategies.registry import StrategySpec, register
from tts.strategies.samples import fit_tail
from tts.strategies.spawn_parsers import PARSERS, ChildSpec
from tts.kernel.context import Context
from tts.kernel.types import Answer, Frozen, GenerateRequest, Message, Problem, Sample


class APRConfig(Frozen):
    parser: Literal["xml", "apr"] = "xml"
    max_depth: int = Field(1, ge=0, description="how deep spawns may nest (0: no spawning)")
    max_children: int = Field(4, ge=1, description="children per spawn block; extra ones are refused")
    max_spawns: int = Field(2, ge=0, description="spawn blocks per thread")
    thread_tokens: int = Field(512, ge=1, description="tokens per generation step of a thread")
    child_tokens: int = Field(384, ge=1, description="a child's token slice, all its steps together")
    join_tokens: int = Field(96, ge=8, description="each child's result is trimmed to this in the join block")
    temperature: float = Field(0.0, ge=0.0)
    seed: int = 0
    child: str | None = Field(None, description="a strategy expression each child runs instead of one thread")


class Thread:
    """The record of one thread, for the trace tree."""

    def __init__(self, path: tuple[int, ...], depth: int) -> None:
        self.path, self.depth = path, depth
        self.tokens = self.calls = self.prompt_tokens = self.cached = self.max_prompt = 0
        self.spawned: list[tuple[int, ...]] = []
        self.t0, self.seconds = time.monotonic(), 0.0

    def record(self) -> dict:
        return {"path": list(self.path), "depth": self.depth, "tokens": self.tokens, "calls": self.calls,
                "prompt_tokens": self.prompt_tokens, "cached_prompt_tokens": self.cached,
                "max_prompt_tokens": self.max_prompt, "seconds": round(self.seconds, 4),
                "children": [list(p) for p in self.spawned]}


async def run_thread(ctx: Context, config: APRConfig, messages: tuple[Message, ...], depth: int, allowance: int,
                     threads: list[Thread]) -> str:
    """Generate one thread to its end, serving its spawn blocks; returns the thread's own text."""
    parser = PARSERS[config.parser]
    me = Thread(ctx.path, depth)
    threads.append(me)
    text = ""
    spawns = 0
    while True:
        room = min(config.thread_tokens, allowance - me.tokens)
        if room < 1:
            break
        convo = (*messages, Message(role="assistant", content=text)) if text else messages
        request = GenerateRequest(messages=convo, continue_final=bool(text), stop=parser.stop, max_tokens=room,
                                  temperature=config.temperature, seed=config.seed + len(threads))
        [c] = await ctx.generate(request)
        me.tokens += c.completion_tokens
        me.calls += 1
        me.prompt_tokens += c.prompt_tokens
        me.cached += c.cached_prompt_tokens
        me.max_prompt = max(me.max_prompt, c.prompt_tokens)
        text += c.text
        block = parser.parse(c.text, c.finish_reason)
        if block is None:
            break
        text += parser.resume_text()
        if block.error or depth >= config.max_depth or spawns >= config.max_spawns:
            error = block.error or ("spawning is not available here: solve it directly" if depth >= config.max_depth
                                    else "no more spawns allowed: finish directly")
            ctx.emit("spawn_refused", error=error)
            text += parser.join([], error=error)
            continue
        spawns += 1
        specs = block.children[: config.max_children]
        ctx.emit("spawn", children=[s.instruction for s in specs], refused=len(block.children) - len(specs))
        context = (*messages, Message(role="assistant", content=text))

        async def child(i: int, spec: ChildSpec) -> str:
            prompt = (*context, Message(role="user", content=parser.child_prompt(spec, i)))
            if config.child:  # the child is a whole strategy run on the parent's context (e.g. self-consistency)
                from tts.strategies.compose import parse, run_stages

                sub = Problem(id=f"child{i}", question=spec.instruction, messages=prompt)
                answer = await run_stages(ctx, sub, parse(config.child))
                chosen = next((s.text for s in answer.samples if s.answer == answer.answer and s.text), "")
                return chosen or (answer.samples[0].text if answer.samples else "")
            slice_ = min(spec.limit or config.child_tokens, config.child_tokens)
            return await run_thread(ctx, config, prompt, depth + 1, slice_, threads)

        outcomes = await ctx.branches([partial(child, i, s) for i, s in enumerate(specs)], label="child")
        me.spawned.extend(o.path for o in outcomes)
        results = [fit_tail(ctx.count_tokens, o.value.strip(), config.join_tokens) if o.status == "ok" and o.value
                   else f"(helper {o.status}: {o.error})" for o in outcomes]
        text += parser.join(results)
    me.seconds = time.monotonic() - me.t0
    return text


async def run(ctx: Context, problem: Problem, config: APRConfig) -> Answer:
    parser = PARSERS[config.parser]
    base = ctx.task.messages(problem)
    messages = (*base[:-1], Message(role="user", content=base[-1].content + parser.instructions))
    threads: list[Thread] = []
    allowance = config.thread_tokens * (config.max_spawns + 1)
    text = await run_thread(ctx, config, messages, 0, allowance, threads)
    answer = ctx.task.extract(parser.own_text(text))
    sample = Sample(index=0, text=text, answer=answer, completion_tokens=threads[0].tokens)
    return Answer(answer=answer, votes={answer: 1} if answer else {}, samples=(sample,),
                  meta={"threads": [t.record() for t in threads],
                        "child_prompt_tokens": sum(t.prompt_tokens for t in threads if t.depth > 0),
                        "child_cached_prompt_tokens": sum(t.cached for t in threads if t.depth > 0)})


register(StrategySpec("apr", run, APRConfig, aliases=("spawn-join",),
                      description="APR: a thread spawns child threads and joins their results"))
