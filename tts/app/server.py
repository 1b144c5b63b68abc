"""`tts serve`: a gateway, OpenAI chat completions and Anthropic messages, whose models are strategies over an
upstream engine.

The requested model name selects the strategy, from the strategy registry: `sc8:qwen` is self-consistency with 8
samples, `usc8:qwen`, `medoid8:qwen`, `deepconf16:qwen`, `best-of-n8:qwen`, `greedy:qwen`, ... (every registered
name and alias; the part after the colon names the upstream model and is informational for in-process engines); a
composition comes in the request's `strategy` field (`extra_body={"strategy": "sc(n=8) | judge()"}` with the OpenAI
SDK). Requests are read as the chat task reads them (tool calls and JSON voted in canonical form, whole texts voted
as written) unless the name asks for a benchmark task: `sc8@gsm8k:qwen`. Tools, tool results and response_format
pass through to every sample; the winning call comes back in OpenAI's `tool_calls` shape (Anthropic's `tool_use`).
Usage counts every branch's tokens, verification apart. With `stream=True`, OpenAI chunks carry the current consensus
as it forms (`tts.consensus`, an extra field clients ignore), then the answer. A client that disconnects cancels its
run, and so its branches and their engine requests. When every branch fails, the upstream's error is a 502.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from tts import strategies, tasks
from tts.app.session import Session, resolve_strategy
from tts.kernel.reasoning import EFFORT_BUDGETS, ReasoningConfig
from tts.kernel.budget import BudgetConfig
from tts.kernel.errors import ConfigError, EngineUnavailable
from tts.kernel.types import Answer, Problem, Usage
from tts.app import anthropic_wire, wire

MAX_BODY_BYTES = 4 << 20
BODY_TIMEOUT_S = 30.0


class UpstreamFailed(Exception):
    """Every branch failed: the upstream's own error, answered in the API's shape (502)."""

    status = 502
    prefix = "every branch failed upstream: "


class FormatUnmet(UpstreamFailed):
    """No sample met the request's response_format: a 422 naming how many were tried."""

    status = 422
    prefix = ""


def served() -> dict[str, str]:
    """Model-name heads the server answers to, from the strategy registry (names and aliases): every strategy that
    can answer a request on its own (not a stage that needs an earlier one's samples, nor one whose config must be
    given, such as a composition: that comes in the request's `strategy` field)."""
    heads = {}
    for name in strategies.names():
        spec = strategies.get(name)
        if spec.needs_upstream or any(f.is_required() for f in spec.config.model_fields.values()):
            continue
        for head in (spec.name, *spec.aliases):
            heads[head] = spec.name
    return heads


def parse_model(name: str) -> tuple[str, dict[str, Any], str | None, str]:
    """'sc8@gsm8k:qwen' -> ('self-consistency', {'n': 8}, 'gsm8k', 'qwen'): a number after the name sets the
    strategy's `n`; `@task` reads and votes answers as that task does (default: the server's task, chat)."""
    head, _, upstream = name.partition(":")
    heads = served()
    m = re.fullmatch(r"([a-z-]+?)(\d*)(?:@([a-z0-9_.-]+))?", head)
    if not m or m.group(1) not in heads:
        raise ConfigError(f"unknown model '{name}': use <strategy>[n][@task]:<model> with strategy in "
                          f"{', '.join(sorted(heads))}")
    if m.group(3) is not None:
        tasks.get(m.group(3))  # an unknown task is a ConfigError naming the known ones
    strategy = heads[m.group(1)]
    if m.group(2) and "n" not in strategies.get(strategy).config.model_fields:
        raise ConfigError(f"model '{name}': strategy '{strategy}' takes no sample count (use {m.group(1)}:<model>)")
    options = {"n": int(m.group(2))} if m.group(2) else {}
    return strategy, options, m.group(3), upstream


