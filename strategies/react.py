"""ReAct baseline: one tool call per model turn (Thought, Action, Observation), on the same tools and engine as
LLMCompiler so the two are measured side by side."""
from __future__ import annotations

import re

from pydantic import Field

from tts.strategies.registry import StrategySpec, register
from tts.strategies.plan_parser import parse_call
from tts.kernel.context import Context
from tts.tools.registry import ToolError
from tts.kernel.types import Answer, Frozen, GenerateRequest, Message, Problem, Sample

REACT = """REACT. Answer the question using these tools:
{tools}
Work in steps. Each step is
Thought: <your reasoning>
Action: tool_name(arguments)
and then stop: the tool's result comes back as 'Observation: ...'. Use literal arguments (strings in double
quotes). When you know the answer, write 'Answer: <the answer only>'.

Question: {question}
{transcript}"""
_ACTION = re.compile(r"Action:\s*(.+)")


class ReActConfig(Frozen):
    max_steps: int = Field(12, ge=1)
    step_tokens: int = Field(128, ge=8)
    temperature: float = Field(0.0, ge=0.0)


async def run(ctx: Context, problem: Problem, config: ReActConfig) -> Answer:
    tools = ctx.task.tools()
    transcript, text, steps = "", "", 0
    for steps in range(1, config.max_steps + 1):
        prompt = REACT.format(tools="\n".join(f"- {t.signature()}" for t in tools.values()),
                              question=problem.question, transcript=transcript)
        [c] = await ctx.generate(GenerateRequest(messages=(Message(role="user", content=prompt),),
                                                 max_tokens=config.step_tokens, temperature=config.temperature,
                                                 stop=("Observation:",)))
        text = c.text.strip()
        transcript += text + "\n"
        if ctx.task.extract(text) is not None:
            break
        action = _ACTION.search(text)
        if not action:
            transcript += "Observation: no Action line; write 'Action: tool(args)' or 'Answer: ...'\n"
            continue
        try:
            name, args, kwargs = parse_call(action.group(1))
            if name not in tools:
                raise ToolError(f"unknown tool '{name}'")
            result = await tools[name](*args, **kwargs)
            observation = result if isinstance(result, str) else repr(result)
        except (ToolError, ValueError, SyntaxError) as e:
            observation = f"failed: {e}"
        ctx.emit("react_step", action=action.group(1), observation=observation)
        transcript += f"Observation: {observation}\n"
    answer = ctx.task.extract(text)
    return Answer(answer=answer, votes={answer: 1} if answer else {},
                  samples=(Sample(index=0, text=transcript, answer=answer, completion_tokens=ctx.usage.completion_tokens),),
                  meta={"steps": steps})


register(StrategySpec("react", run, ReActConfig, description="ReAct: think, call a tool, observe, one step at a time"))
