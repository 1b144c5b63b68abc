"""DeepConf online's stop for an engine that streams but cannot end a trace itself: the trace is streamed and its
request aborted as soon as a full window's mean confidence falls under the threshold. Wrapped once around such an
engine when a context is made over it, so that the context sees one kind of engine, one that ends traces itself
(finish_reason "confidence"), and holds no branch of its own for the client-side stop."""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

from tts.kernel.confidence import WindowConfidence
from tts.kernel.engine import Engine, EngineWrapper
from tts.kernel.types import Chunk, Completion, GenerateRequest


class ClientConfidenceStop(EngineWrapper):
    def __init__(self, inner: Engine) -> None:
        super().__init__(inner)
        self.capabilities = inner.capabilities.model_copy(update={"confidence_stop": True})

    @classmethod
    def over(cls, engine: Engine) -> Engine:
        """The engine itself when it ends traces on confidence (or cannot stream: then it cannot be asked to),
        else the engine wrapped."""
        caps = engine.capabilities
        return engine if caps.confidence_stop or not caps.stream else cls(engine)

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        if request.confidence_stop is None:
            return await self.inner.generate(request)
        last = None
        async with contextlib.aclosing(self.stream(request)) as chunks:
            async for chunk in chunks:
                last = chunk.completion or last
        if last is None:
            raise RuntimeError("the engine's stream ended without a final completion")
        return [last]

    async def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        stop = request.confidence_stop
        if stop is not None and request.n != 1:
            raise ValueError(f"engine '{self.name}' stops traces on confidence one at a time (n=1 requests)")
        asked = request if stop is None else request.model_copy(update={
            "confidence_stop": None, "logprobs": max(request.logprobs or 0, stop.top_k)})
        window, seen, parts = WindowConfidence(stop.window if stop else 1), [], []
        async with contextlib.aclosing(self.inner.stream(asked)) as chunks:  # leaving it aborts the request
            async for chunk in chunks:
                if stop is None:
                    yield chunk
                    continue
                seen.extend(chunk.confidence)
                if chunk.completion is not None:
                    yield chunk.model_copy(update={
                        "completion": chunk.completion.model_copy(update={"confidence": tuple(seen)})})
                    return
                parts.append(chunk.text)
                if window.below(stop, chunk.confidence):
                    yield chunk.model_copy(update={"completion": Completion(
                        text="".join(parts), completion_tokens=chunk.completion_tokens, finish_reason="confidence",
                        confidence=tuple(seen))})
                    return
                yield chunk
