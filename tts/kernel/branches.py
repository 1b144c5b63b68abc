"""A group of concurrent branches on one asyncio.TaskGroup, with a cancel path per branch.

Branches can be added while the group runs (a streaming planner adds tasks as it parses them), awaited one by one
(a task waits for its dependencies), cancelled one by one (a pruner) or all at once by a stop rule (early stop).
A branch's error, cancellation or budget refusal is its outcome and never reaches its siblings; only errors that
end the run (an engine that is down) leave the group, as themselves rather than as an ExceptionGroup.
"""
from __future__ import annotations

import asyncio
import time
import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Literal, Protocol, TypeVar

from tts.kernel.errors import BudgetExhausted, EngineUnavailable
from tts.kernel.trace import Path, Tracer, current_path, path_id


class Owner(Protocol):
    """What a group needs of the context that opened it: the trace scope and a way to emit events."""

    tracer: Tracer

    def emit(self, kind: str, **data: Any) -> None: ...

T = TypeVar("T")
Status = Literal["ok", "error", "cancelled", "pruned", "budget"]


@dataclass(frozen=True)
class BranchOutcome(Generic[T]):
    index: int
    path: Path
    status: Status
    value: T | None = None
    error: str | None = None
    seconds: float = 0.0
    tokens: int = 0  # generated tokens charged to engine calls under this branch, whatever its status


class _Spend:
    """Generated tokens charged under one branch; a nested branch adds to every branch around it."""

    __slots__ = ("tokens", "parent")

    def __init__(self, parent: "_Spend | None") -> None:
        self.tokens, self.parent = 0, parent


_spend: ContextVar[_Spend | None] = ContextVar("tts_branch_spend", default=None)


def charge_branch(tokens: int) -> None:
    """An engine call's generated tokens, counted to the branch it ran in (a cancelled branch's outcome then says
    what it cost, as the budget already does)."""
    spend = _spend.get()
    while spend is not None:
        spend.tokens += tokens
        spend = spend.parent


# A stop rule sees each outcome as it arrives, with the number of branches still running, and says why the group
# should stop (or None). It keeps its own running state, so a group of n branches costs O(n) in all, not O(n^2).
StopRule = Callable[["BranchOutcome[Any]", int], "str | None"]


