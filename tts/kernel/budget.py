"""A budget of generated tokens, engine calls, wall seconds and money shared by every branch of a run.

Tokens are reserved before a call (max_tokens * n) and the unused part refunded after it, so concurrent branches
can never spend more than the budget together. A call that does not fit while other calls are in flight waits for
their refunds (`admit`): most calls use far less than their max_tokens, so reserving the worst case must not turn
away work the budget can afford. With nothing left in flight, a call that finds only a little room is shortened to
fit, and one that finds none is refused with BudgetExhausted. Money works the same way where the engine has a price:
the call's worst case (its prompt plus max_tokens * n at the engine's prices) is reserved, the real cost charged.
"""
from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from pydantic import Field

from tts.kernel.errors import BudgetExhausted
from tts.kernel.types import Frozen


class BudgetConfig(Frozen):
    max_tokens: int | None = Field(None, ge=1, description="generated tokens, all branches together")
    max_calls: int | None = Field(None, ge=1, description="engine calls (a request with n>1 is one call)")
    max_seconds: float | None = Field(None, gt=0, description="wall seconds from the start of the run")
    max_usd: float | None = Field(None, gt=0, description="money, at the engine's prices (engines without one are free)")


class Price(Frozen):
    """What an engine charges, in USD per million tokens (OpenAI-style: cached prompt tokens cost less)."""

    prompt_per_mtok: float = Field(0.0, ge=0)
    completion_per_mtok: float = Field(0.0, ge=0)
    cached_prompt_per_mtok: float | None = Field(None, ge=0, description="default: the prompt price")

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        cached_rate = self.prompt_per_mtok if self.cached_prompt_per_mtok is None else self.cached_prompt_per_mtok
        uncached = max(prompt_tokens - cached_prompt_tokens, 0)
        return (uncached * self.prompt_per_mtok + cached_prompt_tokens * cached_rate
                + completion_tokens * self.completion_per_mtok) / 1e6


class Reservation(NamedTuple):
    """What one call holds until it settles (internal, made on every call: a tuple, not a validated model)."""
    per: int  # max_tokens per completion granted
    tokens: int
    usd: float = 0.0
    parent: "Reservation | None" = None  # what the parent budget holds for the same call (child budgets)


