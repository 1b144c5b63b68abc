"""SimulatedEngine: a deterministic, seeded simulator of an LLM engine. It is not a model.

It exists for tests of the orchestration and for overhead benchmarks. Given a prompt that contains a problem it
was told the answer to, it writes a reasoning-like text ending in "The answer is X", where X is right with a set
probability. Each completion takes `prefill_s + tokens * latency_per_token_s` of wall time inside one of `slots`
concurrent slots; cancelling the awaiting task frees the slot at once and counts as an abort.
Everything (text, length, correctness, logprobs) is a pure function of (seed, prompt, request seed, choice index).
An answer probe on the prefix of one of its traces answers with the answer that trace is heading for.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import random
import re
import time
from typing import Callable

from pydantic import Field

from tts.kernel.budget import Price
from tts.kernel.confidence import first_stop
from tts.kernel.engine import Capabilities, EngineBase, gather_owned
from tts.kernel.types import Chunk, Completion, Frozen, GenerateRequest, Problem, TokenLogprob
from tts.engine_adapters import sim_agent, sim_judge
from tts.kit.watched import PROBE_LEAD

_FILLER = (
    "First we read the problem carefully.", "We note the quantities given.", "Next we combine them step by step.",
    "We multiply where the problem asks for totals.", "Then we subtract what was used.",
    "We check the units of the result.", "Re-reading the question confirms what is asked.",
)


class SimConfig(Frozen):
    accuracy: float = Field(0.7, ge=0.0, le=1.0, description="probability that a completion's answer is right")
    latency_per_token_s: float = Field(0.001, ge=0.0)
    prefill_s: float = Field(0.0, ge=0.0)
    slots: int = Field(64, ge=1, description="completions that can run at once")
    chunk_tokens: int = Field(4, ge=1, description="tokens per streamed chunk")
    min_tokens: int = Field(20, ge=1)
    max_tokens: int = Field(60, ge=1)
    wrong_answers: int = Field(3, ge=1, description="how many distinct wrong answers a problem can attract")
    # token confidences are drawn from [0.5, 2.5]; a wrong trace's are lower by this much (DeepConf's premise)
    confidence_gap: float = Field(0.0, ge=0.0)
    # end low-confidence traces inside the engine (as vLLM's confidence processor does), else only stream them
    confidence_stop: bool = False
    # a probe on a prefix shorter than this share of its trace answers an intermediate quantity (the same for every
    # trace of a problem, as real traces of a multi-step problem pass through the same steps); 0: the final answer
    probe_intermediate_until: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = 0
    judge_accuracy: float = Field(0.8, ge=0.0, le=1.0, description="how often the simulator's verdicts are right")


_INTERMEDIATE = 99991  # what an early probe answers: a number no problem's answer is


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class SimulatedEngine(EngineBase):
    name = "sim"
    capabilities = Capabilities(stream=True, logprobs=True)

    def __init__(self, config: SimConfig | None = None, oracle: Callable[[str], str | None] | None = None,
                 responder: Callable[[GenerateRequest], str | None] | None = None, *,
                 price: Price | None = None) -> None:
        self.config = config or SimConfig()
        self.price = price
        self._oracle = oracle or (lambda prompt: None)
        # A scripted responder (e.g. a task's gold planner) replaces the reasoning text where it answers.
        self._responder = responder or (lambda request: None)
        self._slots = asyncio.Semaphore(self.config.slots)
        if self.config.confidence_stop:
            self.capabilities = self.capabilities.model_copy(update={"confidence_stop": True})
        self._plans: dict[tuple, tuple[str, int, float, str]] = {}
        self._texts: dict[tuple, list[str]] = {}  # a prompt's messages -> the texts planned for it (probes look up)
        self._confidences: dict[tuple[str, str], list[float]] = {}
        self.started = 0
        self.finished = 0
        self.aborted = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @classmethod
    def for_problems(cls, problems: list[Problem], config: SimConfig | None = None, *,
                     responder: Callable[[GenerateRequest], str | None] | None = None,
                     price: Price | None = None) -> "SimulatedEngine":
        """A simulator that knows the gold answer of each problem whose question appears in a prompt."""
        # the gold as the data file writes it ("3:30 p.m.", "$1,234"), not as the task read it: a dry run then
        # exercises the task's reading of answers as a real model's would
        known = [(p.question, str(p.meta.get("gold_as_written", p.gold))) for p in problems if p.gold is not None]

        @functools.lru_cache(maxsize=100_000)
        def oracle(prompt: str) -> str | None:
            for question, gold in known:
                if question in prompt:
                    return gold
            return None

        return cls(config, oracle, responder, price=price)

    def count_tokens(self, text: str) -> int:
        return len(text.split())  # the simulator's tokens are words, as its completions count them

    def plan(self, request: GenerateRequest, choice: int) -> tuple[str, int, float, str]:
        """The (text, tokens, seconds, finish reason) this simulator produces for one choice of a request.
        Pure, so memoized: the simulator's own cost should not show up as orchestration overhead."""
        key = (request.prompt_text(), request.temperature == 0.0, request.seed, choice, request.max_tokens)
        if key not in self._plans:
            self._plans[key] = self._plan(request, choice)
            self._texts.setdefault(request.messages, []).append(self._plans[key][0])
        return self._plans[key]

    def _probe(self, request: GenerateRequest) -> str | None:
        """An answer probe (tts/kit/watched.py) on a prefix of a trace this simulator wrote: the answer that trace
        is heading for, as a model that has settled would say it. None for any other request."""
        if not request.continue_final or not request.messages or PROBE_LEAD not in request.messages[-1].content:
            return None
        prefix = request.messages[-1].content.rsplit(PROBE_LEAD, 1)[0]
        for text in self._texts.get(request.messages[:-1], ()):  # the probed trace's own request's plans
            if prefix and text.startswith(prefix) and "The answer is " in text:
                if len(prefix) < self.config.probe_intermediate_until * len(text):
                    return f" {_INTERMEDIATE}."
                return " " + text.rsplit("The answer is ", 1)[1]
        return None

    def _plan(self, request: GenerateRequest, choice: int) -> tuple[str, int, float, str]:
        c = self.config
        scripted = self._responder(request)
        if scripted is None:
            scripted = self._probe(request)
        if scripted is not None:  # as an engine would: cut at a stop string (dropped) or at max_tokens
            finish = "stop"
            for stop in request.stop:
                if stop in scripted:
                    scripted = scripted[: scripted.index(stop)]
            words = scripted.split(" ")
            if len(words) > request.max_tokens:
                scripted, finish = " ".join(words[: request.max_tokens]), "length"
            tokens = max(1, len(scripted.split()))
            return scripted, tokens, c.prefill_s + tokens * c.latency_per_token_s, finish
        prompt = request.prompt_text()
        greedy = request.temperature == 0.0
        if "\n\n" in request.stop:  # one reasoning step (beam search asks for them one at a time)
            return self._step(request, prompt, _rng(c.seed, prompt, None if greedy else request.seed,
                                                    0 if greedy else choice, "step"))
        rng = _rng(c.seed, prompt, None if greedy else request.seed, 0 if greedy else choice)
        budget = min(request.max_tokens, rng.randint(c.min_tokens, c.max_tokens))
        gold = self._oracle(prompt)
        if gold is None:
            answer = str(rng.randint(1, 100))
        elif rng.random() < c.accuracy:
            answer = gold
        else:
            answer = _wrong(gold, _rng(c.seed, prompt, "wrong", rng.randrange(c.wrong_answers)))
        closing = f"The answer is {answer}."
        words: list[str] = []
        while len(words) + len(closing.split()) < budget:
            words.extend(rng.choice(_FILLER).split())
        words = words[: max(0, budget - len(closing.split()))]
        finish = "stop"
        if len(words) + len(closing.split()) > request.max_tokens:
            closing, finish = "", "length"
        text = " ".join(words + closing.split())
        tokens = max(1, len(text.split()))
        return text, tokens, c.prefill_s + tokens * c.latency_per_token_s, finish

    def _step(self, request: GenerateRequest, prompt: str, rng: random.Random) -> tuple[str, int, float, str]:
        """The next step of the trace the request continues: a filler sentence (a slip with probability 1 -
        accuracy), or, more likely the more steps it has, its closing line, wrong if any step slipped."""
        c = self.config
        so_far = request.messages[-1].content if request.continue_final and request.messages else ""
        steps = so_far.count("\n\n") + bool(so_far.strip())
        if rng.random() < min(1.0, steps / 3):
            gold = self._oracle(prompt)
            if gold is None:
                answer = str(rng.randint(1, 100))
            elif sim_judge.SLIP in so_far:
                answer = _wrong(gold, _rng(c.seed, prompt, "wrong", rng.randrange(c.wrong_answers)))
            else:
                answer = gold
            text = f"The answer is {answer}."
        else:
            text = rng.choice(_FILLER) + (sim_judge.SLIP if rng.random() >= c.accuracy else "")
        tokens = len(text.split())
        return text, tokens, c.prefill_s + tokens * c.latency_per_token_s, "stop"

    def _slot(self) -> "_Slot":
        """One of the simulator's slots, with its counters; a cancel while inside counts as an abort."""
        return _Slot(self)

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        if request.n == 1:  # no task group for a single completion: it is the common case and it adds up
            return [await self._one(request, 0)]
        return await gather_owned(self._one(request, i) for i in range(request.n))

    def confidences(self, request: GenerateRequest, text: str) -> list[float]:
        """Each word's confidence: a pure function of the text, lower by `confidence_gap` when its answer is wrong.
        Memoized like plans: the simulator's own cost should not show up as orchestration overhead."""
        prompt = request.prompt_text()
        key = (prompt, text)
        if key not in self._confidences:
            gold = self._oracle(prompt)
            gap = self.config.confidence_gap if gold is not None and not text.endswith(f" {gold}.") else 0.0
            rng = _rng(self.config.seed, text, "confidence")
            self._confidences[key] = [rng.uniform(0.5, 2.5) - gap for _ in text.split()]
        return self._confidences[key]

    def _cut(self, request: GenerateRequest, plan: tuple[str, int, float, str]) -> tuple[str, int, float, str]:
        """The plan as the engine's own confidence stop would end it."""
        text, tokens, seconds, finish = plan
        stop = request.confidence_stop
        if stop is None or not self.config.confidence_stop:
            return plan
        at = first_stop(self.confidences(request, text), stop)
        if at is None:
            return plan
        cut = " ".join(text.split()[:at])
        return cut, at, self.config.prefill_s + at * self.config.latency_per_token_s, "confidence"

    async def stream(self, request: GenerateRequest):
        """Streams `chunk_tokens` words at a time at the configured latency per token."""
        if request.tools or request.response_format:  # an agent's answer comes whole
            done = await self._one(request, 0)
            yield Chunk(text=done.text, completion_tokens=done.completion_tokens, completion=done)
            return
        text, tokens, seconds, finish = self.plan(request, 0)
        confs = self.confidences(request, text) if request.logprobs is not None else None
        words = re.findall(r"\s*\S+", text)  # keep the whitespace (plans are line-based)
        step = max(1, self.config.chunk_tokens)
        t0 = time.monotonic()
        async with self._slot():
            await asyncio.sleep(self.config.prefill_s)
            for i in range(0, len(words), step):
                part = words[i: i + step]
                await asyncio.sleep(len(part) * self.config.latency_per_token_s)
                done = i + step >= len(words)
                delta = "".join(part)
                confidence = tuple(confs[i: i + step]) if confs is not None else ()
                if done:
                    self.finished += 1
                    final = Completion(text=text, completion_tokens=tokens, finish_reason=finish,
                                       prompt_tokens=len(request.prompt_text().split()),
                                       latency_s=time.monotonic() - t0)
                    yield Chunk(text=delta, completion_tokens=tokens, completion=final, confidence=confidence)
                else:
                    yield Chunk(text=delta, completion_tokens=i + len(part), confidence=confidence)

    def _agent(self, request: GenerateRequest, choice: int) -> Completion:
        """An agent's request (tools or a JSON answer): see sim_agent."""
        c = self.config
        greedy = request.temperature == 0.0
        rng = _rng(c.seed, request.prompt_text(), None if greedy else request.seed, 0 if greedy else choice, "agent")
        calls = sim_agent.tool_calls(request, rng, c.accuracy) if request.tools else None
        if calls:
            text, finish = "", "tool_calls"
        elif request.response_format and request.response_format.get("type") != "text":
            text, finish = sim_agent.json_text(request, rng, c.accuracy), "stop"
        else:
            text, finish = sim_agent.after_tool(request), "stop"
        tokens = max(1, len(text.split()) + sum(len(x.arguments.split()) + 1 for x in calls or ()))
        return Completion(text=text, completion_tokens=tokens, finish_reason=finish, tool_calls=calls,
                          prompt_tokens=_words(request.prompt_text()) if choice == 0 else 0)

    async def _one(self, request: GenerateRequest, choice: int) -> Completion:
        if request.tools or (request.response_format and request.response_format.get("type") != "text"):
            done = self._agent(request, choice)
            async with self._slot():
                await asyncio.sleep(self.config.prefill_s + done.completion_tokens * self.config.latency_per_token_s)
            self.finished += 1
            return done
        # judge requests ask for a verdict token or two (USC: a short sentence)
        if request.max_tokens <= 32 and sim_judge.judges(prompt := request.prompt_text()):
            judged = sim_judge.verdict(prompt, self._oracle(prompt), self.config.judge_accuracy,
                                       _rng(self.config.seed, prompt, request.seed, choice, "judge"))
            if judged is not None:
                async with self._slot():
                    await asyncio.sleep(self.config.latency_per_token_s)
                self.finished += 1
                return Completion(text=judged[0], completion_tokens=1, prompt_tokens=_words(prompt),
                                  finish_reason="stop", logprobs=judged[1] if request.logprobs is not None else None)
        text, tokens, seconds, finish = self.plan(request, choice)
        full = text
        if request.confidence_stop is not None:
            text, tokens, seconds, finish = self._cut(request, (text, tokens, seconds, finish))
        t0 = time.monotonic()
        async with self._slot():
            await asyncio.sleep(seconds)
        self.finished += 1
        logprobs = None
        k = request.logprobs if request.confidence_stop is None else max(request.logprobs or 0, 1)
        if k is not None:
            rng = _rng(self.config.seed, text, "logprobs")
            words = text.split()
            if k == 0:
                logprobs = tuple(TokenLogprob(token=w, logprob=math.log(rng.uniform(0.3, 1.0))) for w in words)
            else:  # top-k alternatives that carry the word's confidence (-mean of them)
                confs = self.confidences(request, full)
                logprobs = tuple(TokenLogprob(token=w, logprob=-c, top=((w, -c),) * k) for w, c in zip(words, confs))
        return Completion(
            text=text, completion_tokens=tokens, prompt_tokens=_words(request.prompt_text()) if choice == 0 else 0,
            finish_reason=finish, logprobs=logprobs, latency_s=time.monotonic() - t0,
        )

    async def aclose(self) -> None:
        return None