class BranchGroup(Generic[T]):
    def __init__(self, ctx: Owner, label: str, stop_when: StopRule | None = None,
                 max_in_flight: int | None = None) -> None:
        self.ctx, self.label, self.stop_when = ctx, label, stop_when
        # at most this many branches run at once; the rest wait their turn, and a stop before their turn costs
        # nothing, where a running branch is paid for up to the stop
        self._gate = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self.paths: list[Path] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._results: list[asyncio.Future[BranchOutcome[T]]] = []
        self._cancel_reason: dict[int, str] = {}
        self._cancel_status: dict[int, Status] = {}
        self._open = 0  # branches spawned and not finished
        self._stopped = False
        self._tg = asyncio.TaskGroup()

    async def __aenter__(self) -> "BranchGroup[T]":
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self._tg.__aexit__(*exc)
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None  # branch errors are outcomes: only run-ending errors get here
        self.ctx.tracer.add_join(self.paths, self.label)

    def spawn(self, factory: Callable[[], Awaitable[T]]) -> int:
        """Start a branch; returns its index in the group."""
        i = len(self._tasks)
        path = self.ctx.tracer.next_child()
        self.paths.append(path)
        self.ctx.tracer.add_branch(path, self.label)
        future: asyncio.Future[BranchOutcome[T]] = asyncio.get_running_loop().create_future()
        self._results.append(future)
        self._open += 1
        task = self._tg.create_task(self._run(i, path, factory), name=path_id(path))
        task.add_done_callback(lambda _t, i=i: self._cancelled_before_start(i))
        self._tasks.append(task)
        return i

    async def wait(self, index: int) -> BranchOutcome[T]:
        return await asyncio.shield(self._results[index])

    def outcome(self, index: int) -> BranchOutcome[T] | None:
        f = self._results[index]
        return f.result() if f.done() else None

    def outcomes(self) -> list[BranchOutcome[T] | None]:
        return [self.outcome(i) for i in range(len(self._results))]

    def pending(self) -> list[int]:
        return [i for i, f in enumerate(self._results) if not f.done()]

    def live(self) -> list[int]:
        """Pending branches not yet asked to stop: a cancelled branch stays pending until its task unwinds, and a
        watcher that counted it would decide twice about the same branch."""
        return [i for i in self.pending() if i not in self._cancel_reason]

    def cancel(self, index: int, reason: str, *, status: Status = "cancelled") -> bool:
        """Cancel one branch (and so its engine requests); False if it had already finished. `status` says why in
        the outcome's type ("pruned" for a pruner's cut, "cancelled" for a stop rule's), `reason` in words."""
        if self._results[index].done() or index in self._cancel_reason:
            return False
        self._cancel_reason[index] = reason
        self._cancel_status[index] = status
        self._tasks[index].cancel()
        return True

    def _finish(self, outcome: BranchOutcome[T]) -> None:
        if self._results[outcome.index].done():
            return
        self._results[outcome.index].set_result(outcome)
        self._open -= 1
        self.ctx.tracer.set_status(path_id(outcome.path), outcome.status, seconds=outcome.seconds)
        if self.stop_when is None or self._stopped:
            return
        reason = self.stop_when(outcome, self._open)
        if reason and self._open:
            self._stopped = True
            self.ctx.emit("stop", reason=reason, pending=self.pending())
            for j in self.pending():
                self.cancel(j, reason)

    def _cancelled_before_start(self, i: int) -> None:
        if not self._results[i].done():  # the task never ran its body, or was cancelled by the group's parent
            self._finish(BranchOutcome(i, self.paths[i], self._cancel_status.get(i, "cancelled"),
                                       error=self._cancel_reason.get(i, "cancelled")))

    async def _run(self, i: int, path: Path, factory: Callable[[], Awaitable[T]]) -> None:
        current_path.set(path)
        spend = _Spend(_spend.get())
        _spend.set(spend)
        if self._gate is None:
            return await self._body(i, path, factory, spend)
        try:
            await self._gate.acquire()
        except asyncio.CancelledError:
            if i not in self._cancel_reason:
                raise
            self._finish(BranchOutcome(i, path, self._cancel_status[i], error=self._cancel_reason[i]))
            return
        try:
            await self._body(i, path, factory, spend)
        finally:
            self._gate.release()

    async def _body(self, i: int, path: Path, factory: Callable[[], Awaitable[T]], spend: _Spend) -> None:
        emit = self.ctx.emit
        emit("branch_start", label=self.label)
        t0 = time.monotonic()
        try:
            value = await factory()
        except asyncio.CancelledError:
            if i not in self._cancel_reason:
                raise  # the parent is being cancelled: let the task group propagate it
            outcome = BranchOutcome(i, path, self._cancel_status[i], error=self._cancel_reason[i])
        except BudgetExhausted as e:
            outcome = BranchOutcome(i, path, "budget", error=str(e))
        except EngineUnavailable:
            raise  # every sibling would fail the same way: end the run with a clear error
        except Exception as e:
            outcome = BranchOutcome(i, path, "error", error=f"{type(e).__name__}: {e}")
            emit("branch_error", error=outcome.error, where=traceback.format_exc(limit=-1).strip()[-300:])
        else:
            outcome = BranchOutcome(i, path, "ok", value=value)
        seconds = round(time.monotonic() - t0, 6)
        outcome = BranchOutcome(i, path, outcome.status, outcome.value, outcome.error, seconds, spend.tokens)
        emit("branch_end", status=outcome.status, error=outcome.error, seconds=seconds)
        self._finish(outcome)
