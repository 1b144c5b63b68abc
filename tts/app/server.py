"""`tts serve`: an OpenAI-compatible server whose models are strategies over an upstream engine.

The requested model name selects the strategy, from the strategy registry: `sc8:qwen` is self-consistency with 8
samples, `deepconf16:qwen`, `best-of-n8:qwen`, `greedy:qwen`, `pdr:qwen`, ... (every registered name and alias; the
part after the colon names the upstream model and is informational for in-process engines); a composition comes in
the request's `strategy` field (`extra_body={"strategy": "sc(n=8) | judge()"}` with the OpenAI SDK). Usage counts every branch's tokens. With `stream=True`, chunks carry the current consensus as
it forms (`tts.consensus`, an extra field OpenAI clients ignore), then the final answer as content. A client that
disconnects cancels its run, and so its branches and their engine requests.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from tts import strategies, tasks
from tts.app.runner import resolve_strategy, solve_one
from tts.kernel.reasoning import EFFORT_BUDGETS, ReasoningConfig
from tts.kernel.budget import BudgetConfig
from tts.kernel.errors import ConfigError
from tts.kernel.types import Answer, Problem, Usage

MAX_BODY_BYTES = 4 << 20
BODY_TIMEOUT_S = 30.0
ROLES = ("system", "user", "assistant")


def _message(m: Any, i: int) -> dict[str, str]:
    """An OpenAI chat message as {role, content}; content given as a list of parts keeps its text parts."""
    if not isinstance(m, dict):
        raise ConfigError(f"messages[{i}] must be an object with 'role' and 'content'")
    role, content = m.get("role"), m.get("content")
    if role == "developer":
        role = "system"
    if role not in ROLES:
        raise ConfigError(f"messages[{i}].role must be one of {', '.join(ROLES)}")
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(x, str) for x in texts):
            raise ConfigError(f"messages[{i}].content: only text parts are supported")
        content = "\n".join(texts)
    if not isinstance(content, str):
        raise ConfigError(f"messages[{i}].content must be a string or a list of text parts")
    return {"role": role, "content": content}


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


def parse_model(name: str) -> tuple[str, dict[str, Any], str]:
    """'sc8:qwen' -> ('self-consistency', {'n': 8}, 'qwen'); a number after the name sets the strategy's `n`."""
    head, _, upstream = name.partition(":")
    heads = served()
    m = re.fullmatch(r"([a-z-]+?)(\d*)", head)
    if not m or m.group(1) not in heads:
        raise ConfigError(f"unknown model '{name}': use <strategy>[n]:<model> with strategy in "
                          f"{', '.join(sorted(heads))}")
    strategy = heads[m.group(1)]
    if m.group(2) and "n" not in strategies.get(strategy).config.model_fields:
        raise ConfigError(f"model '{name}': strategy '{strategy}' takes no sample count (use {m.group(1)}:<model>)")
    options = {"n": int(m.group(2))} if m.group(2) else {}
    return strategy, options, upstream


