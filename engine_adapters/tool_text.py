"""Tool calls written in a model's text, for engines that render the chat template themselves (in-process vLLM).

Qwen2.5, Hermes and many open models write a call as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
(vLLM's server reads them with its `hermes` tool parser); the text outside the tags is the turn's content.

Qwen2.5-Coder was not trained on those tags: offered tools, it answers with a ```json block, or bare JSON, shaped
like a call (vLLM issue #32926; the 1.5B model did in 67 of 96 samples here, benchmarks/tool_call_vote.py), and it
copies its template's `{{"name": ...}}` with the braces doubled. Such a response is read as calls only when it is
nothing but call-shaped JSON naming offered tools: JSON inside prose or code (llama.cpp #18183) stays text.
"""
from __future__ import annotations

import json
import re
from typing import Any, Collection

from tts.kernel.types import ToolCall
from tts.kit.structured import FENCE

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def parse_calls(text: str, index: int = 0, names: Collection[str] | None = None
                ) -> tuple[str, tuple[ToolCall, ...] | None]:
    """(content, calls) of a completion: calls whose JSON cannot be read are left in the content, never guessed.
    With `names` (the offered tools), a response without tags that is only call-shaped JSON naming them is calls."""
    calls, kept = [], text
    for n, m in enumerate(_CALL.finditer(text)):
        body = _json(m.group(1))
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        calls.append(_call(body, index, n))
        kept = kept.replace(m.group(0), "")
    if calls:
        return kept.strip(), tuple(calls)
    bare = _bare_calls(text, names, index) if names else None
    return ("", bare) if bare else (text, None)


def _json(body: str) -> Any:
    """JSON text, or its template's doubled braces (`{{"name": ...}}`) undone; None when it is neither."""
    for candidate in (body, body[1:-1] if body.startswith("{{") and body.endswith("}}") else None):
        if candidate is not None:
            try:
                return json.loads(candidate)
            except ValueError:
                pass
    return None


def _call(body: dict, index: int, n: int) -> ToolCall:
    args = body.get("arguments", body.get("parameters", {}))
    return ToolCall(id=f"call_{index}_{n}", name=body["name"],
                    arguments=args if isinstance(args, str) else json.dumps(args))


def _bare_calls(text: str, names: Collection[str], index: int) -> tuple[ToolCall, ...] | None:
    """Calls written without tags: the whole response is ```json blocks (only whitespace around them) or one JSON
    value, each a {"name": an offered tool, "arguments": {...}} or a list of them. Anything else: None."""
    stripped = text.strip()
    blocks = FENCE.findall(stripped)
    if blocks and not FENCE.sub("", stripped).strip():
        bodies = blocks
    elif stripped.startswith(("{", "[")):
        bodies = [stripped]
    else:
        return None
    found: list[dict] = []
    for body in bodies:
        value = _json(body.strip())
        for item in value if isinstance(value, list) else [value]:
            if not (isinstance(item, dict) and item.get("name") in names
                    and isinstance(item.get("arguments", item.get("parameters", {})), dict)):
                return None
            found.append(item)
    return tuple(_call(item, index, n) for n, item in enumerate(found)) or None


def tool_names(tools) -> frozenset[str]:
    """The function names of OpenAI-shaped tools."""
    return frozenset(t["function"]["name"] for t in tools or () if isinstance(t.get("function"), dict))


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


# Qwen2.5's own words for tools (its chat template's), for templates that have no place for them
_HERMES = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
           "function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\nFor each function "
           "call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
           "<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>")


def with_tool_prompt(messages: list[dict], tools) -> list[dict]:
    """Messages that state the tools in a system message, Hermes-style, for a chat template that drops `tools`
    (SmolLM2's, Llama 2's): the model is told the tools and how to call them, as Qwen2.5's template tells it."""
    text = _HERMES.format(tools="\n".join(json.dumps(t) for t in tools))
    if messages and messages[0].get("role") == "system":
        return [{**messages[0], "content": f"{messages[0].get('content') or ''}\n\n{text}".lstrip()}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def render_prompt(tokenizer, request, template_kwargs: dict | None = None) -> str:
    """A chat request as the model's template writes it, with its tools: in the template's own place for them, or,
    where the template has none (rendering with and without them gives the same text), in a system message."""
    if request.prompt is not None:
        return request.prompt
    kwargs = dict(tokenize=False, add_generation_prompt=not request.continue_final,
                  continue_final_message=request.continue_final, **(template_kwargs or {}))
    messages = template_messages(request.messages or ())
    if not request.tools:
        return tokenizer.apply_chat_template(messages, **kwargs)
    tools = list(request.tools)
    rendered = tokenizer.apply_chat_template(messages, tools=tools, **kwargs)
    if rendered != tokenizer.apply_chat_template(messages, **kwargs):
        return rendered
    return tokenizer.apply_chat_template(with_tool_prompt(messages, tools), **kwargs)
