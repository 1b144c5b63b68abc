"""The engine protocol every adapter implements, and a concurrency-limiting wrapper."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Protocol, runtime_checkable

from tts.kernel.types import Chunk, Completion, GenerateRequest


@runtime_checkable
class Engine(Protocol):
    """An LLM backend.

    `generate` returns `request.n` completions. Cancelling the awaiting task must abort the request inside the
    engine (vLLM abort, HTTP connection closed, simulator slot freed): that is how pruning and early stop save compute.
    """

    name: str

    async def generate(self, request: GenerateRequest) -> list[Completion]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StreamingEngine(Engine, Protocol):
    """An engine that can also stream one completion (n=1) as it is generated; closing the iterator early (or
    cancelling its consumer) aborts the request."""

    def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]: ...


class LimitedEngine:
    """Caps the number of requests in flight on an engine (e.g. a server with few slots)."""

    def __init__(self, inner: Engine, max_in_flight: int) -> None:
        self.inner = inner
        self.name = inner.name
        self._sem = asyncio.Semaphore(max_in_flight)

    @property
    def price(self):  # the money budget reads the wrapped engine's price
        return getattr(self.inner, "price", None)

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        async with self._sem:
            return await self.inner.generate(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def gather_owned(coros) -> list:
    """Await coroutines concurrently under a TaskGroup: one failure or a cancel stops the rest (none leak)."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(c) for c in coros]
    return [t.result() for t in tasks]
