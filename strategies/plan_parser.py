"""Parsing LLMCompiler-style plans, one numbered call per line, as the plan streams in.

    1. prime_factors(84)
    2. lookup("Veloria", "capital")
    3. lookup($2, "mayor")
    4. calculator("$1 * 2")
    5. join()

Arguments are parsed as Python literals with `ast` (never evaluated); a bare `$N` is a typed reference to task N's
result, and `$N` inside a string is filled with that result's text. A line that starts like a call but cannot be
read, names an unknown tool, or refers to a task not defined before it becomes a PlanError for the joiner.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

_LINE = re.compile(r"^\s*(?:\$|#)?(\d+)\s*[.:)]\s*(.+?)\s*$")
_CALL = re.compile(r"^([A-Za-z_]\w*)\s*\((.*)\)\s*;?$", re.DOTALL)
_REF = re.compile(r"\$\{?(\d+)\}?")


@dataclass(frozen=True)
class Ref:
    index: int


@dataclass
class PlanTask:
    index: int
    tool: str
    args: list[Any]
    kwargs: dict[str, Any]
    deps: set[int] = field(default_factory=set)
    line: str = ""


@dataclass(frozen=True)
class PlanError:
    line: str
    error: str


def _bare_refs(text: str) -> str:
    """Replace $N outside string literals by a name the ast can hold (__ref_N__)."""
    out, quote, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif ch == "$" and (m := re.match(r"\$\{?(\d+)\}?", text[i:])):
            out.append(f"__ref_{m.group(1)}__")
            i += m.end() - 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Name) and (m := re.fullmatch(r"__ref_(\d+)__", node.id)):
        return Ref(int(m.group(1)))
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value
    raise ValueError(f"argument is not a literal or $N reference: {ast.unparse(node)}")


def refs_in(value: Any) -> set[int]:
    if isinstance(value, Ref):
        return {value.index}
    if isinstance(value, str):
        return {int(m) for m in _REF.findall(value)}
    if isinstance(value, list):
        return set().union(*map(refs_in, value)) if value else set()
    if isinstance(value, dict):
        return set().union(*map(refs_in, value.values())) if value else set()
    return set()


def substitute(value: Any, results: dict[int, Any]) -> Any:
    """Fill references with results: a bare $N by the typed value, a $N inside a string by its text."""
    if isinstance(value, Ref):
        return results[value.index]
    if isinstance(value, str):
        return _REF.sub(lambda m: _text(results[int(m.group(1))]), value)
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, (list, dict)) else str(value)


def parse_call(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    m = _CALL.match(text.strip())
    if not m:
        raise ValueError("expected tool(arguments)")
    tree = ast.parse(f"f({_bare_refs(m.group(2))})", mode="eval").body
    return m.group(1), [_literal(a) for a in tree.args], {k.arg: _literal(k.value) for k in tree.keywords}


class StreamingPlanParser:
    """Feed text as it streams; `feed` returns the tasks and errors of the lines completed by that text."""

    def __init__(self, tools: set[str]) -> None:
        self.tools = tools
        self.buffer = ""
        self.defined: set[int] = set()
        self.joined = False

    def feed(self, text: str) -> list[PlanTask | PlanError]:
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        return [item for line in lines if (item := self.parse_line(line)) is not None]

    def close(self) -> list[PlanTask | PlanError]:
        rest, self.buffer = self.buffer, ""
        item = self.parse_line(rest)
        return [item] if item is not None else []

    def parse_line(self, line: str) -> PlanTask | PlanError | None:
        m = _LINE.match(line)
        if not m or self.joined or not re.match(r"[A-Za-z_]\w*\s*\(", m.group(2)):
            return None  # thoughts, prose, blank lines, anything after join()
        index, call = int(m.group(1)), m.group(2)
        try:
            name, args, kwargs = parse_call(call)
        except (ValueError, SyntaxError) as e:
            return PlanError(line.strip(), f"cannot parse call: {e}")
        if name == "join":
            self.joined = True
            return None
        if name not in self.tools:
            return PlanError(line.strip(), f"unknown tool '{name}' (tools: {', '.join(sorted(self.tools))})")
        if index in self.defined:
            return PlanError(line.strip(), f"task {index} is defined twice")
        deps = refs_in(args) | refs_in(kwargs)
        undefined = sorted(d for d in deps if d not in self.defined)
        if undefined:
            return PlanError(line.strip(), f"refers to ${undefined[0]}, which no earlier line defines")
        self.defined.add(index)
        return PlanTask(index, name, args, kwargs, deps, line.strip())
