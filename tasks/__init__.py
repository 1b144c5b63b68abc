"""Tasks by name: how to prompt for a problem, extract an answer and grade it, and, for the standard benchmark sets,
where their problems come from (a file shipped in the package, the Hugging Face hub, or the user's --data file).

One registration per task, at the bottom of this file."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

from tts.kernel.errors import ConfigError, DataError, UnreadableGold
from tts.kernel.types import Completion, Frozen, Message, Problem
from tts.tasks import chat, countdown, gsm8k, humaneval, math as math_task, mbpp, tool_qa
from tts.kit.structured import merge_calls
from tts.tasks.mapping import Fields, latex_gold, numeric_gold, problem_id, qa_row
from tts.tasks.sources import Rows, from_hub, packaged, read_rows


class Source(Frozen):
    """Where a standard set's problems come from, and how many it has."""

    hub: str | None  # dataset id on the Hugging Face hub
    config: str | None = None
    split: str = "test"
    size: int | None = None  # rows in the standard set; a loaded set of another size is reported
    packaged: str | None = None  # a file in tts/tasks/data (sets whose licence lets them ship)


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    extract: Callable[[str], str | None]
    grade: Callable[[Problem, str | None], bool]  # may be async (code tasks run tests in the sandbox)
    # A data row -> (question, gold, meta), under a field mapping; None for tasks that generate their problems
    parse_row: Callable[[dict, Fields, str], tuple[str, str | None, dict]] | None = None
    generate: Callable[[str | Path | None], list[Problem]] | None = None
    source: Source | None = None
    # Maps answers to one representative per equivalence class before a vote (identity where extraction is canonical).
    canonicalize: Callable[[list[str | None]], list[str | None]] = list
    # Tools a tool-using strategy may call, by name (tool tasks only).
    tools: Callable[[], dict] = dict
    # Lets the simulator play planner/joiner/agent on this task's problems (tool tasks only).
    sim_responder: Callable | None = None
    # Code tasks: the candidate as a runnable module, and the calls its prompt shows (code-sc runs candidates on them)
    program: Callable[[Problem, str], str] | None = None
    example_calls: Callable[[Problem], list[str]] = lambda problem: []
    # the words this task's final answer follows in its format: an answer probe ends a trace's prefix with them and
    # reads the answer from the continuation; None: answers are not probed (a program is not a guess to ask for)
    answer_cue: str | None = "The answer is"
    about: str = ""
    # what a problem carries to be graded: the meta key of its tests for code tasks, else its gold answer; None:
    # nothing (open-ended chat)
    graded_by: str | None = "gold"
    # where what a sample answers depends on the request (an agent's tools or JSON schema): the problem -> how to read
    # a completion; None: `extract` on the completion's text
    read_for: Callable[[Problem], Callable[[Completion], str | None]] | None = None
    reader: Callable[[Completion], str | None] | None = None  # set by bind()
    # where whole answers tie, a vote over their parts (tool calls argument by argument): keys -> (key, how) or None
    merge: Callable[[list[str]], tuple[str, dict] | None] | None = None

    def bind(self, problem: Problem) -> "Task":
        """The task as it reads this problem's samples (itself unless how to read depends on the request)."""
        return self if self.read_for is None else replace(self, reader=self.read_for(problem))

    def read(self, completion: Completion) -> str | None:
        """What a completion answers: its key in the vote."""
        return self.reader(completion) if self.reader is not None else self.extract(completion.text)

    def gradable(self, problem: Problem) -> bool:
        """Whether `grade` can judge this problem: it has a gold answer, or (code tasks) its tests."""
        if self.graded_by is None:
            return False
        if self.graded_by == "gold":
            return problem.gold is not None
        return bool(problem.meta.get(self.graded_by))

    def messages(self, problem: Problem) -> tuple[Message, ...]:
        if problem.messages is not None:  # a chat request (tts serve, tts.solve) brings its own conversation
            return problem.messages
        return (Message(role="user", content=self.prompt.format(question=problem.question)),)

    def inputs(self, problem: Problem) -> dict:
        """What a request for this problem carries: its messages, and an agent's tools and response format."""
        return {"messages": self.messages(problem), "tools": problem.tools, "response_format": problem.response_format}

    def load(self, data: str | Path | None = None, fields: Fields | None = None) -> list[Problem]:
        """The task's problems: from `data` when given, else its packaged file, else the hub. Rows whose gold
        cannot be read are one DataError naming how many and the first ids (see `load_checked` to skip them)."""
        return self.load_checked(data, fields)[0]

    def load_checked(self, data: str | Path | None = None, fields: Fields | None = None,
                     skip_unreadable: bool = False) -> tuple[list[Problem], list[dict]]:
        """(problems, skipped rows): with `skip_unreadable`, rows whose gold cannot be read are left out and
        returned as {"id", "line", "gold", "reason"} so that a run can count and list them."""
        fields = fields or Fields()
        if self.generate is not None:
            if fields != Fields():
                raise ConfigError(f"task '{self.name}' generates its problems; --field does not apply")
            return self.generate(data), []
        if data is not None:
            rows, where, stem = read_rows(Path(data)), str(data), Path(data).stem
        elif self.source is None:
            raise DataError(f"task '{self.name}' has no problems of its own: pass --data FILE (JSONL, JSON or "
                            f"parquet), or use a named set (see `tts tasks`)")
        elif self.source.packaged:
            rows, where, stem = packaged(self.source.packaged), f"task {self.name}", self.name
        else:
            rows = from_hub(self.source.hub, self.source.config, self.source.split, self.name)
            where, stem = self.source.hub, self.name
        problems, unreadable = self._problems(rows, fields, where, stem)
        if unreadable and not skip_unreadable:
            first = ", ".join(f"{u['id']} ({u['gold'][:20]!r})" for u in unreadable[:3])
            raise DataError(f"{where}: {len(unreadable)} row(s) have a gold answer that cannot be read as one value "
                            f"(first: {first}); --skip-unreadable-golds runs the others and lists these")
        if not problems:
            raise DataError(f"{where}: no problems with a gold answer")
        # a --data file is often a slice on purpose; the set's own source should have its standard size
        size = self.source.size if self.source and data is None else None
        if size is not None and len(problems) != size:
            print(f"warning: {where}: {len(problems)} problems, but the standard '{self.name}' set has {size}",
                  file=sys.stderr)
        return check_ids(problems, where), unreadable

    def origin(self) -> str:
        """Where the task's problems come from when no --data is given."""
        src = self.source
        if self.generate is not None:
            return "generated"
        if src is None:
            return "--data FILE"
        return f"packaged:{src.packaged}" if src.packaged else f"hub:{src.hub}:{src.config or ''}:{src.split}"

    def _problems(self, rows: Rows, fields: Fields, where: str, stem: str) -> tuple[list[Problem], list[dict]]:
        """Problems from rows, and the rows whose gold cannot be read; a row without an id gets `stem-N` (N its
        row number)."""
        problems, no_gold, unreadable = [], [], []
        for number, row in rows:
            at = f"{where}:{number}"
            try:
                question, gold, meta = self.parse_row(row, fields, at)
            except UnreadableGold as e:
                unreadable.append({"id": problem_id(row, fields, f"{stem}-{number}"), "line": number,
                                   "gold": e.raw[:200],
                                   "reason": str(e)})
                continue
            if gold is None and not meta:  # a math row with no answer cannot be graded
                no_gold.append(number)
                continue
            problems.append(Problem(id=problem_id(row, fields, f"{stem}-{number}"), question=question, gold=gold,
                                    meta={"line": number, **meta}))
        if no_gold:
            print(f"warning: {where}: skipped {len(no_gold)} row(s) with no gold answer (rows "
                  f"{', '.join(map(str, no_gold[:10]))})", file=sys.stderr)
        return problems, unreadable


