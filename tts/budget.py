"""A budget of generated tokens, engine calls and wall seconds shared by every branch of a run.

Tokens are reserved before a call (max_tokens * n) and the unused part refunded after it, so concurrent branches
can never spend more than the budget together: a call that finds no room is refused with BudgetExhausted, and
a call that finds only a little room is shortened to fit.
"""
from __future__ import annotations

import time

from pydantic import Field

from tts.errors import BudgetExhausted
from tts.types import Frozen


class BudgetConfig(Frozen):
    max_tokens: int | None = Field(None, ge=1, description="generated tokens, all branches together")
    max_calls: int | None = Field(None, ge=1, description="engine calls (a request with n>1 is one call)")
    max_seconds: float | None = Field(None, gt=0, description="wall seconds from the start of the run")


class Budget:
    def __init__(self, config: BudgetConfig | None = None, *, clock=time.monotonic) -> None:
        self.config = config or BudgetConfig()
        self._clock = clock
        self.started = clock()
        self.tokens_used = 0
        self.tokens_reserved = 0
        self.calls_used = 0
        self.exhausted_reason: str | None = None

    @property
    def deadline(self) -> float | None:
        """Deadline on the clock passed in (time.monotonic by default, as asyncio's loop clock is)."""
        s = self.config.max_seconds
        return None if s is None else self.started + s

    def reserve(self, max_tokens: int, n: int) -> int:
        """Reserve room for a call; returns the max_tokens per completion that fits (maybe fewer than asked)."""
        c = self.config
        if c.max_seconds is not None and self._clock() >= self.started + c.max_seconds:
            self._exhaust("seconds")
        if c.max_calls is not None and self.calls_used >= c.max_calls:
            self._exhaust("calls")
        per = max_tokens
        if c.max_tokens is not None:
            room = c.max_tokens - self.tokens_used - self.tokens_reserved
            per = min(max_tokens, room // n)
            if per < 1:
                self._exhaust("tokens")
        self.calls_used += 1
        self.tokens_reserved += per * n
        return per

    def settle(self, reserved: int, used: int) -> None:
        """Release a reservation of `reserved` tokens and charge the `used` ones."""
        self.tokens_reserved -= reserved
        self.tokens_used += used

    def _exhaust(self, reason: str) -> None:
        self.exhausted_reason = self.exhausted_reason or reason
        raise BudgetExhausted(f"budget exhausted: {reason}")

    def mark_timed_out(self) -> None:
        self.exhausted_reason = self.exhausted_reason or "seconds"

    def snapshot(self) -> dict:
        return {
            "tokens_used": self.tokens_used,
            "calls_used": self.calls_used,
            "seconds": round(self._clock() - self.started, 4),
            "exhausted": self.exhausted_reason,
        }