def build_app(engine, task_name: str = "gsm8k", upstream: str = "model", max_tokens: int = 512,
              reasoning: ReasoningConfig | None = None):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    task = tasks.get(task_name)
    stats = {"requests": 0, "cancelled": 0, "in_flight": 0}

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)

    async def models(_: Request) -> JSONResponse:
        ids = [f"{head}:{upstream}" for head in sorted(served())]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "tts"}
                                                        for i in ids]})

    async def stats_route(_: Request) -> JSONResponse:
        return JSONResponse({**stats, "engine_aborted": getattr(engine, "aborted", None)})

    def prepare(body: Any):
        if not isinstance(body, dict):
            raise ConfigError(f"the request body must be a JSON object, got {type(body).__name__}")
        strategy, options, _ = parse_model(str(body.get("model", "")))
        if body.get("strategy") is not None:  # a composition, e.g. through the OpenAI SDK's extra_body
            if not isinstance(body["strategy"], str) or not body["strategy"].strip():
                raise ConfigError("'strategy' must be a strategy expression, e.g. \"sc(n=8) | judge()\"")
            strategy = body["strategy"]
        messages = [_message(m, i) for i, m in enumerate(body.get("messages") or [])] \
            if isinstance(body.get("messages"), list) else None
        if not messages:
            raise ConfigError("'messages' must be a non-empty list")
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
        question = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        problem = Problem(id=uuid.uuid4().hex[:8], question=str(question), meta={"messages": messages})
        return spec, config, problem, thinking(body.get("reasoning_effort"))

    def thinking(effort: Any) -> ReasoningConfig | None:
        """OpenAI's reasoning_effort as a thinking budget (low 512, medium 2048, high 8192 tokens)."""
        if effort is None:
            return reasoning
        if effort not in EFFORT_BUDGETS:
            raise ConfigError(f"'reasoning_effort' must be one of {', '.join(EFFORT_BUDGETS)}")
        return (reasoning or ReasoningConfig()).model_copy(update={"thinking_budget": EFFORT_BUDGETS[effort]})

    def response_text(answer: Answer) -> str:
        chosen = next((s for s in answer.samples if s.status == "ok" and s.answer == answer.answer), None)
        return chosen.text if chosen else (answer.samples[0].text if answer.samples else "")

    def usage(u: Usage) -> dict:
        out = {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
               "total_tokens": u.prompt_tokens + u.completion_tokens,
               "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens}}
        if u.verify_calls:  # of the totals, what judges and verifiers spent (an extra field clients ignore)
            out["tts_verification"] = {"calls": u.verify_calls, "prompt_tokens": u.verify_prompt_tokens,
                                       "completion_tokens": u.verify_completion_tokens}
        return out

    async def solve(spec, config, problem, think, listener=None):
        solved = await solve_one(engine, task, spec, config, problem, BudgetConfig(), listener=listener,
                                 reasoning=think)
        if solved.answer is None:
            raise RuntimeError(solved.row.get("error"))
        return solved

    async def run_until_disconnect(request: Request, coro):
        """Run the strategy; if the client goes away first, cancel it (and so every branch). The body has been
        read, so the next ASGI message is the disconnect: awaited, not polled."""
        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(coro)
            watcher = tg.create_task(watch())
            done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done:
                stats["cancelled"] += 1
                work.cancel()
            else:
                watcher.cancel()
        return None if work.cancelled() else work.result()

    async def chat(request: Request):
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return error(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):  # a client that trickles its body is cut off
                raw = await request.body()
        except TimeoutError:
            return error(408, f"request body not received within {BODY_TIMEOUT_S:.0f} s")
        if len(raw) > MAX_BODY_BYTES:
            return error(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw.decode("utf-8"))
            spec, config, problem, think = prepare(body)
        except UnicodeDecodeError:
            return error(400, "the request body is not UTF-8")
        except (ValueError, RecursionError) as e:
            return error(400, f"the request body is not valid JSON ({type(e).__name__})")
        except ConfigError as e:
            return error(400, str(e))
        rid, created, model = f"chatcmpl-{problem.id}", int(time.time()), body["model"]
        stats["requests"] += 1
        if not body.get("stream"):
            stats["in_flight"] += 1
            try:
                solved = await run_until_disconnect(request, solve(spec, config, problem, think))
            finally:
                stats["in_flight"] -= 1
            if solved is None:
                return error(499, "client disconnected")
            answer = solved.answer
            return JSONResponse({
                "id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": response_text(answer)}}],
                "usage": usage(solved.usage), "tts": {"answer": answer.answer, "votes": answer.votes,
                                            "stopped_early": answer.stopped_early, "note": answer.note}})

        async def events():
            queue: asyncio.Queue = asyncio.Queue()
            last: list = [None]

            answers: list[str] = []

            def consensus(event: dict) -> None:
                if event["kind"] == "partial_answer" and event.get("answer") is not None:
                    answers.append(event["answer"])
                    queue.put_nowait("tick")

            stats["in_flight"] += 1

            def chunk(delta: dict, finish=None, extra=None) -> str:
                payload = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
                return f"data: {json.dumps(payload)}\n\n"

            try:
                async with asyncio.TaskGroup() as tg:
                    work = tg.create_task(solve(spec, config, problem, think, listener=consensus))
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
                answer = solved.answer
                yield chunk({"content": response_text(answer)})
                yield chunk({}, finish="stop", extra={"usage": usage(solved.usage), "tts": {"answer": answer.answer,
                                                                                   "votes": answer.votes}})
                yield "data: [DONE]\n\n"
            except asyncio.CancelledError:
                stats["cancelled"] += 1  # the client went away: the task group has cancelled the run
                raise
            finally:
                stats["in_flight"] -= 1

        return StreamingResponse(events(), media_type="text/event-stream")

    async def http_error(_: Request, exc) -> JSONResponse:
        # 404 and 405 in the API's shape, as a client SDK expects them, not Starlette's plain text
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse({"error": {"message": exc.detail, "type": kind}}, status_code=exc.status_code)

    from starlette.exceptions import HTTPException

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/tts/stats", stats_route)], exception_handlers={HTTPException: http_error})


def _count(answers: list[str | None]) -> dict[str, int]:
    votes: dict[str, int] = {}
    for a in answers:
        if a is not None:
            votes[a] = votes.get(a, 0) + 1
    return votes
