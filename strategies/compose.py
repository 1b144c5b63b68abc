"""Strategies composed as values, in a small text form checked before anything runs:

    sc(n=8, prune="step") | pdr(rounds=1)     self-consistency with pruned samples, then PDR refining the survivors
    apr(child="sc(n=4)")                       APR whose children each run self-consistency
    llm-compiler(reasoner="sc(n=4)")           LLMCompiler with a `reason` tool that is itself a strategy

An expression is a strategy name with keyword options (`sc8` is `sc(n=8)`), and `a | b` feeds a's samples to b as
its first drafts. Every stage runs on the same context: one budget for the whole tree and one trace DAG. The text is
parsed with `ast` and only names, calls, keywords, literals and `|` are accepted.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

import tts.strategies.registry as strategies
from tts.strategies.registry import StrategySpec, register
from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.kernel.types import Answer, Frozen, Problem


@dataclass(frozen=True)
class Stage:
    spec: StrategySpec
    config: BaseModel


def _name(node: ast.AST, text: str) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):  # llm-compiler parses as llm - compiler
        return f"{_name(node.left, text)}-{_name(node.right, text)}"
    raise ConfigError(f"strategy expression '{text}': expected a strategy name, got {ast.unparse(node)}")


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise ConfigError(f"strategy expression '{text}': option values must be literals, got "
                          f"{ast.unparse(node)}") from None


def _stage(node: ast.AST, text: str, depth: int = 0) -> Stage:
    options: dict[str, Any] = {}
    if isinstance(node, ast.Call):
        if node.args:
            raise ConfigError(f"strategy expression '{text}': options are keywords (name=value)")
        if any(k.arg is None for k in node.keywords):
            raise ConfigError(f"strategy expression '{text}': options are keywords (name=value), not **mappings")
        options = {k.arg: _literal(k.value, text) for k in node.keywords}
        node = node.func
    name = _name(node, text)
    if m := re.fullmatch(r"([a-z]+)(\d+)", name):  # sc8 = sc(n=8)
        name, options = m.group(1), {"n": int(m.group(2)), **options}
    hyphen = name.replace("_", "-")
    spec = strategies.get(hyphen if hyphen in strategies.names() else name)
    if isinstance(options.get("prune"), str):
        options["prune"] = {"signal": options["prune"]}
    unknown = set(options) - set(spec.config.model_fields)
    if unknown:
        raise ConfigError(f"strategy expression '{text}': {spec.name} has no option {', '.join(sorted(unknown))}")
    for key in ("child", "reasoner"):  # nested expressions are checked now, not when a branch reaches them
        if isinstance(options.get(key), str):
            parse(options[key], depth + 1)
    return Stage(spec, strategies.make_config(spec, **options))


def is_composition(text: str) -> bool:
    """Whether a strategy given as text is an expression (`sc8`, `sc(n=4)`, `a | b`) rather than a plain name."""
    return any(c in text for c in "(|") or text[-1:].isdigit()


MAX_EXPR_CHARS = 2000
MAX_STAGES = 16
MAX_DEPTH = 4  # strategies nested in options (apr(child=...), llm-compiler(reasoner=...))


def parse(text: str, _depth: int = 0) -> list[Stage]:
    """Parse and validate a composition; raises ConfigError with the reason."""
    if len(text) > MAX_EXPR_CHARS:
        raise ConfigError(f"strategy expression too long ({len(text)} characters; at most {MAX_EXPR_CHARS})")
    if _depth > MAX_DEPTH:
        raise ConfigError(f"strategy expression nested more than {MAX_DEPTH} deep")
    if text.count("|") >= MAX_STAGES:
        raise ConfigError(f"strategy expression has more than {MAX_STAGES} stages")
    source = text.strip()
    for name in strategies.names():  # hyphenated names are not Python names
        if "-" in name:
            source = re.sub(rf"(?<![\w'\"]){re.escape(name)}(?![\w'\"])", name.replace("-", "_"), source)
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as e:
        raise ConfigError(f"strategy expression '{text}': {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ConfigError("strategy expression nested too deeply to read") from None
    stages: list[ast.AST] = []
    while isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.BitOr):
        stages.insert(0, tree.right)
        tree = tree.left
    stages.insert(0, tree)
    parsed = [_stage(node, text, _depth) for node in stages]
    for i, stage in enumerate(parsed[1:], start=2):
        if stage.spec.check_upstream is not None:
            stage.spec.check_upstream(parsed[i - 2].config)
        if not stage.spec.takes_upstream:
            refiners = sorted({s.name for s in map(strategies.get, strategies.names()) if s.takes_upstream})
            raise ConfigError(f"strategy expression '{text}': stage {i} ({stage.spec.name}) cannot start from the "
                              f"previous stage's samples; after | use one of: {', '.join(refiners)}")
    return parsed


async def run_stages(ctx: Context, problem: Problem, stages: list[Stage]) -> Answer:
    answer: Answer | None = None
    for i, stage in enumerate(stages):
        ctx.emit("stage", index=i, strategy=stage.spec.name)
        if i == 0:
            answer = await stage.spec.run(ctx, problem, stage.config)
        else:  # the previous stage's answer is handed over explicitly, never through shared state
            answer = await stage.spec.run(ctx, problem, stage.config, upstream=answer)
    return answer


class ComposeConfig(Frozen):
    expr: str = Field(..., description="a composition, e.g. sc(n=8, prune='step') | pdr(rounds=1)")


async def run(ctx: Context, problem: Problem, config: ComposeConfig) -> Answer:
    answer = await run_stages(ctx, problem, parse(config.expr))
    return answer.model_copy(update={"meta": {**answer.meta, "composition": config.expr}})


async def preflight(config: ComposeConfig) -> None:
    for stage in parse(config.expr):
        if stage.spec.preflight is not None:
            await stage.spec.preflight(stage.config)


register(StrategySpec("compose", run, ComposeConfig, preflight=preflight,
                      description="stages in sequence under one budget, e.g. \"sc(n=8) | pdr(rounds=1)\""))