def _qa(gold_of):
    def parse(row: dict, fields: Fields, where: str) -> tuple[str, str | None, dict]:
        question, gold, written = qa_row(row, fields, where, gold_of)
        return question, gold, ({"gold_as_written": written} if written is not None and written != gold else {})
    return parse


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


def names() -> list[str]:
    return sorted(_TASKS)


_numeric, _latex = _qa(numeric_gold), _qa(latex_gold)
_word = partial(Task, prompt=gsm8k.PROMPT, extract=gsm8k.extract, grade=gsm8k.grade, parse_row=_numeric)
_math = partial(Task, prompt=math_task.PROMPT, extract=math_task.extract, grade=math_task.grade, parse_row=_latex,
                canonicalize=math_task.canonicalize, answer_cue="The final answer is \\boxed{")
_code = partial(Task, prompt=humaneval.PROMPT, extract=humaneval.extract, grade=humaneval.grade,
                parse_row=humaneval.parse_row, program=humaneval.program, example_calls=humaneval.example_calls,
                answer_cue=None, graded_by="test")

_TASKS = {t.name: t for t in [
    # Word problems with numeric answers: the last number / "The answer is N" / `#### N` conventions
    _word(name="gsm8k", source=Source(hub="openai/gsm8k", config="main", size=1319, packaged="gsm8k_test.jsonl"),
          about="GSM8K test split"),
    _word(name="svamp", source=Source(hub="ChilleD/SVAMP", split="train+test", size=1000), about="SVAMP, 1,000 rows"),
    _word(name="demo", source=Source(hub=None, packaged="demo_math.jsonl", size=20),
          about="20 team-written word problems for tests and demos"),
    _word(name="numeric", about="any word-problem file with numeric answers (--data, --field)"),
    # LaTeX answers, compared with math-verify
    _math(name="math500", source=Source(hub="HuggingFaceH4/MATH-500", size=500), about="MATH-500"),
    _math(name="aime24", source=Source(hub="HuggingFaceH4/aime_2024", split="train", size=30,
                                       packaged="aime24.jsonl"), about="AIME 2024 I and II"),
    _math(name="aime25", source=Source(hub="math-ai/aime25", size=30), about="AIME 2025 I and II"),
    _math(name="amc23", source=Source(hub="math-ai/amc23", size=40, packaged="amc23.jsonl"),
          about="AMC 2023"),
    _math(name="math", about="any MATH-style file: problem/answer, problem/solution with \\boxed{}, question/answer"),
    # Code, graded by running tests in the sandbox
    _code(name="humaneval", source=Source(hub="openai/openai_humaneval", size=164, packaged="humaneval.jsonl"),
          about="HumanEval"),
    Task("mbpp", mbpp.PROMPT, mbpp.extract, mbpp.grade, parse_row=mbpp.parse_row, program=mbpp.program,
         example_calls=mbpp.example_calls, answer_cue=None, graded_by="tests",
         source=Source(hub="google-research-datasets/mbpp", config="full", size=500), about="MBPP test split"),
    # An agent's request: its own messages, tools and response format; open-ended, so never graded
    Task("chat", chat.PROMPT, chat.extract, chat.grade, parse_row=chat.parse_row,
         read_for=chat.reader, merge=merge_calls, answer_cue=None, graded_by=None,
         about="open-ended chat (the server's default): tool calls and JSON voted in canonical form, text chosen by "
               "usc or medoid"),
    # Generated problems
    Task("countdown", "{question}", countdown.extract, countdown.grade, generate=countdown.load, answer_cue="Answer:",
         about="Countdown: always-solvable generated instances, checked exactly"),
    Task("tools", tool_qa.PROMPT, tool_qa.extract, tool_qa.grade, generate=tool_qa.load, tools=tool_qa.make_tools,
         answer_cue="Answer:",
         sim_responder=tool_qa.sim_responder, about="questions over tools with simulated latency (LLMCompiler, ReAct)"),
]}
