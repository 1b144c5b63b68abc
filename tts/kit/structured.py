"""Agents' answers as votable keys: tool calls and JSON objects in canonical form, and the vote over them.

A sample's tool calls become one key, `tool_calls:` + canonical JSON of the calls (function name and arguments with
sorted keys; parallel calls as a sorted set), so that calls differing only in argument order or spacing vote
together. A JSON answer becomes `json:` + its canonical text when it parses and meets the schema; otherwise it has
no key and casts no vote (the caller counts it). Pure functions: no engine, no context.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Iterable, Sequence

TOOL_KEY = "tool_calls:"
JSON_KEY = "json:"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def call_key(calls: Iterable[tuple[str, str]]) -> str:
    """The key of a turn's calls, given as (name, arguments JSON text); arguments that are not a JSON object are
    kept as their text (a malformed call still votes, with the others written the same way)."""
    items = []
    for name, arguments in calls:
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            args = {"_unparsed": arguments}
        items.append({"name": name, "arguments": args})
    return TOOL_KEY + canonical(sorted(items, key=canonical))


def calls_of(key: str) -> list[dict[str, Any]]:
    """The calls a key stands for, as [{"name", "arguments": dict}] (inverse of call_key)."""
    if not key.startswith(TOOL_KEY):
        raise ValueError(f"not a tool-call key: {key[:40]!r}")
    return json.loads(key[len(TOOL_KEY):])


def merge_calls(keys: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """Argument by argument, where whole calls differ: the most common set of function names, then for each of
    those functions each argument's most common value among the samples that called it (an argument is kept when
    most of them passed it). Returns (key, how each part was decided), or None without tool-call keys."""
    turns = [calls_of(k) for k in keys if k.startswith(TOOL_KEY)]
    if not turns:
        return None
    names = Counter(tuple(sorted(c["name"] for c in t)) for t in turns)
    chosen_names, _ = names.most_common(1)[0]
    agreeing = [t for t in turns if tuple(sorted(c["name"] for c in t)) == chosen_names]
    merged, decided = [], {"functions": list(chosen_names), "samples": len(agreeing), "arguments": {}}
    for slot, name in enumerate(chosen_names):
        # the slot-th call of that name in each agreeing turn (parallel calls to one function pair up in order)
        calls = [[c for c in t if c["name"] == name][chosen_names[:slot].count(name)] for t in agreeing]
        args: dict[str, Any] = {}
        for arg in sorted({a for c in calls for a in _args(c)}):
            given = [canonical(_args(c)[arg]) for c in calls if arg in _args(c)]
            if len(given) * 2 <= len(calls):
                continue
            value, count = Counter(given).most_common(1)[0]
            args[arg] = json.loads(value)
            decided["arguments"][f"{name}.{arg}"] = f"{count}/{len(calls)}"
        merged.append({"name": name, "arguments": args})
    return TOOL_KEY + canonical(sorted(merged, key=canonical)), decided


def _args(call: dict) -> dict:
    args = call.get("arguments")
    return args if isinstance(args, dict) else {"_value": args}


FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)  # a fenced (json) block


def parse_json(text: str) -> Any:
    """The JSON value a response holds: the whole text, a fenced block, or the first object or array in it.
    Raises ValueError when there is none."""
    candidates = [text.strip(), *(m.group(1).strip() for m in FENCE.finditer(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            return decoder.raw_decode(text, m.start())[0]
        except ValueError:
            continue
    raise ValueError("no JSON value in the response")


def json_key(text: str, schema: dict | None) -> tuple[str | None, str | None]:
    """(key, None) for a response whose JSON meets `schema` (any JSON object when None), else (None, why not)."""
    try:
        value = parse_json(text)
    except ValueError as e:
        return None, str(e)
    if schema is None:
        if not isinstance(value, dict):
            return None, "the response is JSON but not an object"
    else:
        import jsonschema

        error = jsonschema.exceptions.best_match(validator(canonical(schema)).iter_errors(value))
        if error is not None:
            return None, f"does not meet the schema: {error.message[:160]}"
    return JSON_KEY + canonical(value), None


def check_schema(schema: Any) -> None:
    """A response_format schema that is not a valid JSON Schema raises ValueError (before any engine call)."""
    import jsonschema

    if not isinstance(schema, dict):
        raise ValueError("the schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        raise ValueError(f"invalid JSON schema: {e.message[:160]}") from None


_validators: dict[str, Any] = {}


def validator(schema_text: str):
    """A compiled validator per schema (one per request: every sample is checked against it)."""
    if schema_text not in _validators:
        import jsonschema

        schema = json.loads(schema_text)
        if len(_validators) > 256:
            _validators.clear()
        _validators[schema_text] = jsonschema.validators.validator_for(schema)(schema)
    return _validators[schema_text]
