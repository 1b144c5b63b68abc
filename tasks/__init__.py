"""Benchmark tasks by name: how to load problems, prompt for them, extract an answer and grade it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tts.tasks import countdown, gsm8k, humaneval, math as math_task, tool_qa
from tts.kernel.errors import ConfigError, DataError
from tts.kernel.types import Message, Problem


@dataclass(frozen=True)
class Task:
    name: str
    load: Callable[[str | Path | None], list[Problem]]
    prompt: str
    extract: Callable[[str], str | None]
    grade: Callable[[Problem, str | None], bool]  # may be async (code tasks run tests in the sandbox)
    # Maps answers to one representative per equivalence class before a vote (identity where extraction is canonical).
    canonicalize: Callable[[list[str | None]], list[str | None]] = list
    # Tools a tool-using strategy may call, by name (tool tasks only).
    tools: Callable[[], dict] = dict
    # Lets the simulator play planner/joiner/agent on this task's problems (tool tasks only).
    sim_responder: Callable | None = None

    def messages(self, problem: Problem) -> tuple[Message, ...]:
        if "messages" in problem.meta:  # a chat request (tts serve) brings its own messages
            return tuple(Message(**m) for m in problem.meta["messages"])
        return (Message(role="user", content=self.prompt.format(question=problem.question)),)


_TASKS = {
    "gsm8k": Task("gsm8k", gsm8k.load, gsm8k.PROMPT, gsm8k.extract, gsm8k.grade),
    # LaTeX answers (MATH, AIME/AMC, Minerva, Gaokao; SVAMP too), compared with math-verify
    # SVAMP (or any shape tasks.math reads) with numeric answers, prompted and graded like GSM8K
    "svamp": Task("svamp", math_task.load, gsm8k.PROMPT, gsm8k.extract, gsm8k.grade),
    # Countdown: generated, always-solvable instances; the verifier checks the expression exactly (no eval)
    "countdown": Task("countdown", countdown.load, "{question}", countdown.extract, countdown.grade),
    # Tool use: parallel and dependent questions over tools with simulated latency (LLMCompiler, ReAct)
    "tools": Task("tools", tool_qa.load, tool_qa.PROMPT, tool_qa.extract, tool_qa.grade, tools=tool_qa.make_tools,
                  sim_responder=tool_qa.sim_responder),
    # HumanEval-format code: graded by running the tests in the sandbox
    "humaneval": Task("humaneval", humaneval.load, humaneval.PROMPT, humaneval.extract, humaneval.grade),
    "math": Task("math", math_task.load, math_task.PROMPT, math_task.extract, math_task.grade,
                 math_task.canonicalize),
}


def check_ids(problems: list[Problem], source: str) -> list[Problem]:
    """Problem ids key results lines and --resume: a duplicate would lose a problem, so it is an error."""
    seen: dict[str, int] = {}
    for i, p in enumerate(problems):
        if p.id in seen:
            raise DataError(f"{source}: duplicate problem id '{p.id}' (rows {seen[p.id] + 1} and {i + 1}); ids must be "
                            f"unique")
        seen[p.id] = i
    return problems


def get(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task '{name}'; known: {', '.join(sorted(_TASKS))}") from None