def build_app(engine, task_name: str = "chat", upstream: str = "model", max_tokens: int = 512,
              reasoning: ReasoningConfig | None = None, judge=None):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    # the server's session: its engine, the default task and the reasoning-model handling; each request replaces the
    # strategy, task and reasoning effort its model name and fields ask for
    base = Session(engine, tasks.get(task_name), *resolve_strategy("self-consistency"), BudgetConfig(), reasoning,
                   judge)
    stats = {"requests": 0, "cancelled": 0, "in_flight": 0}

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)

    async def models_route(_: Request) -> JSONResponse:
        ids = [f"{head}:{upstream}" for head in sorted(served())]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "tts"}
                                                        for i in ids]})

    async def stats_route(_: Request) -> JSONResponse:
        return JSONResponse({**stats, "engine_aborted": getattr(engine, "aborted", None)})

    def prepare(body: Any):
        if not isinstance(body, dict):
            raise ConfigError(f"the request body must be a JSON object, got {type(body).__name__}")
        strategy, options, task_asked, _ = parse_model(str(body.get("model", "")))
        if body.get("strategy") is not None:  # a composition, e.g. through the OpenAI SDK's extra_body
            if not isinstance(body["strategy"], str) or not body["strategy"].strip():
                raise ConfigError("'strategy' must be a strategy expression, e.g. \"sc(n=8) | judge()\"")
            strategy = body["strategy"]
        messages = wire.messages(body.get("messages"))
        tools = wire.tools(body.get("tools"), body.get("tool_choice"))
        shape = wire.response_format(body.get("response_format"))
        if body.get("n") not in (None, 1):
            raise ConfigError("'n' other than 1 is not supported: the strategy decides how many samples to draw "
                              "(choose it in the model name, e.g. sc16:model)")
        for key in ("max_tokens", "max_completion_tokens", "temperature"):
            if body.get(key) is not None and (isinstance(body[key], bool) or not isinstance(body[key], (int, float))):
                raise ConfigError(f"'{key}' must be a number")
        for key in ("max_tokens", "max_completion_tokens"):  # OpenAI's own ranges
            if body.get(key) is not None and (body[key] < 1 or body[key] != int(body[key])):
                raise ConfigError(f"'{key}' must be a whole number of at least 1")
        if body.get("temperature") is not None and not 0 <= body["temperature"] <= 2:
            raise ConfigError("'temperature' must be between 0 and 2")
        if body.get("logprobs") or body.get("top_logprobs") is not None:
            raise ConfigError("'logprobs' is not supported: the answer is chosen among several samples; the "
                              "response's samples carry no token logprobs")
        if body.get("max_tokens") or body.get("max_completion_tokens"):
            options["max_tokens"] = body.get("max_completion_tokens") or body["max_tokens"]
        options.setdefault("max_tokens", max_tokens)
        if body.get("temperature") is not None:
            options["temperature"] = body["temperature"]
        if body.get("strategy") is not None:
            options = {}  # a composition sets its own options inside its expression
        else:  # request options apply where the strategy has them (greedy has no temperature, APR no max_tokens)
            fields = strategies.get(strategy).config.model_fields
            options = {k: v for k, v in options.items() if k in fields}
        spec, config = resolve_strategy(strategy, options)
        question = next((m.content for m in reversed(messages) if m.role == "user"), "")
        problem = Problem(id=uuid.uuid4().hex[:8], question=question, messages=messages, tools=tools,
                          response_format=shape)
        return spec, config, problem, thinking(body.get("reasoning_effort")), tasks.get(task_asked or task_name)

    def thinking(effort: Any) -> ReasoningConfig | None:
        """OpenAI's reasoning_effort as a thinking budget (low 512, medium 2048, high 8192 tokens)."""
        if effort is None:
            return reasoning
        if effort not in EFFORT_BUDGETS:
            raise ConfigError(f"'reasoning_effort' must be one of {', '.join(EFFORT_BUDGETS)}")
        return (reasoning or ReasoningConfig()).model_copy(update={"thinking_budget": EFFORT_BUDGETS[effort]})

    def usage(u: Usage) -> dict:
        out = {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
               "total_tokens": u.prompt_tokens + u.completion_tokens,
               "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens}}
        if u.verify_calls:  # of the totals, what judges and verifiers spent (an extra field clients ignore)
            out["tts_verification"] = {"calls": u.verify_calls, "prompt_tokens": u.verify_prompt_tokens,
                                       "completion_tokens": u.verify_completion_tokens}
        return out

    async def solve(spec, config, problem, think, task, on_answer=None):
        session = base.replace(task=task, strategy=spec, config=config, reasoning=think)
        try:
            solved = await session.solve(problem, on_answer=on_answer)
        except EngineUnavailable as e:  # the upstream is down: its own words, as the API's error
            raise UpstreamFailed(str(e)) from None
        why = wire.failure(solved.answer, solved.row.get("error"))
        if why is not None:
            raise UpstreamFailed(why)
        unmet = wire.unmet_format(solved.answer, problem.response_format)
        if unmet is not None:
            raise FormatUnmet(unmet)
        return solved

    async def read(request: Request):
        """The request's JSON body, or the ConfigError-style reason it cannot be read (with its HTTP status)."""
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return None, (413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):  # a client that trickles its body is cut off
                raw = await request.body()
        except TimeoutError:
            return None, (408, f"request body not received within {BODY_TIMEOUT_S:.0f} s")
        if len(raw) > MAX_BODY_BYTES:
            return None, (413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(raw.decode("utf-8")), None
        except UnicodeDecodeError:
            return None, (400, "the request body is not UTF-8")
        except (ValueError, RecursionError) as e:
            return None, (400, f"the request body is not valid JSON ({type(e).__name__})")

    async def settled(coro):
        """The run's result, or its UpstreamFailed as a value: a task group would wrap it in an ExceptionGroup."""
        try:
            return await coro
        except UpstreamFailed as e:
            return e

    def unwrap(result):
        if isinstance(result, UpstreamFailed):
            raise result
        return result

    async def run(request: Request, prepared):
        """Solve a prepared request until done or the client leaves (None); in-flight counted."""
        stats["requests"] += 1
        stats["in_flight"] += 1
        try:
            return await run_until_disconnect(request, solve(*prepared))
        finally:
            stats["in_flight"] -= 1

    def assistant(answer: Answer) -> tuple[dict, str]:
        """OpenAI's assistant message for the answer, and its finish reason."""
        calls = wire.chosen_calls(answer)
        if calls:
            return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
        return {"role": "assistant", "content": wire.response_text(answer)}, "stop"

    def tts_extra(answer: Answer) -> dict:
        return {"answer": answer.answer, "votes": answer.votes, "chosen": answer.chosen,
                "stopped_early": answer.stopped_early, "note": answer.note}

    async def run_until_disconnect(request: Request, coro):
        """Run the strategy; if the client goes away first, cancel it (and so every branch). The body has been
        read, so the next ASGI message is the disconnect: awaited, not polled."""
        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(settled(coro))
            watcher = tg.create_task(watch())
            done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done:
                stats["cancelled"] += 1
                work.cancel()
            else:
                watcher.cancel()
        return None if work.cancelled() else unwrap(work.result())

    async def chat(request: Request):
        body, bad = await read(request)
        if bad is None:
            try:
                prepared = prepare(body)
            except ConfigError as e:
                bad = (400, str(e))
        if bad is not None:
            return error(*bad)
        spec, config, problem, think, task = prepared
        rid, created, model = f"chatcmpl-{problem.id}", int(time.time()), body["model"]
        if not body.get("stream"):
            try:
                solved = await run(request, prepared)
            except UpstreamFailed as e:
                return error(e.status, f"{e.prefix}{e}", "upstream_error")
            if solved is None:
                return error(499, "client disconnected")
            answer = solved.answer
            message, finish = assistant(answer)
            return JSONResponse({
                "id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                "usage": usage(solved.usage), "tts": tts_extra(answer)})
        stats["requests"] += 1

        async def events():
            queue: asyncio.Queue = asyncio.Queue()
            last: list = [None]

            answers: list[str] = []

            def consensus(answer: str | None) -> None:
                if answer is not None:
                    answers.append(answer)
                    queue.put_nowait("tick")

            stats["in_flight"] += 1

            def chunk(delta: dict, finish=None, extra=None) -> str:
                payload = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
                return f"data: {json.dumps(payload)}\n\n"

            try:
                async with asyncio.TaskGroup() as tg:
                    work = tg.create_task(settled(solve(spec, config, problem, think, task, on_answer=consensus)))
                    work.add_done_callback(lambda _t: queue.put_nowait("done"))
                    yield chunk({"role": "assistant", "content": ""})
                    while True:
                        item = await queue.get()
                        if item == "done":
                            break
                        votes = _count(task.canonicalize(list(answers)))
                        if votes and votes != last[0]:
                            last[0] = votes
                            yield chunk({}, extra={"tts": {"consensus": max(votes, key=votes.get), "votes": votes}})
                    solved = work.result()
                if isinstance(solved, UpstreamFailed):
                    failed = {"error": {"message": f"{solved.prefix}{solved}", "type": "upstream_error"}}
                    yield f"data: {json.dumps(failed)}\n\n"
                    return
                answer = solved.answer
                message, finish = assistant(answer)
                if message.get("tool_calls"):
                    yield chunk({"tool_calls": [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]})
                else:
                    yield chunk({"content": message["content"]})
                yield chunk({}, finish=finish, extra={"usage": usage(solved.usage), "tts": tts_extra(answer)})
                yield "data: [DONE]\n\n"
            except asyncio.CancelledError:
                stats["cancelled"] += 1  # the client went away: the task group has cancelled the run
                raise
            finally:
                stats["in_flight"] -= 1

        return StreamingResponse(events(), media_type="text/event-stream")

    async def messages(request: Request):
        """Anthropic's Messages API over the same strategies (tool use as tool_use blocks; streamed as events)."""
        body, bad = await read(request)
        if bad is None:
            try:
                prepared = prepare(anthropic_wire.to_openai(body))
            except ConfigError as e:
                bad = (400, str(e))
        if bad is not None:
            return JSONResponse(anthropic_wire.error(bad[1]), status_code=bad[0])
        try:
            solved = await run(request, prepared)
        except UpstreamFailed as e:
            return JSONResponse(anthropic_wire.error(f"{e.prefix}{e}", "api_error"), e.status)
        if solved is None:
            return JSONResponse(anthropic_wire.error("client disconnected"), status_code=499)
        answer = solved.answer
        blocks, stop = anthropic_wire.content(answer, wire.response_text(answer), wire.chosen_calls(answer))
        whole = anthropic_wire.message(f"msg_{prepared[2].id}", body["model"], blocks, stop, solved.usage,
                                       tts_extra(answer))
        if body.get("stream"):
            return StreamingResponse(anthropic_wire.events(whole), media_type="text/event-stream")
        return JSONResponse(whole)

    async def http_error(_: Request, exc) -> JSONResponse:
        # 404 and 405 in the API's shape, as a client SDK expects them, not Starlette's plain text
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse({"error": {"message": exc.detail, "type": kind}}, status_code=exc.status_code)

    from starlette.exceptions import HTTPException

    return Starlette(routes=[Route("/v1/models", models_route), Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/messages", messages, methods=["POST"]),
                             Route("/tts/stats", stats_route)], exception_handlers={HTTPException: http_error})


def _count(answers: list[str | None]) -> dict[str, int]:
    votes: dict[str, int] = {}
    for a in answers:
        if a is not None:
            votes[a] = votes.get(a, 0) + 1
    return votes