class Budget:
    def __init__(self, config: BudgetConfig | None = None, *, clock=time.monotonic, parent: "Budget | None" = None
                 ) -> None:
        self.config = config or BudgetConfig()
        self.parent = parent
        self._clock = clock
        self.started = clock()
        self.tokens_used = 0
        self.tokens_reserved = 0
        self.calls_used = 0
        self.usd_used = 0.0
        self.usd_reserved = 0.0
        self.exhausted_reason: str | None = None
        self._refunded: asyncio.Event | None = None  # set (and replaced) on every settle: wakes calls waiting for room

    @property
    def deadline(self) -> float | None:
        """Deadline on the clock passed in (time.monotonic by default, as asyncio's loop clock is); a child's is
        the earlier of its own and its parent's."""
        s = self.config.max_seconds
        own = None if s is None else self.started + s
        up = self.parent.deadline if self.parent is not None else None
        return min((d for d in (own, up) if d is not None), default=None)

    def reserve(self, max_tokens: int, n: int, *, price: Price | None = None, prompt_tokens: int = 0) -> Reservation:
        """Reserve room for a call; grants the max_tokens per completion that fits (maybe fewer than asked).
        `prompt_tokens` is the caller's estimate of the prompt, needed only when there is a price."""
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
        usd = 0.0
        if price is not None:
            # a request with n > 1 may be fanned out into n requests that each pay for the prompt
            prompt_usd = price.cost(prompt_tokens * n, 0)
            if c.max_usd is not None:
                room = c.max_usd - self.usd_used - self.usd_reserved - prompt_usd
                per_token = price.completion_per_mtok / 1e6 * n
                if per_token > 0:
                    per = min(per, int(room / per_token))
                if per < 1 or room <= 0:
                    self._exhaust("usd")
            usd = prompt_usd + price.cost(0, per * n)
        held = None
        if self.parent is not None:  # the parent may grant less; it raises when it has no room at all
            held = self.parent.reserve(per, n, price=price, prompt_tokens=prompt_tokens)
            per, usd = held.per, min(usd, held.usd) if price is not None else usd
        self.calls_used += 1
        self.tokens_reserved += per * n
        self.usd_reserved += usd
        return Reservation(per=per, tokens=per * n, usd=usd, parent=held)

    async def admit(self, max_tokens: int, n: int, *, price: Price | None = None, prompt_tokens: int = 0
                    ) -> Reservation:
        """`reserve`, but a call that would be shortened or refused while other calls hold reservations waits
        for their refunds first (until the time budget's deadline). The guarantee is unchanged: reservations
        never add up past the budget."""
        while not self._fits(max_tokens, n, price, prompt_tokens) and self._in_flight():
            root = self._root()
            if root._refunded is None:
                root._refunded = asyncio.Event()
            deadline = self.deadline
            timeout = None if deadline is None else max(0.0, deadline - self._clock())
            try:
                await asyncio.wait_for(root._refunded.wait(), timeout)
            except TimeoutError:
                break  # the time budget is spent: reserve() says so
        return self.reserve(max_tokens, n, price=price, prompt_tokens=prompt_tokens)

    def _root(self) -> "Budget":
        return self if self.parent is None else self.parent._root()

    def _in_flight(self) -> bool:
        """Whether some call holds a reservation here or above (a refund may still come)."""
        return self.tokens_reserved > 0 or self.usd_reserved > 0 or (
            self.parent is not None and self.parent._in_flight())

    def _fits(self, max_tokens: int, n: int, price: Price | None, prompt_tokens: int) -> bool:
        """Whether the whole call (max_tokens for each of n) fits now, at this level and every one above."""
        c = self.config
        if c.max_tokens is not None and c.max_tokens - self.tokens_used - self.tokens_reserved < max_tokens * n:
            return False
        if price is not None and c.max_usd is not None:
            worst = price.cost(prompt_tokens * n, max_tokens * n)
            if c.max_usd - self.usd_used - self.usd_reserved < worst:
                return False
        return self.parent is None or self.parent._fits(max_tokens, n, price, prompt_tokens)

    def child(self, config: BudgetConfig | None = None) -> "Budget":
        """A budget for one part of a run (a stage, a sub-strategy): its own limits, and every call it grants is
        reserved and charged in this budget too, so the part can never spend past either."""
        return Budget(config, clock=self._clock, parent=self)

    def settle(self, reservation: Reservation, used: int, usd: float = 0.0) -> None:
        """Release a reservation and charge the `used` tokens and the `usd` they cost."""
        if self.parent is not None and reservation.parent is not None:
            self.parent.settle(reservation.parent, used, usd)
        self.tokens_reserved -= reservation.tokens
        self.tokens_used += used
        self.usd_reserved -= reservation.usd
        self.usd_used += usd
        if self.parent is None and self._refunded is not None:
            self._refunded.set()
            self._refunded = None

    def _exhaust(self, reason: str) -> None:
        self.exhausted_reason = self.exhausted_reason or reason
        raise BudgetExhausted(f"budget exhausted: {reason}")

    def mark_timed_out(self) -> None:
        self.exhausted_reason = self.exhausted_reason or "seconds"
        if self.parent is not None:
            self.parent.mark_timed_out()

    def snapshot(self) -> dict:
        return {
            "tokens_used": self.tokens_used,
            "calls_used": self.calls_used,
            "usd_used": round(self.usd_used, 6),
            "seconds": round(self._clock() - self.started, 4),
            "exhausted": self.exhausted_reason,
        }
