"""Several engine replicas behind the one Engine protocol: routing, failover and per-replica figures.

Routing policies (named in the manifest):
- affinity: calls that share a prefix (a problem's branches, a PDR round's refine calls, APR children) go to the
  replica that holds it, chosen by rendezvous hashing over the healthy replicas (so a replica going down moves only
  its own keys) of the request's route_key (the context sets it to the problem) or, without one, the prompt's first
  `affinity_chars` characters; a preferred replica with `capacity` calls in flight spills to the least loaded one.
- least-loaded: the replica with the fewest calls in flight.
- round-robin: each call to the next replica, as a naive load balancer does (it scatters shared prefixes).
A replica whose call fails with EngineUnavailable (down, unreachable, dead engine) is taken out and the call is
retried on another one: the context above the pool charges the call once, for the completions that came back.
A replica that is out is tried again after `cooldown_s` (its health check, where it has one, must pass). All
replicas out is one EngineUnavailable naming them; the run's finished rows stay resumable.

Slow and hung replicas: every call has a deadline derived from the others' latency (`slow_factor` times the 90th
percentile of recent call latencies on the pool, never under `min_deadline_s`; `deadline_s` fixes it instead). A
call past its deadline is cancelled there (the request aborted) and retried on another replica, and the replica is
taken out as hung. A replica whose recent calls take more than `slow_factor` times the median of its peers' is
drained the same way (out until its cooldown and health check), so one slow replica does not set the pace of a run.
With no other replica left, a call waits as long as its engine lets it.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import AsyncIterator, Literal, get_args

from tts.kernel.engine import Capabilities, Engine, EngineBase
from tts.kernel.errors import EngineUnavailable
from tts.kernel.types import Chunk, Completion, GenerateRequest

Policy = Literal["affinity", "least-loaded", "round-robin"]
POLICIES = get_args(Policy)


@dataclass
class ReplicaStats:
    name: str
    requests: int = 0
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    failures: int = 0
    spilled_here: int = 0  # calls that preferred another replica (affinity) and came here because it was full
    busy_seconds: float = 0.0  # summed call latency
    in_flight: int = 0
    healthy: bool = True
    down_since: float | None = None
    last_error: str | None = None
    timeouts: int = 0  # calls that ran past their deadline here and were retried elsewhere
    drained_slow: int = 0  # times this replica was taken out for being far slower than its peers
    recent: deque = field(default_factory=lambda: deque(maxlen=32), repr=False)  # recent call latencies (s)


class EnginePool(EngineBase):
    name = "pool"

    def __init__(self, replicas: list[Engine], names: list[str] | None = None, *, policy: Policy = "affinity",
                 capacity: int = 64, cooldown_s: float = 10.0, affinity_chars: int = 512,
                 slow_factor: float = 4.0, min_deadline_s: float = 5.0, deadline_s: float | None = None,
                 min_samples: int = 5) -> None:
        if not replicas:
            raise ValueError("an engine pool needs at least one replica")
        if policy not in POLICIES:
            raise ValueError(f"unknown routing policy '{policy}'; known: {', '.join(POLICIES)}")
        self.replicas = replicas
        self.stats = [ReplicaStats(n) for n in (names or [f"replica{i}" for i in range(len(replicas))])]
        self.policy, self.capacity, self.cooldown_s, self.affinity_chars = policy, capacity, cooldown_s, affinity_chars
        caps = [r.capabilities for r in replicas]
        # the pool can do what every replica can
        self.capabilities = Capabilities(**{f: all(getattr(c, f) for c in caps) for f in Capabilities.model_fields
                                            if f != "routes"}, routes=True)
        self.price = replicas[0].price
        self._rr = itertools.count()
        self.slow_factor, self.min_deadline_s, self.deadline_s = slow_factor, min_deadline_s, deadline_s
        self.min_samples = min_samples

    def _deadline(self, i: int) -> float | None:
        """Seconds a call on replica i may take before it is retried elsewhere; None while there is nowhere else
        to go or too little known about latency."""
        if not any(st.healthy for j, st in enumerate(self.stats) if j != i):
            return None
        if self.deadline_s is not None:
            return self.deadline_s
        seen = sorted(x for st in self.stats for x in st.recent)
        if not seen:  # nothing has finished anywhere yet: nothing to compare with
            return None
        p90 = seen[min(len(seen) - 1, int(0.9 * len(seen)))]
        return max(self.min_deadline_s, self.slow_factor * p90)

    async def _bounded(self, awaitable, i: int, t0: float):
        """Await a call on replica i under its deadline, which is looked at again as the call waits (the pool learns
        its peers' latency meanwhile: a call sent to a hung replica before anything was known is still retried).
        TimeoutError past it; the call is cancelled, which aborts the request there."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                deadline = self._deadline(i)
                left = None if deadline is None else deadline - (time.monotonic() - t0)
                if left is not None and left <= 0:
                    raise TimeoutError(f"a call ran past its {deadline:.1f} s deadline")
                done, _ = await asyncio.wait({task}, timeout=0.5 if left is None else min(left, 0.5))
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _hung(self, i: int, error: TimeoutError) -> None:
        self.stats[i].timeouts += 1
        self._down(i, EngineUnavailable(str(error)))

    def _check_pace(self, i: int) -> None:
        """Drain replica i when its recent calls are far slower than its peers' (medians, enough calls each)."""
        mine = self.stats[i].recent
        peers = [x for j, st in enumerate(self.stats) if j != i and st.healthy for x in st.recent]
        if len(mine) < self.min_samples or len(peers) < self.min_samples:
            return
        median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        # peers faster than 50 ms a call are taken as 50 ms: below that, a busy host's scheduling jitter (not the
        # replica) sets the ratio, and a run's calls were once spread over replicas for it
        if median(mine) > self.slow_factor * max(median(peers), 0.05):
            self.stats[i].drained_slow += 1
            self._down(i, EngineUnavailable(f"slow: median {median(mine):.2f} s a call against {median(peers):.2f} "
                                            f"s on the other replicas"))
            mine.clear()

    def count_tokens(self, text: str) -> int:
        return self.replicas[0].count_tokens(text)

    # routing
    async def _readmit(self) -> None:
        """Replicas out for longer than the cooldown get their health check (in the caller's task, no background
        task); one that passes is back in."""
        now = time.monotonic()
        for i, st in enumerate(self.stats):
            if not st.healthy and now - (st.down_since or now) >= self.cooldown_s:
                error = await self._health(i)
                if error is not None:
                    st.down_since, st.last_error = time.monotonic(), str(error)
                    continue
                st.healthy, st.down_since = True, None

    async def _health(self, i: int) -> EngineUnavailable | None:
        """Replica i's health check, where it has one: the error it failed with, or None."""
        check = getattr(self.replicas[i], "check", None)
        try:
            if check is not None:
                await check()
        except EngineUnavailable as e:
            return e
        return None

    async def check(self) -> None:
        """Each replica's health check before a run: the unreachable ones start out of the pool, and the run starts
        on the others; none reachable is one error naming them all."""
        for i in range(len(self.replicas)):
            error = await self._health(i)
            if error is not None:
                self._down(i, error)
        if not any(st.healthy for st in self.stats):
            raise self._all_down()

    def _all_down(self) -> EngineUnavailable:
        down = "; ".join(f"{st.name}: {st.last_error or 'down'}" for st in self.stats)
        return EngineUnavailable(f"all {len(self.stats)} engine replicas are down ({down})")

    def _choose(self, request: GenerateRequest, tried: set[int]) -> int:
        up = [i for i, st in enumerate(self.stats) if st.healthy and i not in tried]
        if not up:
            raise self._all_down()
        if self.policy == "round-robin":
            return up[next(self._rr) % len(up)]
        least = min(up, key=lambda i: (self.stats[i].in_flight, i))
        if self.policy == "least-loaded":
            return least
        key = (request.route_key or request.prompt_text()[: self.affinity_chars]).encode()
        preferred = max(up, key=lambda i: hashlib.blake2b(key + self.stats[i].name.encode(), digest_size=8).digest())
        if self.stats[preferred].in_flight >= self.capacity and least != preferred:
            self.stats[least].spilled_here += 1
            return least
        return preferred

    def _down(self, i: int, error: Exception) -> None:
        st = self.stats[i]
        st.failures += 1
        st.healthy, st.down_since, st.last_error = False, time.monotonic(), str(error)[:200]

    def _record(self, i: int, completions: list[Completion], seconds: float) -> None:
        st = self.stats[i]
        st.requests += 1
        st.busy_seconds += seconds
        st.recent.append(seconds)
        self._check_pace(i)
        for c in completions:
            st.completion_tokens += c.completion_tokens
            st.prompt_tokens += c.prompt_tokens
            st.cached_prompt_tokens += c.cached_prompt_tokens

    # the Engine protocol
    @contextlib.contextmanager
    def _on(self, i: int):
        self.stats[i].in_flight += 1
        try:
            yield time.monotonic()
        finally:
            self.stats[i].in_flight -= 1

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        await self._readmit()
        tried: set[int] = set()
        while True:
            i = self._choose(request, tried)
            with self._on(i) as t0:
                try:
                    completions = await self._bounded(self.replicas[i].generate(request), i, t0)
                except TimeoutError as e:  # hung or far too slow: aborted there, retried elsewhere
                    self._hung(i, e)
                    tried.add(i)
                    continue
                except EngineUnavailable as e:
                    self._down(i, e)
                    tried.add(i)
                    continue  # the same call on another replica; nothing was charged for the failed attempt
            self._record(i, completions, time.monotonic() - t0)
            return completions

    async def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        """Failover before the first chunk; a replica that fails mid-stream fails this call (its partial text cannot
        be continued elsewhere as the same sample)."""
        await self._readmit()
        tried: set[int] = set()
        while True:
            i = self._choose(request, tried)
            started = False
            with self._on(i) as t0:
                try:
                    async with contextlib.aclosing(self.replicas[i].stream(request)) as chunks:
                        while True:
                            try:  # the deadline holds until the first chunk: a started sample stays where it is
                                chunk = await (anext(chunks) if started else self._bounded(anext(chunks), i, t0))
                            except StopAsyncIteration:
                                return
                            started = True
                            if chunk.completion is not None:
                                self._record(i, [chunk.completion], time.monotonic() - t0)
                            yield chunk
                except TimeoutError as e:
                    self._hung(i, e)
                    tried.add(i)
                except EngineUnavailable as e:
                    self._down(i, e)
                    if started:
                        raise
                    tried.add(i)

    def describe(self) -> dict:
        inner = [r.describe() if hasattr(r, "describe") else {} for r in self.replicas]
        replicas = []
        for i, st in enumerate(self.stats):
            row = {k: v for k, v in asdict(st).items() if k != "recent"}
            replicas.append({**row, **inner[i]})
        return {"pool": {"policy": self.policy, "capacity": self.capacity, "slow_factor": self.slow_factor,
                         "deadline_s": self.deadline_s, "replicas": replicas}}

    async def aclose(self) -> None:
        for r in self.replicas:
            await r.aclose()
