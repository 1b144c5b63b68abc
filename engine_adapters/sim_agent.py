"""How the simulator answers an agent's request: tool calls and JSON, deterministic and right with a set probability.

It is not a model. Offered tools, it calls the tool whose name and description share the most words with the last
user turn, with arguments read from that turn (the first number for a number, the quoted or capitalised words for a
string); a wrong sample changes one argument or calls another tool. After a tool result it answers in text, quoting
the result. Asked for JSON, it writes an object of the schema's shape; a wrong sample changes one value, and some
leave out a required field (so that invalid samples get dropped and counted).
"""
from __future__ import annotations

import json
import random
import re
from typing import Any

from tts.kernel.types import GenerateRequest, ToolCall


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)}


def last_user(request: GenerateRequest) -> str:
    return next((m.content for m in reversed(request.messages or ()) if m.role == "user"), request.prompt or "")


# words that open a request rather than name something in it
_OPENERS = {"What", "Whats", "Extract", "How", "The", "Please", "Get", "Send", "Find", "Tell", "Give", "Who", "When",
            "Where", "Which", "Is", "Can", "Could", "Show", "Look", "Check", "Return", "Write", "In", "On", "For"}


def _string_value(question: str, name: str) -> str:
    quoted = re.findall(r"[\"']([^\"']+)[\"']", question)
    if quoted:
        return quoted[0]
    capitals = [w for w in re.findall(r"\b([A-Z][a-z]+)\b", question) if w not in _OPENERS]
    return capitals[0] if capitals else name


def _value(schema: dict, question: str, name: str) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind in ("number", "integer"):
        found = re.findall(r"-?\d+(?:\.\d+)?", question)
        value = float(found[0]) if found else 1
        return int(value) if kind == "integer" or value == int(value) else value
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value(schema.get("items") or {"type": "string"}, question, name)]
    if kind == "object":
        return _object(schema, question)
    return _string_value(question, name)


def _object(schema: dict, question: str) -> dict:
    props = schema.get("properties") or {}
    required = schema.get("required") or list(props)
    return {k: _value(props.get(k) or {}, question, k) for k in required if k in props or not props}


def _spoil(obj: dict, rng: random.Random) -> dict:
    """A wrong version: one value changed."""
    if not obj:
        return {"note": "wrong"}
    key = rng.choice(sorted(obj))
    value = obj[key]
    if isinstance(value, bool):
        changed: Any = not value
    elif isinstance(value, (int, float)):
        changed = value + rng.choice([-2, -1, 1, 3])
    elif isinstance(value, str):
        changed = value + rng.choice(["x", " (unsure)", "s"])
    else:
        changed = None
    return {**obj, key: changed}


def tool_calls(request: GenerateRequest, rng: random.Random, accuracy: float) -> tuple[ToolCall, ...] | None:
    """The calls for a request that offers tools, or None when the simulator answers in text (after a tool result)."""
    if request.messages and request.messages[-1].role == "tool":
        return None
    question = last_user(request)
    functions = [t.get("function") or {} for t in request.tools or ()]
    if not functions:
        return None
    overlap = [len(_words(f.get("name", "").replace("_", " ") + " " + f.get("description", "")) & _words(question))
               for f in functions]
    best = max(range(len(functions)), key=lambda i: (overlap[i], -i))
    args = _object(functions[best].get("parameters") or {}, question)
    if rng.random() >= accuracy:
        if len(functions) > 1 and rng.random() < 0.3:
            best = (best + 1) % len(functions)
            args = _object(functions[best].get("parameters") or {}, question)
        else:
            args = _spoil(args, rng)
    call = ToolCall(id=f"call_{rng.randrange(16 ** 8):08x}", name=functions[best].get("name", "tool"),
                    arguments=json.dumps(args))
    return (call,)


def after_tool(request: GenerateRequest) -> str:
    result = request.messages[-1].content if request.messages else ""
    return f"According to the tool, the result is {result.strip()[:200]}."


def json_text(request: GenerateRequest, rng: random.Random, accuracy: float) -> str:
    fmt = request.response_format or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object", "properties": {"answer": {}},
                                                               "required": ["answer"]}
    obj = _object(schema, last_user(request))
    roll = rng.random()
    if roll >= accuracy:
        wrong = (roll - accuracy) / max(1e-9, 1 - accuracy)
        if wrong < 0.5 and obj:
            obj = {k: v for k, v in obj.items() if k != sorted(obj)[0]}  # a required field left out
        else:
            obj = _spoil(obj, rng)
    return json.dumps(obj)
