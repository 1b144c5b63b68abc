"""Code self-consistency: vote among candidate programs by their behaviour, not their text (as S* and CodeMonkeys
select). All candidates run in the sandbox on the same inputs (the prompt's examples, plus inputs the model proposes
when `proposed_inputs` > 0); candidates with identical outputs form a cluster and the largest cluster wins."""
from __future__ import annotations

import ast
import json
from functools import partial

from pydantic import Field

from tts.strategies.registry import StrategySpec, register
from tts.strategies.self_consistency import SCConfig, sample
from tts.kernel.errors import ConfigError
from tts.kernel.context import Context
from tts.tools.sandbox import SandboxLimits, run_python
from tts.kernel.types import Answer, Frozen, GenerateRequest, Message, Problem

PROPOSE = ("Write {k} new example calls of `{entry}` that test edge cases, one Python expression per line, "
           "nothing else.\n\n```python\n{prompt}```")
HARNESS = '''
import json
_calls = json.loads({calls!r})
for _c in _calls:
    try:
        print(repr(eval(_c)))
    except BaseException as _e:
        print("raised " + type(_e).__name__)
'''


class CodeSCConfig(Frozen):
    n: int = Field(8, ge=1, le=16_384)
    temperature: float = Field(0.8, ge=0.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    proposed_inputs: int = Field(0, ge=0, description="extra test inputs the model proposes")


def valid_calls(text: str, entry: str) -> list[str]:
    calls = []
    for line in text.splitlines():
        line = line.strip().strip("`").removeprefix(">>>").strip()
        if line.startswith(entry + "("):
            try:
                ast.parse(line, mode="eval")
                calls.append(line)
            except SyntaxError:
                pass
    return calls


async def behaviour(program, problem: Problem, code: str | None, calls: list[str]) -> tuple[str, ...] | None:
    """What a candidate prints for each call, run in the sandbox (the calls run there too, never here)."""
    if not code or not calls:
        return None
    source = program(problem, code) + HARNESS.format(calls=json.dumps(calls))
    result = await run_python(source, SandboxLimits(timeout_s=10))
    if result.timed_out or result.returncode != 0:
        return None
    return tuple(result.stdout.splitlines())


async def run(ctx: Context, problem: Problem, config: CodeSCConfig) -> Answer:
    if ctx.task.program is None:
        raise ConfigError(f"code-sc needs a code task (one that can run a candidate), not '{ctx.task.name}'")
    sc = SCConfig(n=config.n, temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed,
                  early_stop=False, batch=True)
    samples = list((await sample(ctx, problem, sc)).samples)
    calls = ctx.task.example_calls(problem)
    entry = problem.meta["entry_point"]
    if config.proposed_inputs:
        prompt = PROPOSE.format(k=config.proposed_inputs, entry=entry, prompt=problem.question)
        [c] = await ctx.generate(GenerateRequest(messages=(Message(role="user", content=prompt),), max_tokens=160))
        calls += valid_calls(c.text, entry)[: config.proposed_inputs]
    outcomes = await ctx.branches([partial(behaviour, ctx.task.program, problem, s.answer, calls) for s in samples], label="execute")
    clusters: dict[tuple[str, ...], list[int]] = {}
    for s, o in zip(samples, outcomes):
        if o.status == "ok" and o.value is not None:
            clusters.setdefault(o.value, []).append(s.index)
    # largest cluster first; a behaviour that only raises ranks below one that returns; ties: lowest index
    ranked = sorted(clusters.items(), key=lambda kv: (-len(kv[1]), all(x.startswith("raised") for x in kv[0]),
                                                      kv[1][0]))
    chosen = ranked[0][1][0] if ranked else next((s.index for s in samples if s.answer), None)
    answer = next((s.answer for s in samples if s.index == chosen), None)
    return Answer(answer=answer, votes={f"cluster{k}": len(m) for k, (_, m) in enumerate(ranked)},
                  samples=tuple(samples), meta={"calls": calls, "clusters": [m for _, m in ranked]})


register(StrategySpec("code-sc", run, CodeSCConfig, aliases=("code-self-consistency",),
                      description="code self-consistency: N programs, voted by their behaviour on test inputs"))
