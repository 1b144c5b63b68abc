"""Tools for planners and agents: a decorator turns a typed Python function (sync or async) into a Tool with a
pydantic argument schema and a description. Arguments from a model are validated before the call; a sync function
runs in a worker thread; every call has a timeout. Built-in: calculator (safe arithmetic)."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

from pydantic import BaseModel, ValidationError, create_model

from tts.tools import safe_math


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
