"""Anthropic's Messages API on the gateway: a request turned into the OpenAI chat body the server already reads (the
same checks, strategies and tasks), and an Answer written back as a message, whole or as its stream of events."""
from __future__ import annotations

import json
from typing import Any, Iterator

from tts.kernel.errors import ConfigError
from tts.app.wire import text_of
from tts.kernel.types import Answer, Usage


def _blocks(content: Any, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise ConfigError(f"{where}.content must be a string or a list of content blocks")
    return content


def to_openai(body: Any) -> dict:
    """The OpenAI chat-completions body of an Anthropic Messages request."""
    if not isinstance(body, dict):
        raise ConfigError(f"the request body must be a JSON object, got {type(body).__name__}")
    if not isinstance(body.get("max_tokens"), int) or isinstance(body.get("max_tokens"), bool):
        raise ConfigError("'max_tokens' is required and must be a whole number")
    out: list[dict] = []
    system = body.get("system")
    if system is not None:
        out.append({"role": "system", "content": text_of(system, "system")})
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("'messages' must be a non-empty list")
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise ConfigError(f"{where}.role must be user or assistant")
        blocks = _blocks(m.get("content"), where)
        texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
        if m["role"] == "assistant":
            calls = [{"id": b.get("id"), "type": "function",
                      "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
                     for b in blocks if b.get("type") == "tool_use"]
            out.append({"role": "assistant", "content": "\n".join(texts), **({"tool_calls": calls} if calls else {})})
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append({"role": "tool", "tool_call_id": b.get("tool_use_id"),
                            "content": ("error: " if b.get("is_error") else "")
                            + text_of(b.get("content"), f"{where}.tool_result")})
        unknown = {b.get("type") for b in blocks} - {"text", "tool_result"}
        if unknown:
            raise ConfigError(f"{where}: content blocks of type {', '.join(map(str, sorted(unknown)))} are not "
                              f"supported")
        if texts:
            out.append({"role": "user", "content": "\n".join(texts)})
    chat = {"model": body.get("model", ""), "messages": out, "max_tokens": body["max_tokens"],
            "temperature": body.get("temperature"), "stream": bool(body.get("stream")),
            "strategy": body.get("strategy")}
    if body.get("tools") is not None:
        if not isinstance(body["tools"], list):
            raise ConfigError("'tools' must be a list of {'name', 'input_schema'}")
        chat["tools"] = [{"type": "function", "function": {
            "name": t.get("name") if isinstance(t, dict) else None, "description": (t or {}).get("description", ""),
            "parameters": (t or {}).get("input_schema", {"type": "object"})}} for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(kind) or (
            {"type": "function", "function": {"name": choice.get("name")}} if kind == "tool" else "invalid")
    return chat


def content(answer: Answer, text: str, calls: list[dict] | None) -> tuple[list[dict], str]:
    """(content blocks, stop_reason) of the answer."""
    if calls:
        blocks = [{"type": "text", "text": text}] if text.strip() else []
        blocks += [{"type": "tool_use", "id": c["id"], "name": c["function"]["name"],
                    "input": json.loads(c["function"]["arguments"] or "{}")} for c in calls]
        return blocks, "tool_use"
    return [{"type": "text", "text": text}], "end_turn"


def message(rid: str, model: str, blocks: list[dict], stop: str, usage: Usage, extra: dict) -> dict:
    return {"id": rid, "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                      "cache_read_input_tokens": usage.cached_prompt_tokens}, "tts": extra}


def events(whole: dict) -> Iterator[str]:
    """The message as Anthropic's stream of server-sent events (the whole answer is chosen before it is sent)."""
    def event(kind: str, data: dict) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    head = {**whole, "content": [], "stop_reason": None,
            "usage": {**whole["usage"], "output_tokens": 0}}
    yield event("message_start", {"message": head})
    for i, block in enumerate(whole["content"]):
        if block["type"] == "text":
            yield event("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})
            yield event("content_block_delta", {"index": i, "delta": {"type": "text_delta", "text": block["text"]}})
        else:
            yield event("content_block_start", {"index": i, "content_block": {**block, "input": {}}})
            yield event("content_block_delta", {"index": i, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        yield event("content_block_stop", {"index": i})
    yield event("message_delta", {"delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
                                  "usage": {"output_tokens": whole["usage"]["output_tokens"]}})
    yield event("message_stop", {})


def error(message_text: str, kind: str = "invalid_request_error") -> dict:
    return {"type": "error", "error": {"type": kind, "message": message_text}}
