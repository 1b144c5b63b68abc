"""Typed, frozen values that cross the engine boundary and come out of a run."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Frozen(BaseModel):
    # no NaN or infinity in any config, request or result: `--sim-latency inf` once hung a run
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ToolCall(Frozen):
    """A function call a model asked for, in OpenAI's terms: `arguments` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str = "{}"

    def wire(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


class Message(Frozen):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] | None = None  # an assistant turn that called tools
    tool_call_id: str | None = None  # a tool turn: the call whose result it carries

    def wire(self) -> dict:
        """The message as OpenAI's chat API and Hugging Face chat templates take it (no null fields)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.wire() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class ConfidenceStop(Frozen):
    """DeepConf online: stop a trace once the mean token confidence of its last `window` tokens is below
    `threshold` (see tts/kernel/confidence.py)."""

    threshold: float
    # DeepConf uses 2,048 on traces of tens of thousands of tokens; word-problem traces are 100-400 tokens long
    window: int = Field(32, ge=1)
    top_k: int = Field(10, ge=1, le=20)  # a token's confidence is -mean of its top-k logprobs


class GenerateRequest(Frozen):
    """One call to an engine: a raw prompt or chat messages, and how to sample `n` completions of it."""

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    n: int = Field(1, ge=1)
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Number of top alternatives per token to return; 0 = only the sampled token's logprob, None = no logprobs.
    logprobs: int | None = None
    # The last message is an assistant message to be continued, not answered (APR resumes a parent this way).
    continue_final: bool = False
    # End the trace when its confidence falls (in the engine where it can, else by the context while streaming)
    confidence_stop: ConfidenceStop | None = None
    # Calls with one key go to one replica of a routing engine (its prefix cache holds what they share); the context
    # sets it to the problem being solved
    route_key: str | None = None
    # an agent's request: OpenAI function schemas the model may call, and the shape its answer must take
    # ({"type": "json_schema", "json_schema": {"schema": ...}} or {"type": "json_object"})
    tools: tuple[dict, ...] | None = None
    response_format: dict | None = None

    @model_validator(mode="after")
    def _one_input(self) -> "GenerateRequest":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a GenerateRequest needs exactly one of prompt or messages")
        return self

    def prompt_text(self) -> str:
        """The request's input flattened to text (for simulators, hashing and logs, not for chat templating)."""
        return self.prompt if self.prompt is not None else _flatten(self.messages or ())


@lru_cache(maxsize=4096)  # the branches of a problem share one message tuple, flattened once
def _flatten(messages: tuple[Message, ...]) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in messages)


class TokenLogprob(Frozen):
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class Completion(Frozen):
    """One sampled continuation.

    Prompt and cached-prompt tokens are what the engine reported for the request that produced this completion,
    carried by the first completion of a request with n > 1 (zero on its siblings), so that sums are right.
    """

    text: str
    completion_tokens: int
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    latency_s: float = 0.0
    # reasoning models: the thinking part, apart from `text` (the answer part), and its tokens
    thinking: str | None = None
    thinking_tokens: int = 0
    # token confidences of a streamed trace (a context-side confidence stop collects them instead of logprobs)
    confidence: tuple[float, ...] | None = None
    tool_calls: tuple[ToolCall, ...] | None = None  # the calls the model asked for (finish_reason "tool_calls")


class Chunk(Frozen):
    """A piece of a streamed completion; the last chunk of a stream carries the whole Completion."""

    text: str
    completion_tokens: int  # generated so far
    completion: Completion | None = None
    # the new tokens' confidences (-mean of top-k logprobs), when the request asked for logprobs
    confidence: tuple[float, ...] = ()


class Usage(Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    calls: int = 0
    max_prompt_tokens: int = 0  # the largest context (prompt) of any single call
    usd: float = 0.0  # at the engine's prices; 0 for engines without one
    thinking_tokens: int = 0  # of completion_tokens, those spent thinking (reasoning models)
    # of the totals above, what verifiers and judges spent (reported apart from generation)
    verify_prompt_tokens: int = 0
    verify_completion_tokens: int = 0
    verify_calls: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            calls=self.calls + other.calls,
            max_prompt_tokens=max(self.max_prompt_tokens, other.max_prompt_tokens),
            thinking_tokens=self.thinking_tokens + other.thinking_tokens,
            usd=self.usd + other.usd,
            verify_prompt_tokens=self.verify_prompt_tokens + other.verify_prompt_tokens,
            verify_completion_tokens=self.verify_completion_tokens + other.verify_completion_tokens,
            verify_calls=self.verify_calls + other.verify_calls,
        )

    def __sub__(self, other: "Usage") -> "Usage":
        """Usage spent since `other` was taken (max_prompt_tokens is kept as the later value)."""
        return Usage(
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            completion_tokens=self.completion_tokens - other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens - other.cached_prompt_tokens,
            calls=self.calls - other.calls, max_prompt_tokens=self.max_prompt_tokens, usd=self.usd - other.usd,
            thinking_tokens=self.thinking_tokens - other.thinking_tokens,
            verify_prompt_tokens=self.verify_prompt_tokens - other.verify_prompt_tokens,
            verify_completion_tokens=self.verify_completion_tokens - other.verify_completion_tokens,
            verify_calls=self.verify_calls - other.verify_calls,
        )


class Problem(Frozen):
    id: str
    question: str
    gold: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    # an agent's chat request: its whole conversation (the question is then its last user turn), the tools it offers
    # and the answer shape it requires; None for a benchmark problem, which the task turns into messages
    messages: tuple[Message, ...] | None = None
    tools: tuple[dict, ...] | None = None
    response_format: dict | None = None


class TraceStats(Frozen):
    """Confidence statistics of one trace, from its token logprobs (see tts.voting)."""

    tokens: int
    mean_logprob: float | None = None  # needs logprobs (a stream cut by confidence has only confidences)
    mean_entropy: float | None = None  # needs top logprobs
    lowest_window_conf: float | None = None  # needs top logprobs


class Sample(Frozen):
    """A branch's completion as a strategy saw it, with the answer extracted from it."""

    index: int
    text: str
    answer: str | None
    completion_tokens: int
    # "inherited": pruned as redundant, and voting as the kept trace it was judged redundant with (see tts/prune.py)
    # "lowconf": ended by a confidence stop (DeepConf online); it casts no vote. "probed": stopped when the group's
    # probed answers agreed (strategies/probed.py); it votes with its last probed answer
    status: Literal["ok", "error", "cancelled", "pruned", "budget", "inherited", "lowconf", "probed"] = "ok"
    error: str | None = None
    stats: TraceStats | None = None
    thinking_tokens: int = 0
    tool_calls: tuple[ToolCall, ...] | None = None


class Answer(Frozen):
    """What a strategy returns for one problem."""

    answer: str | None
    votes: dict[str, int] = Field(default_factory=dict)
    samples: tuple[Sample, ...] = ()
    stopped_early: bool = False
    budget_exhausted: bool = False
    semantic_entropy: float | None = None
    note: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)  # strategy-specific figures (rounds, threads, plans)
    # the index of the sample whose response is the answer (its text, its tool calls); None when the answer is no
    # one sample's (tool calls merged argument by argument) or no sample has it
    chosen: int | None = None
