"""The engine protocol every adapter implements, the capabilities it declares, and wrappers that forward all of it."""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Protocol, runtime_checkable

from tts.kernel.budget import Price
from tts.kernel.types import Chunk, Completion, Frozen, GenerateRequest


class Capabilities(Frozen):
    """What an engine can do, declared once, so that callers never probe it with hasattr."""

    stream: bool = False  # stream() yields chunks as tokens are generated (pruning, planners, live consensus)
    logprobs: bool = True  # completions carry token logprobs when asked
    tokenizer: bool = False  # count_tokens() uses the model's own tokenizer (else an estimate)
    prefix_cache: bool = False  # prompts sharing a prefix are served partly from cache (cached_prompt_tokens)
    # ends a trace itself when request.confidence_stop says so (finish_reason "confidence"); else the context
    # streams the trace and cancels it
    confidence_stop: bool = False
    routes: bool = False  # routes calls between replicas by request.route_key (a pool)
    # a stream costs about what a plain call costs (the engine hands tokens over in batches), so the context streams
    # every single-sample call: one cancelled by a group's early stop is then charged the tokens it generated, where
    # a plain call would report none
    metered_stream: bool = False


@runtime_checkable
class Engine(Protocol):
    """An LLM backend.

    `generate` returns `request.n` completions. Cancelling the awaiting task must abort the request inside the
    engine (vLLM abort, HTTP connection closed, simulator slot freed): that is how pruning and early stop save compute.
    `stream` (where `capabilities.stream`) yields one completion's chunks, the last carrying the whole Completion;
    closing the iterator early (or cancelling its consumer) aborts the request.
    `price` is what the engine's tokens cost (None: free), for money budgets and usage reports.
    """

    name: str
    capabilities: Capabilities
    price: Price | None

    async def generate(self, request: GenerateRequest) -> list[Completion]: ...

    def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]: ...

    def count_tokens(self, text: str) -> int: ...

    def describe(self) -> dict: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """A conservative token count (1 per 3 characters) for engines without a tokenizer."""
    return len(text) // 3 + 1


class EngineWrapper:
    """Forwards every part of the protocol to the wrapped engine; a wrapper overrides only what it changes."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.price = inner.price

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        return await self.inner.generate(request)

    def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        return self.inner.stream(request)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def describe(self) -> dict:
        return self.inner.describe()

    async def aclose(self) -> None:
        await self.inner.aclose()


class LimitedEngine(EngineWrapper):
    """Caps the number of requests in flight on an engine (e.g. a server with few slots), streams included."""

    def __init__(self, inner: Engine, max_in_flight: int) -> None:
        super().__init__(inner)
        self._sem = asyncio.Semaphore(max_in_flight)

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        async with self._sem:
            return await self.inner.generate(request)

    async def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        async with self._sem, contextlib.aclosing(self.inner.stream(request)) as chunks:
            async for chunk in chunks:
                yield chunk


async def gather_owned(coros) -> list:
    """Await coroutines concurrently under a TaskGroup: one failure or a cancel stops the rest (none leak)."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(c) for c in coros]
    return [t.result() for t in tasks]


class EngineBase:
    """Defaults for an adapter: declares no capabilities, is free, estimates tokens, cannot stream."""

    name = "engine"
    capabilities = Capabilities()
    price: Price | None = None

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        raise NotImplementedError

    def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        raise NotImplementedError(f"engine '{self.name}' does not stream (capabilities.stream is False)")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def describe(self) -> dict:
        """What a run's manifest records about the engine beyond its spec (e.g. sampling defaults it applies)."""
        return {}

    async def aclose(self) -> None:
        return None
