"""The engine contract, as checks any adapter must pass: generate, stream, cancel, errors, usage. Run against every
engine: the simulator and the openai adapter (local fake server) in tests/test_engine_contract.py, vLLM's CPU build
in the real-engine tier."""
from __future__ import annotations

import asyncio

from tts.kernel.context import Context
from tts.kernel.engine import Capabilities, Engine, LimitedEngine
from tts.kernel.types import GenerateRequest, Message

REQ = GenerateRequest(messages=(Message(role="user", content="What is 3 plus 4? Explain."),), max_tokens=48,
                      temperature=0.7, seed=1)


async def check_declares_the_protocol(engine: Engine) -> None:
    assert isinstance(engine, Engine) and isinstance(engine.capabilities, Capabilities)
    assert engine.count_tokens("one two three four") >= 1


async def check_generate_n_with_usage(engine: Engine) -> None:
    out = await engine.generate(REQ.model_copy(update={"n": 3}))
    assert len(out) == 3 and all(c.text and c.completion_tokens >= 1 for c in out)
    # the prompt is reported once per request (on its first completion), so sums are right
    assert sum(c.prompt_tokens > 0 for c in out) <= 1


async def check_stream_ends_with_the_whole_completion(engine: Engine) -> None:
    if not engine.capabilities.stream:
        return
    pieces, final = [], None
    async for chunk in engine.stream(REQ):
        pieces.append(chunk.text)
        final = chunk.completion or final
    assert final is not None and "".join(pieces) == final.text and final.completion_tokens >= 1


async def check_context_charges_what_ran(engine: Engine) -> None:
    ctx = Context(engine)
    [c] = await ctx.generate(REQ)
    s = await ctx.stream(REQ)
    assert ctx.usage.calls == 2 and ctx.usage.completion_tokens == c.completion_tokens + s.completion_tokens
    assert ctx.budget.tokens_used == ctx.usage.completion_tokens and ctx.budget.tokens_reserved == 0


async def check_cancel_reaches_the_engine(engine: Engine, settle_s: float = 0.2) -> None:
    """Cancelling a stream's consumer closes the request: the budget is settled, the call is traced cancelled."""
    ctx = Context(engine)
    started = asyncio.Event()
    task = asyncio.create_task(ctx.stream(REQ.model_copy(update={"max_tokens": 400}),
                                          on_chunk=lambda ch: started.set()))
    try:
        await asyncio.wait_for(started.wait(), 60)
    finally:
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await asyncio.sleep(settle_s)
    assert ctx.budget.tokens_reserved == 0 and ctx.usage.calls == 1
    calls = [d for _, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "call"]
    assert [d["status"] for d in calls] in (["cancelled"], ["done"])  # a very fast engine may finish first


async def check_wrapper_forwards_everything(engine: Engine) -> None:
    limited = LimitedEngine(engine, 1)
    assert limited.capabilities == engine.capabilities and limited.price == engine.price
    if engine.capabilities.stream:
        final = [ch.completion async for ch in limited.stream(REQ) if ch.completion is not None]
        assert len(final) == 1


CHECKS = [check_declares_the_protocol, check_generate_n_with_usage, check_stream_ends_with_the_whole_completion,
          check_context_charges_what_ran, check_cancel_reaches_the_engine, check_wrapper_forwards_everything]
