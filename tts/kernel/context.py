"""The context a strategy receives: every effect (generate, branch, join, cancel, budget, trace) goes through it.

Branches run on an asyncio.TaskGroup. Each branch is a coroutine factory; its outcome (value, error, cancellation
or budget refusal) is recorded on the branch and never escapes to its siblings. A `stop_when` reducer sees the
outcomes as they arrive and may cancel the branches still running (early stop); cancelling a branch cancels the
task awaiting the engine, which aborts the engine request.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from tts.kernel.branches import BranchGroup, BranchOutcome, StopRule, charge_branch
from tts.kernel.budget import Budget, Reservation
from tts.kernel.client_stop import ClientConfidenceStop
from tts.kernel.engine import Engine
from tts.kernel.errors import BudgetExhausted
from tts.kernel.reasoning import ReasoningConfig, instructed, split_all, think
from tts.kernel.trace import Path, Tracer, current_path
from tts.kernel.types import Chunk, Completion, GenerateRequest, Usage

T = TypeVar("T")
__all__ = ["Context", "BranchOutcome", "BranchGroup"]


_NO_DEADLINE = contextlib.nullcontext()


def _deadline(when: float | None):
    # most runs have no time budget: skip arming a timeout for each of their engine calls
    return _NO_DEADLINE if when is None else asyncio.timeout_at(when)


class Context:
    def __init__(self, engine: Engine, *, budget: Budget | None = None, tracer: Tracer | None = None,
                 task: Any = None, reasoning: ReasoningConfig | None = None, judge: Engine | None = None,
                 route_key: str | None = None, on_answer: Callable[[str | None], None] | None = None) -> None:
        # an engine that streams but cannot end a trace on confidence is given the client-side stop, once, here
        self.engine = ClientConfidenceStop.over(engine)
        # anytime consumers (the server's streamed consensus) hear each sample's answer as it is read
        self.on_answer = on_answer
        # calls with one key go to one replica of a routing engine, whose prefix cache holds what they share: the
        # runner sets it to the problem being solved; None leaves routing to the prompt
        self.route_key = route_key
        self.judge = judge  # the engine verifiers and judges call (None: the policy's own engine)
        self.verifying = False  # calls made here are verification: charged to the one budget, reported apart
        self.reasoning = reasoning  # a reasoning model: completions are split into thinking and answer
        self.task = task  # the tasks.Task being solved: its prompt, answer extraction and grader
        self.budget = budget or Budget()
        self.tracer = tracer or Tracer()
        self.usage = Usage()
        self._parent: Context | None = None  # usage is charged up the chain of derived contexts

    def derive(self, task: Any) -> "Context":
        """A context for a nested strategy that reads answers another way (another task), sharing this one's
        engine, budget and trace scope (so branch numbering continues in the one DAG); its usage is charged here
        too."""
        return self._sub(self.engine, task, self.reasoning, self.verifying)

    def verifier(self) -> "Context":
        """A context for a verifier's or judge's calls: the judge engine (or this one), this budget and trace, no
        reasoning-model handling, its usage charged here and marked as verification."""
        return self._sub(self.judge or self.engine, self.task, None, True)

    def _sub(self, engine: Engine, task: Any, reasoning: ReasoningConfig | None, verifying: bool) -> "Context":
        sub = Context(engine, budget=self.budget, tracer=self.tracer, task=task, reasoning=reasoning, judge=self.judge,
                      route_key=self.route_key, on_answer=self.on_answer)
        sub._parent = self
        sub.verifying = verifying
        return sub

    def charge(self, usage: Usage) -> None:
        """Adds usage to this context and every context it derives from (a call's, or thinking tokens split out of
        completions that were already charged)."""
        ctx: Context | None = self
        while ctx is not None:
            ctx.usage = ctx.usage + usage
            ctx = ctx._parent

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` by the engine's tokenizer, or its conservative estimate without one."""
        return self.engine.count_tokens(text)

    @property
    def path(self) -> Path:
        return current_path.get()

    def answered(self, answer: str | None) -> None:
        """A sample's answer has been read: traced (the timeline marks it) and handed to the run's listener."""
        self.tracer.emit("partial_answer", answer=answer)
        if self.on_answer is not None:
            self.on_answer(answer)

    def emit(self, kind: str, **data: Any) -> None:
        self.tracer.emit(kind, **data)

    async def _reserve(self, request: GenerateRequest) -> tuple[GenerateRequest, Reservation]:
        price = self.engine.price
        prompt = self.count_tokens(request.prompt_text()) if price is not None else 0
        reserved = await self.budget.admit(request.max_tokens, request.n, price=price, prompt_tokens=prompt)
        if reserved.per < request.max_tokens:
            request = request.model_copy(update={"max_tokens": reserved.per})
        return request, reserved

    def _cost(self, prompt: int, completion: int, cached: int) -> float:
        price = self.engine.price
        return price.cost(prompt, completion, cached) if price is not None else 0.0

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        """One engine call, charged to the budget and traced under the current branch (two, when a thinking
        budget cuts a reasoning model's thinking and it answers in a continuation). A confidence stop ends the
        trace in the engine, or, for an engine that cannot, in the client-side stop it was given (finish_reason
        "confidence" either way)."""
        if request.confidence_stop is not None:
            if not self.engine.capabilities.confidence_stop:
                raise ValueError(f"engine '{self.engine.name}' cannot stop traces on confidence: it neither ends "
                                 f"them itself nor streams")
            if self.reasoning is not None:  # thinking is cut by confidence here, not by a thinking budget
                request = instructed(self.reasoning, request)
            completions = await self.raw_generate(request)
            by = "client" if isinstance(self.engine, ClientConfidenceStop) else "engine"
            for c in completions:
                if c.finish_reason == "confidence":
                    self.emit("confidence_stop", by=by, tokens=c.completion_tokens)
            return self._thought(split_all(self.reasoning, self.count_tokens, completions)) \
                if self.reasoning is not None else completions
        if self.reasoning is not None:
            return self._thought(await think(self.reasoning, request, self.raw_generate, self.count_tokens, self.emit))
        return await self.raw_generate(request)

    def _thought(self, completions: list[Completion]) -> list[Completion]:
        """A reasoning model's split completions: their thinking tokens charged apart (already in the totals)."""
        thinking = sum(c.thinking_tokens for c in completions)
        if thinking:
            self.charge(Usage(thinking_tokens=thinking))
        return completions

    async def raw_generate(self, request: GenerateRequest) -> list[Completion]:
        """One engine call as asked, without reasoning-model handling (budget forcing calls it for each part). A
        single sample is streamed where the stream is metered, or where the client-side stop may cut it: a call
        cancelled on the way is then charged the tokens it generated."""
        cut_here = request.confidence_stop is not None and isinstance(self.engine, ClientConfidenceStop)
        if request.n == 1 and (self.engine.capabilities.metered_stream or cut_here):
            return await self._call(request, self._consumer(None), stream=True)
        return await self._call(request, lambda req, progress: self.engine.generate(req))

    async def stream(self, request: GenerateRequest, on_chunk: Callable[[Chunk], None] | None = None) -> Completion:
        """One completion, streamed: `on_chunk` sees each piece as it arrives (a pruner reads partial traces, a
        planner parses lines). Cancelling the caller aborts the request; the tokens generated until then are charged.
        Engines that cannot stream are called with generate() and give one chunk."""
        if request.n != 1:
            raise ValueError("stream() takes n=1 requests")
        if not self.engine.capabilities.stream:
            [completion] = await self.generate(request)
            if on_chunk:
                on_chunk(Chunk(text=completion.text, completion_tokens=completion.completion_tokens,
                               completion=completion))
            return completion

        if self.reasoning is not None:
            request = instructed(self.reasoning, request)
        [completion] = await self._call(request, self._consumer(on_chunk), stream=True)
        if self.reasoning is not None:
            [completion] = self._thought(split_all(self.reasoning, self.count_tokens, [completion]))
        return completion

    def _consumer(self, on_chunk: Callable[[Chunk], None] | None):
        """The engine call of a stream: it reports the tokens generated so far, so a cancelled one is charged them."""
        async def consume(req: GenerateRequest, progress: list[int]) -> list[Completion]:
            completion = None
            async with contextlib.aclosing(self.engine.stream(req)) as chunks:
                async for chunk in chunks:
                    progress[0] = chunk.completion_tokens
                    if chunk.completion is not None:
                        completion = chunk.completion
                    if on_chunk:
                        on_chunk(chunk)
            if completion is None:
                raise RuntimeError("the engine's stream ended without a final completion")
            return [completion]

        return consume

    async def _call(self, request: GenerateRequest,
                    run: Callable[[GenerateRequest, list[int]], Awaitable[list[Completion]]], *,
                    stream: bool = False) -> list[Completion]:
        """The one path of every engine call: reserve, call, settle, charge, trace. `run` reports the tokens
        generated so far in progress[0] (a stream does), so that a call that ends early is charged what it spent."""
        request, reserved = await self._reserve(request)
        if request.route_key is None and self.route_key is not None and self.engine.capabilities.routes:
            request = request.model_copy(update={"route_key": self.route_key})  # keep the problem's calls together
        node = self.tracer.add_call()
        purpose = {"purpose": "verify"} if self.verifying else {}  # on both ends: a reader needs no start to pair
        key = request.prompt if request.prompt is not None else request.messages
        prompt = self.tracer.prompt_id(key, lambda: request.prompt if request.prompt is not None else
                                       [m.wire() for m in request.messages])
        self.emit("call_start", node=node, n=request.n, max_tokens=request.max_tokens,
                  temperature=request.temperature, stream=stream, prompt=prompt, top_p=request.top_p,
                  **purpose, seed=request.seed, **({"stop": list(request.stop)} if request.stop else {}),
                  **({"logprobs": request.logprobs} if request.logprobs is not None else {}),
                  **({"continue_final": True} if request.continue_final else {}))
        t0, progress, completions = time.monotonic(), [0], None
        status, error = "error", None
        try:
            async with _deadline(self.budget.deadline):
                completions = await run(request, progress)
            status = "ok"
        except TimeoutError:
            self.budget.mark_timed_out()
            status = "budget"
            raise BudgetExhausted("budget exhausted: seconds") from None
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except BaseException as e:
            error = repr(e)
            raise
        finally:
            seconds = round(time.monotonic() - t0, 6)
            if completions is not None:
                used = sum(c.completion_tokens for c in completions)
                prompt = sum(c.prompt_tokens for c in completions)
                cached = sum(c.cached_prompt_tokens for c in completions)
                usd = self._cost(prompt, used, cached)
                usage = Usage(prompt_tokens=prompt, completion_tokens=used, cached_prompt_tokens=cached, calls=1,
                              max_prompt_tokens=max((c.prompt_tokens for c in completions), default=0), usd=usd)
                if self.verifying:
                    usage = usage.model_copy(update={"verify_prompt_tokens": prompt, "verify_completion_tokens": used,
                                                     "verify_calls": 1})
                end = dict(prompt_tokens=prompt, completion_tokens=used, cached_prompt_tokens=cached,
                           finish=[c.finish_reason for c in completions])
            else:
                # a call that ended early still cost what it generated and the prompt it read
                used = progress[0]
                usd = max(reserved.usd - self._cost(0, reserved.tokens - used, 0), 0.0) if used else 0.0
                usage = Usage(completion_tokens=used, calls=1, usd=usd,  # the request was sent: it counts
                              **({"verify_completion_tokens": used, "verify_calls": 1} if self.verifying else {}))
                end = dict(completion_tokens=used, **({"error": error} if error else {}))
            self.budget.settle(reserved, used, usd)
            self.charge(usage)
            charge_branch(used)
            self.tracer.set_status(node, "done" if status == "ok" else status, tokens=used, seconds=seconds,
                                   **({"error": error} if error else {}))
            self.emit("call_end", node=node, status=status, seconds=seconds, **end, **purpose)
        return completions

    def group(self, label: str = "branches", stop_when: StopRule | None = None,
              max_in_flight: int | None = None) -> BranchGroup:
        """A group to add branches to while it runs: `async with ctx.group() as g: g.spawn(factory)`."""
        return BranchGroup(self, label, stop_when, max_in_flight)

    async def branches(
        self,
        factories: Sequence[Callable[[], Awaitable[T]]],
        *,
        label: str = "branches",
        stop_when: StopRule | None = None,
        max_in_flight: int | None = None,
    ) -> list[BranchOutcome[T]]:
        """Run each factory as a concurrent branch (at most `max_in_flight` at once, in order) and return one outcome
        per branch, in input order."""
        async with self.group(label, stop_when, max_in_flight) as g:
            for factory in factories:
                g.spawn(factory)
        return [o for o in g.outcomes() if o is not None]
