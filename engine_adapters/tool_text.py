"""Tool calls written in a model's text, for engines that render the chat template themselves (in-process vLLM).

Qwen2.5, Hermes and many open models write a call as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
(vLLM's server reads them with its `hermes` tool parser); the text outside the tags is the turn's content.
"""
from __future__ import annotations

import json
import re

from tts.kernel.types import ToolCall

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def parse_calls(text: str, index: int = 0) -> tuple[str, tuple[ToolCall, ...] | None]:
    """(content, calls) of a completion: calls whose JSON cannot be read are left in the content, never guessed."""
    calls, kept = [], text
    for n, m in enumerate(_CALL.finditer(text)):
        try:
            body = json.loads(m.group(1))
        except ValueError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        args = body.get("arguments", body.get("parameters", {}))
        calls.append(ToolCall(id=f"call_{index}_{n}", name=body["name"],
                              arguments=args if isinstance(args, str) else json.dumps(args)))
        kept = kept.replace(m.group(0), "")
    return (kept.strip(), tuple(calls)) if calls else (text, None)


def template_messages(messages) -> list[dict]:
    """Messages for a Hugging Face chat template: call arguments as objects (templates `tojson` them)."""
    out = []
    for m in messages:
        wire = m.wire()
        for call in wire.get("tool_calls", ()):
            try:
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
            except ValueError:
                pass
        out.append(wire)
    return out