class _Slot:
    """A class, not a generator-based context manager: one is entered per simulated call, and the generator version
    showed up in the overhead benchmark as "orchestrator" time that was really the simulator's."""
    __slots__ = ("engine",)

    def __init__(self, engine: SimulatedEngine) -> None:
        self.engine = engine

    async def __aenter__(self) -> None:
        e = self.engine
        await e._slots.acquire()
        e.started += 1
        e.in_flight += 1
        if e.in_flight > e.max_in_flight:
            e.max_in_flight = e.in_flight

    async def __aexit__(self, exc_type, exc, tb) -> None:
        e = self.engine
        e.in_flight -= 1
        if exc_type is not None and issubclass(exc_type, (asyncio.CancelledError, GeneratorExit)):
            e.aborted += 1
        e._slots.release()


@functools.lru_cache(maxsize=4096)
def _words(text: str) -> int:
    return len(text.split())


def _wrong(gold: str, rng: random.Random) -> str:
    """A wrong answer in the gold's own shape: its last digit run moved ("3:30 p.m." -> "3:32 p.m.", "$1,234" ->
    "$1,236"), so that the task's reading of the simulator's answers is exercised as a model's would be."""
    delta = rng.choice([-10, -3, -2, -1, 1, 2, 5, 12])
    runs = list(re.finditer(r"\d+", gold))
    if not runs:
        return gold + "'"
    last = runs[-1]
    n = int(last.group())
    new = n + delta if n + delta >= 0 else n + abs(delta)
    return gold[: last.start()] + str(new) + gold[last.end():]
