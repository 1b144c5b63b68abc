"""The gateway's wire formats: OpenAI chat completions and Anthropic messages, read into the kernel's values
(messages, tools, response format) and written back from an Answer. Every check raises ConfigError with one line
that names the field, so the server answers a 400 in the API's shape before any engine call."""
from __future__ import annotations

import json
import uuid
from typing import Any

from tts.kernel.errors import ConfigError
from tts.kernel.types import Answer, Message, ToolCall
from tts.kit.structured import TOOL_KEY, calls_of, check_schema

ROLES = ("system", "user", "assistant", "tool")
MAX_MESSAGES = 2048
MAX_TOOLS = 128


def text_of(content: Any, where: str) -> str:
    """Text given as a string or a list of text parts (OpenAI's, and Anthropic's text blocks, have one shape);
    any other part is a ConfigError naming `where`."""
    if content is None:
        return ""
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(x, str) for x in texts):
            raise ConfigError(f"{where}.content: only text parts are supported")
        return "\n".join(texts)
    if not isinstance(content, str):
        raise ConfigError(f"{where}.content must be a string or a list of text parts")
    return content


def message(m: Any, i: int) -> Message:
    """An OpenAI chat message: system/developer, user, assistant (with tool_calls), or tool (a call's result)."""
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise ConfigError(f"{where} must be an object with 'role' and 'content'")
    role = "system" if m.get("role") == "developer" else m.get("role")
    if role not in ROLES:
        raise ConfigError(f"{where}.role must be one of {', '.join(ROLES)}")
    calls = None
    if role == "assistant" and m.get("tool_calls"):
        if not isinstance(m["tool_calls"], list):
            raise ConfigError(f"{where}.tool_calls must be a list")
        calls = tuple(_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(m["tool_calls"]))
    if role == "tool" and not isinstance(m.get("tool_call_id"), str):
        raise ConfigError(f"{where}: a tool message needs 'tool_call_id' (the call it answers)")
    if m.get("content") is None and calls is None:
        raise ConfigError(f"{where}.content must be a string or a list of text parts")
    return Message(role=role, content=text_of(m.get("content"), where), tool_calls=calls,
                   tool_call_id=m.get("tool_call_id") if role == "tool" else None)


def _call(c: Any, where: str) -> ToolCall:
    fn = c.get("function") if isinstance(c, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ConfigError(f"{where} must be {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}")
    args = fn.get("arguments", "{}")
    return ToolCall(id=str(c.get("id") or f"call_{uuid.uuid4().hex[:8]}"), name=fn["name"],
                    arguments=args if isinstance(args, str) else json.dumps(args))


def messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("'messages' must be a non-empty list")
    if len(raw) > MAX_MESSAGES:
        raise ConfigError(f"'messages' has {len(raw)} messages; at most {MAX_MESSAGES} are accepted")
    return tuple(message(m, i) for i, m in enumerate(raw))


def tools(raw: Any, choice: Any) -> tuple[dict, ...] | None:
    """OpenAI function tools, each schema checked; tool_choice 'none' drops them, a named function keeps it alone."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ConfigError("'tools' must be a list of {'type': 'function', 'function': {...}}")
    if len(raw) > MAX_TOOLS:
        raise ConfigError(f"'tools' has {len(raw)} tools; at most {MAX_TOOLS} are accepted")
    out = []
    for i, t in enumerate(raw):
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ConfigError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name', 'parameters'}}}}")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        try:
            check_schema(params)
        except ValueError as e:
            raise ConfigError(f"tools[{i}].function.parameters: {e}") from None
        out.append({"type": "function", "function": {**fn, "parameters": params}})
    if choice in (None, "auto", "required"):
        return tuple(out) or None
    if choice == "none":
        return None
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    chosen = [t for t in out if t["function"]["name"] == name]
    if not chosen:
        raise ConfigError("'tool_choice' must be 'none', 'auto', 'required' or a function among 'tools'")
    return tuple(chosen)


def response_format(raw: Any) -> dict | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        try:
            check_schema(schema)
        except ValueError as e:
            raise ConfigError(f"'response_format.json_schema.schema': {e}") from None
        return {"type": "json_schema", "json_schema": {"name": spec.get("name", "answer"), "schema": schema}}
    raise ConfigError("'response_format.type' must be text, json_object or json_schema")


def chosen_calls(answer: Answer) -> list[dict] | None:
    """The answer's tool calls in OpenAI's shape: the chosen sample's own, or built from a merged key."""
    if not (answer.answer or "").startswith(TOOL_KEY):
        return None
    sample = next((s for s in answer.samples if s.index == answer.chosen), None)
    if sample is not None and sample.tool_calls:
        return [c.wire() for c in sample.tool_calls]
    return [ToolCall(id=f"call_{uuid.uuid4().hex[:8]}", name=c["name"], arguments=json.dumps(c["arguments"])).wire()
            for c in calls_of(answer.answer)]


def response_text(answer: Answer) -> str:
    """The chosen sample's whole text (the response an agent reads), else the first sample's."""
    sample = next((s for s in answer.samples if s.index == answer.chosen), None)
    if sample is None:
        sample = next((s for s in answer.samples if s.status == "ok" and s.answer == answer.answer), None)
    return sample.text if sample else (answer.samples[0].text if answer.samples else "")


def failure(answer: Answer | None, error: str | None) -> str | None:
    """Why no response can be given: the strategy failed, or every sample failed (the upstream's own error)."""
    if answer is None:
        return error or "the strategy failed"
    if answer.samples and all(s.status == "error" for s in answer.samples):
        return answer.samples[0].error or "every sample failed"
    return None


def unmet_format(answer: Answer, shape: dict | None) -> str | None:
    """Why a JSON request has no answer: none of the samples met its response_format (they are counted)."""
    if shape is None or answer.answer is not None:
        return None
    tried = sum(s.status == "ok" for s in answer.samples)
    return f"none of the {tried} samples met the response_format (invalid JSON or not matching the schema)"
