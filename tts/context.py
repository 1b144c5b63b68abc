"""The context a strategy receives: every effect (generate, branch, join, cancel, budget, trace) goes through it.

Branches run on an asyncio.TaskGroup. Each branch is a coroutine factory; its outcome (value, error, cancellation
or budget refusal) is recorded on the branch and never escapes to its siblings. A `stop_when` reducer sees the
outcomes as they arrive and may cancel the branches still running (early stop); cancelling a branch cancels the
task awaiting the engine, which aborts the engine request.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from tts.branches import BranchGroup, BranchOutcome, StopRule
from tts.budget import Budget
from tts.engine import Engine
from tts.errors import BudgetExhausted
from tts.trace import Path, Tracer, current_path
from tts.types import Completion, GenerateRequest, Usage

T = TypeVar("T")
__all__ = ["Context", "BranchOutcome", "BranchGroup"]


class Context:
    def __init__(self, engine: Engine, *, budget: Budget | None = None, tracer: Tracer | None = None,
                 task: Any = None) -> None:
        self.engine = engine
        self.task = task  # the tasks.Task being solved: its prompt, answer extraction and grader
        self.budget = budget or Budget()
        self.tracer = tracer or Tracer()
        self.usage = Usage()
        self._child_counter: dict[Path, int] = {}

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` by the engine's tokenizer, or a conservative estimate (1 per 3 characters) without one."""
        counter = getattr(self.engine, "count_tokens", None)
        return counter(text) if counter else len(text) // 3 + 1

    @property
    def path(self) -> Path:
        return current_path.get()

    def emit(self, kind: str, **data: Any) -> None:
        self.tracer.emit(kind, **data)

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        """One engine call, charged to the budget and traced under the current branch."""
        per = self.budget.reserve(request.max_tokens, request.n)
        if per < request.max_tokens:
            request = request.model_copy(update={"max_tokens": per})
        reserved = per * request.n
        node = self.tracer.add_call()
        self.emit("call_start", node=node, n=request.n, max_tokens=request.max_tokens, temperature=request.temperature)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout_at(self.budget.deadline):
                completions = await self.engine.generate(request)
        except TimeoutError:
            self.budget.settle(reserved, 0)
            self.budget.mark_timed_out()
            self.tracer.set_status(node, "budget")
            self.emit("call_end", node=node, status="budget")
            raise BudgetExhausted("budget exhausted: seconds") from None
        except asyncio.CancelledError:
            self.budget.settle(reserved, 0)
            self.tracer.set_status(node, "cancelled")
            self.emit("call_end", node=node, status="cancelled", seconds=round(time.monotonic() - t0, 6))
            raise
        except BaseException as e:
            self.budget.settle(reserved, 0)
            self.tracer.set_status(node, "error", error=repr(e))
            self.emit("call_end", node=node, status="error", error=repr(e))
            raise
        used = sum(c.completion_tokens for c in completions)
        self.budget.settle(reserved, used)
        call_usage = Usage(
            prompt_tokens=sum(c.prompt_tokens for c in completions),
            completion_tokens=used,
            cached_prompt_tokens=sum(c.cached_prompt_tokens for c in completions),
            calls=1,
            max_prompt_tokens=max((c.prompt_tokens for c in completions), default=0),
        )
        self.usage = self.usage + call_usage
        seconds = round(time.monotonic() - t0, 6)
        self.tracer.set_status(node, "done", tokens=used, seconds=seconds)
        self.emit("call_end", node=node, status="ok", seconds=seconds, **call_usage.model_dump(exclude={"calls", "max_prompt_tokens"}),
                  finish=[c.finish_reason for c in completions])
        return completions

    def _next_child(self) -> Path:
        parent = current_path.get()
        i = self._child_counter.get(parent, 0)
        self._child_counter[parent] = i + 1
        return parent + (i,)

    def group(self, label: str = "branches", stop_when: StopRule | None = None) -> BranchGroup:
        """A group to add branches to while it runs: `async with ctx.group() as g: g.spawn(factory)`."""
        return BranchGroup(self, label, stop_when)

    async def branches(
        self,
        factories: Sequence[Callable[[], Awaitable[T]]],
        *,
        label: str = "branches",
        stop_when: StopRule | None = None,
    ) -> list[BranchOutcome[T]]:
        """Run each factory as a concurrent branch and return one outcome per branch, in input order."""
        async with self.group(label, stop_when) as g:
            for factory in factories:
                g.spawn(factory)
        return [o for o in g.outcomes() if o is not None]
