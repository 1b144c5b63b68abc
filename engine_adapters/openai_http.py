"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, OpenAI) through openai.AsyncOpenAI.

Rate limits through asyncio-throttle; retries with exponential backoff and jitter (tenacity) on 429, 5xx, timeouts
and connection errors; `n > 1` sent as one request where the server honours it, and fanned out into concurrent
n=1 requests where it does not (llama.cpp's server silently returns one choice). Cancelling the awaiting task
closes the HTTP request, which vLLM's server turns into an abort.
"""
from __future__ import annotations

import contextlib
import os
import time

import openai
from asyncio_throttle import Throttler
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from tts.engine_adapters.tool_text import parse_calls, tool_names
from tts.kernel.errors import EngineUnavailable
from tts.kernel.budget import Price
from tts.kernel.engine import Capabilities, EngineBase, gather_owned
from tts.kernel.confidence import token_confidence
from tts.kernel.types import Chunk, Completion, GenerateRequest, TokenLogprob, ToolCall

RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError, openai.APITimeoutError)


class OpenAIEngine(EngineBase):
    name = "openai"
    capabilities = Capabilities(stream=True, logprobs=True)

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, rate_limit: float | None = None,
                 max_retries: int = 4, timeout_s: float = 300.0, connect_timeout_s: float = 10.0, backoff_s: float = 0.5,
                 price: Price | None = None, extra_body: dict | None = None) -> None:
        self.price = price
        self.extra_body = dict(extra_body or {})  # request extras the server understands (top_k, min_p, ...)
        self.timeout_s = timeout_s
        self.base_url = base_url
        self.model = model
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY", "EMPTY"),
                                         max_retries=0,
                                         timeout=openai.Timeout(timeout_s, connect=connect_timeout_s))
        self._throttler = Throttler(rate_limit=int(rate_limit), period=1.0) if rate_limit else None
        self._attempts = max_retries + 1
        self._backoff = backoff_s
        self.n_supported: bool | None = None  # learnt from the first request with n > 1
        self.requests_sent = 0

    def _extra_body(self, request: GenerateRequest) -> dict | None:
        body = dict(self.extra_body)
        if request.continue_final:  # vLLM's and SGLang's servers take these chat-template switches
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body or None

    def describe(self) -> dict:
        # the server's own defaults (its generation config) are not visible from here
        return {"model": self.model, "base_url": self.base_url, "extra_body": self.extra_body}

    async def check(self) -> None:
        """Fail fast with a clear error when the server is down or does not serve the model."""
        try:
            models = await self.client.with_options(timeout=min(self.timeout_s, 15.0)).models.list()
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            raise EngineUnavailable(f"engine at {self.base_url} is not reachable ({type(e).__name__})") from None
        except openai.APIStatusError as e:
            raise EngineUnavailable(f"engine at {self.base_url} answered {e.status_code} to /models") from None
        served = [m.id for m in models.data]
        if served and self.model not in served:
            raise EngineUnavailable(f"engine at {self.base_url} does not serve model '{self.model}' "
                                    f"(it serves: {', '.join(served)})")

    def _retrying(self) -> AsyncRetrying:
        """Retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors."""
        return AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE), stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=self._backoff, max=20, jitter=self._backoff), reraise=True)

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        if request.n > 1 and self.n_supported is False:
            return await self._fan_out(request, 0)
        completions = await self._request(request)
        if request.n > 1:
            self.n_supported = len(completions) >= request.n
            if not self.n_supported:
                completions += await self._fan_out(request, len(completions))
        return completions

    async def _fan_out(self, request: GenerateRequest, have: int) -> list[Completion]:
        def single(i: int) -> GenerateRequest:
            seed = None if request.seed is None else request.seed + i
            return request.model_copy(update={"n": 1, "seed": seed})

        results = await gather_owned(self._request(single(i)) for i in range(have, request.n))
        return [c for r in results for c in r]

    async def _request(self, request: GenerateRequest) -> list[Completion]:
        try:
            async for attempt in self._retrying():
                with attempt:
                    async with self._throttler or contextlib.nullcontext():
                        self.requests_sent += 1
                        return await self._send(request)
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            raise EngineUnavailable(f"engine at {self.base_url} is not reachable after {self._attempts} attempts "
                                    f"({type(e).__name__})") from None
        except openai.NotFoundError as e:
            raise EngineUnavailable(f"engine at {self.base_url}: {e.message}") from None
        raise AssertionError("unreachable")

    async def _send(self, request: GenerateRequest) -> list[Completion]:
        t0 = time.monotonic()
        common = dict(model=self.model, n=request.n, max_tokens=request.max_tokens, temperature=request.temperature,
                      top_p=request.top_p, stop=list(request.stop) or None, seed=request.seed)
        if request.messages is not None:
            extra = {} if request.logprobs is None else {"logprobs": True, "top_logprobs": request.logprobs}
            extra["extra_body"] = self._extra_body(request)
            if request.tools:
                extra["tools"] = list(request.tools)
            if request.response_format:
                extra["response_format"] = request.response_format
            resp = await self.client.chat.completions.create(
                messages=[m.wire() for m in request.messages], **common, **extra)
            texts = [(c.message.content or "", c.finish_reason, _chat_logprobs(c.logprobs)) for c in resp.choices]
            calls = [_tool_calls(c.message) for c in resp.choices]
            if request.tools:  # calls written as bare JSON (Qwen2.5-Coder's) that the server's tool parser missed
                names = tool_names(request.tools)
                for i, (text, _, lps) in enumerate(texts):
                    content, found = (text, None) if calls[i] is not None else parse_calls(text, i, names)
                    if found:
                        texts[i], calls[i] = (content, "tool_calls", lps), found
        else:
            extra = {} if request.logprobs is None else {"logprobs": max(request.logprobs, 1)}
            resp = await self.client.completions.create(prompt=request.prompt, **common, **extra,
                                                        extra_body=self.extra_body or None)
            texts = [(c.text, c.finish_reason, _text_logprobs(c.logprobs)) for c in resp.choices]
            calls = [None] * len(texts)
        latency = time.monotonic() - t0
        usage = resp.usage
        k = max(1, len(texts))
        total_completion = usage.completion_tokens if usage else 0
        prompt_tokens = usage.prompt_tokens if usage else 0
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
        out = []
        for i, (text, finish, lps) in enumerate(texts):
            # Servers report usage per response; split completion tokens exactly where logprobs count them.
            tokens = len(lps) if lps else total_completion // k + (1 if i < total_completion % k else 0)
            # The prompt is charged once per response: on its first choice.
            out.append(Completion(text=text, completion_tokens=tokens, prompt_tokens=prompt_tokens if i == 0 else 0,
                                  cached_prompt_tokens=cached if i == 0 else 0, finish_reason=finish, logprobs=lps,
                                  latency_s=latency, tool_calls=calls[i]))
        return out

    async def stream(self, request: GenerateRequest):
        """One completion streamed (stream=True); closing this iterator closes the HTTP response, which the server
        turns into an abort. Retries happen only before the first chunk arrives."""
        if request.tools or request.response_format:  # an agent's answer (calls, JSON) is read whole
            [done] = await self.generate(request)
            yield Chunk(text=done.text, completion_tokens=done.completion_tokens, completion=done)
            return
        t0 = time.monotonic()
        common = dict(model=self.model, max_tokens=request.max_tokens, temperature=request.temperature,
                      top_p=request.top_p, stop=list(request.stop) or None, seed=request.seed, stream=True,
                      stream_options={"include_usage": True})
        k = request.logprobs
        async for attempt in self._retrying():
            with attempt:
                if request.messages is not None:
                    logprobs = {} if k is None else {"logprobs": True, "top_logprobs": k}
                    response = await self.client.chat.completions.create(
                        messages=[m.wire() for m in request.messages], **common, **logprobs,
                        extra_body=self._extra_body(request))
                else:
                    logprobs = {} if k is None else {"logprobs": max(k, 1)}
                    response = await self.client.completions.create(prompt=request.prompt, **common, **logprobs,
                                                                    extra_body=self.extra_body or None)
        text, tokens, finish, usage = "", 0, None, None
        async with contextlib.aclosing(response) as events:
            async for event in events:
                if event.usage:
                    usage = event.usage
                for choice in event.choices:
                    delta = choice.delta.content if hasattr(choice, "delta") else choice.text
                    finish = choice.finish_reason or finish
                    confidence = _stream_confidence(choice.logprobs, k) if k else ()
                    if delta or confidence:
                        text += delta or ""
                        # one content event is about one token (logprobs count them exactly); usage corrects it
                        tokens += len(confidence) or 1
                        yield Chunk(text=delta or "", completion_tokens=tokens, confidence=confidence)
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        final = Completion(text=text, completion_tokens=usage.completion_tokens if usage else tokens,
                           prompt_tokens=usage.prompt_tokens if usage else 0,
                           cached_prompt_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
                           finish_reason=finish, latency_s=time.monotonic() - t0)
        yield Chunk(text="", completion_tokens=final.completion_tokens, completion=final)

    async def aclose(self) -> None:
        await self.client.close()


def _tool_calls(message) -> tuple[ToolCall, ...] | None:
    calls = getattr(message, "tool_calls", None)
    if not calls:
        return None
    return tuple(ToolCall(id=c.id or f"call_{i}", name=c.function.name, arguments=c.function.arguments or "{}")
                 for i, c in enumerate(calls) if getattr(c, "function", None) is not None) or None


def _stream_confidence(lp, k: int) -> tuple[float, ...]:
    """The confidences of a streamed event's tokens (chat: logprobs.content; completions: top_logprobs dicts)."""
    if lp is None:
        return ()
    content = getattr(lp, "content", None)
    if content is not None:
        return tuple(token_confidence([(a.token, a.logprob) for a in (t.top_logprobs or ())], k) for t in content)
    return tuple(token_confidence(list((top or {}).items()), k) for top in (getattr(lp, "top_logprobs", None) or ()))


def _chat_logprobs(lp) -> tuple[TokenLogprob, ...] | None:
    if lp is None or not getattr(lp, "content", None):
        return None
    return tuple(TokenLogprob(token=t.token, logprob=t.logprob,
                              top=tuple((a.token, a.logprob) for a in (t.top_logprobs or ())))
                 for t in lp.content)


def _text_logprobs(lp) -> tuple[TokenLogprob, ...] | None:
    if lp is None or not getattr(lp, "tokens", None):
        return None
    tops = lp.top_logprobs or [None] * len(lp.tokens)
    return tuple(TokenLogprob(token=t, logprob=l if l is not None else 0.0,
                              top=tuple((top or {}).items()))
                 for t, l, top in zip(lp.tokens, lp.token_logprobs, tops))
