"""The chat task: an agent's request as it comes (its own messages, tools, response format), with no answer extractor.

What a sample answers depends on the request: its tool calls (as one canonical key) when the request offers tools
and the model called some; its JSON object (canonical) when the request asks for JSON, or nothing when the object does
not parse or meet the schema (counted by the strategy as invalid); otherwise its whole text, with whitespace folded,
so that identical responses vote together. Choosing among open-ended texts is for `usc` or `medoid`.
"""
from __future__ import annotations

from typing import Callable

from tts.kernel.types import Completion, Problem
from tts.kit.structured import call_key, json_key
from tts.tasks.mapping import Fields, auto_question, render

PROMPT = "{question}"


def extract(text: str) -> str | None:
    folded = " ".join(text.split())
    return folded or None


def schema_of(response_format: dict | None) -> tuple[bool, dict | None]:
    """(whether JSON is required, its schema or None for any object), from OpenAI's response_format."""
    if not response_format or response_format.get("type") == "text":
        return False, None
    if response_format.get("type") == "json_object":
        return True, None
    spec = response_format.get("json_schema") or {}
    return True, spec.get("schema")


def reader(problem: Problem) -> Callable[[Completion], str | None]:
    wants_json, schema = schema_of(problem.response_format)

    def read(completion: Completion) -> str | None:
        if completion.tool_calls:
            return call_key((c.name, c.arguments) for c in completion.tool_calls)
        if wants_json:
            return json_key(completion.text, schema)[0]
        return extract(completion.text)

    return read


def grade(problem: Problem, answer: str | None) -> bool:
    raise AssertionError("the chat task grades nothing (graded_by=None): open-ended answers have no gold")


def parse_row(row: dict, fields: Fields, where: str) -> tuple[str, None, dict]:
    """A file of open questions: each row's question (an answer field, if any, is not read: nothing is graded)."""
    question = render(fields.question, row, where) if fields.question is not None else auto_question(row, where)[0]
    return question, None, {"open": True}
