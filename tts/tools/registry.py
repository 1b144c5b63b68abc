"""Tools for planners and agents: a decorator turns a typed Python function (sync or async) into a Tool with a
pydantic argument schema and a description. Arguments from a model are validated before the call; a sync function
runs in a worker thread; every call has a timeout. Built-ins: calculator (safe arithmetic), python (sandboxed
subprocess), search (a local JSONL corpus)."""
from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError, create_model

from tts.tools import safe_math
from tts.tools.sandbox import SandboxLimits, run_python


class ToolError(Exception):
    """A tool call that failed; its message becomes the call's observation."""


class Tool:
    def __init__(self, fn: Callable[..., Any], name: str | None = None, description: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.description = (description or inspect.getdoc(fn) or "").strip()
        self.timeout_s = timeout_s
        params = inspect.signature(fn).parameters
        fields = {n: (p.annotation if p.annotation is not inspect.Parameter.empty else Any,
                      ... if p.default is inspect.Parameter.empty else p.default) for n, p in params.items()}
        self.args_model: type[BaseModel] = create_model(f"{self.name}_args", **fields)
        self.arg_names = list(params)

    def signature(self) -> str:
        args = ", ".join(f"{n}: {getattr(f.annotation, '__name__', str(f.annotation))}"
                         for n, f in self.args_model.model_fields.items())
        return f"{self.name}({args}): {self.description}"

    def bind(self, args: list[Any], kwargs: dict[str, Any]) -> BaseModel:
        if len(args) > len(self.arg_names):
            raise ToolError(f"{self.name} takes {len(self.arg_names)} argument(s), got {len(args)}")
        try:
            return self.args_model(**dict(zip(self.arg_names, args)), **kwargs)
        except ValidationError as e:
            first = e.errors()[0]
            raise ToolError(f"{self.name}: bad argument {'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.bind(list(args), kwargs)
        values = bound.model_dump()
        try:
            async with asyncio.timeout(self.timeout_s):
                if inspect.iscoroutinefunction(self.fn):
                    return await self.fn(**values)
                return await asyncio.to_thread(self.fn, **values)
        except TimeoutError:
            raise ToolError(f"{self.name} timed out after {self.timeout_s} s") from None


def tool(fn: Callable | None = None, *, name: str | None = None, description: str | None = None,
         timeout_s: float = 30.0):
    """`@tool` or `@tool(name=..., timeout_s=...)` over a typed function."""
    if fn is None:
        return lambda f: Tool(f, name, description, timeout_s)
    return Tool(fn, name, description, timeout_s)


@tool
def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression with + - * / // % ** and parentheses, e.g. "(3 + 4) * 2"."""
    try:
        value, _ = safe_math.evaluate(expression)
    except safe_math.InvalidExpression as e:
        raise ToolError(f"calculator: {e}") from None
    return safe_math.number(value)


def python_tool(limits: SandboxLimits | None = None) -> Tool:
    async def python(code: str) -> str:
        """Run Python code in a sandbox (no network, limited time and memory) and return what it prints."""
        result = await run_python(code, limits)
        if result.timed_out:
            raise ToolError("python: timed out")
        if result.returncode != 0:
            raise ToolError(f"python: exit {result.returncode}: {result.stderr.strip()[-500:]}")
        return result.stdout.strip()

    return Tool(python, timeout_s=(limits or SandboxLimits()).timeout_s + 5)


def search_tool(corpus: str | Path, k: int = 3) -> Tool:
    """A search tool over a JSONL corpus of {"title", "text"} documents, ranked by BM25."""
    docs = [json.loads(line) for line in Path(corpus).read_text().splitlines() if line.strip()]
    tokenize = lambda s: re.findall(r"\w+", s.lower())  # noqa: E731
    texts = [tokenize(d.get("title", "") + " " + d.get("text", "")) for d in docs]
    df = Counter(w for t in texts for w in set(t))
    avg = sum(map(len, texts)) / max(1, len(texts))

    def score(query: list[str], text: list[str]) -> float:
        tf = Counter(text)
        return sum(math.log(1 + (len(texts) - df[w] + 0.5) / (df[w] + 0.5)) * tf[w] * 2.2
                   / (tf[w] + 1.2 * (0.25 + 0.75 * len(text) / avg)) for w in query if w in tf)

    def search(query: str) -> str:
        """Search the local document collection; returns the best matching passages."""
        q = tokenize(query)
        ranked = sorted(range(len(docs)), key=lambda i: -score(q, texts[i]))[:k]
        return "\n".join(f"[{docs[i].get('title', i)}] {docs[i].get('text', '')}" for i in ranked
                         if score(q, texts[i]) > 0) or "no results"

    return Tool(search)
