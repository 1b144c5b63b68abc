"""Spawn/join formats for APR, kept apart from the scheduling in strategies/apr.py.

A parser tells the scheduler how the parent asks for children (its instructions and stop string), how to read a
spawn block from the parent's text (robust to malformed output: a block that cannot be read becomes an error
reported back to the parent), what prompt a child continues from, and how results are joined back.
- "xml": for any instruct model, taught by its prompt: <spawn><task limit="N">...</task>...</spawn>.
- "apr": the markers of the APR paper's trained Countdown models (<Calling Sub Searches> ... <Start Sub Search k at
  level L> Moving to Node #... <End Calling Sub Searches>), children start from their "Moving to Node" line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ChildSpec:
    instruction: str
    limit: int | None = None


@dataclass(frozen=True)
class SpawnBlock:
    children: tuple[ChildSpec, ...]
    error: str | None = None  # set when the block was found but could not be read


class XmlSpawn:
    name = "xml"
    open, close = "<spawn>", "</spawn>"
    stop = ("</spawn>",)
    instructions = (
        "\n\nYou may split the work into independent subtasks that helpers solve in parallel. To do so, write:\n"
        "<spawn>\n<task>a self-contained subtask</task>\n<task>another subtask</task>\n</spawn>\n"
        "then stop. Each helper sees everything above and answers only its subtask; their results come back in a "
        "<join> block, after which you continue and give the final answer."
    )
    _task = re.compile(r"<task(?:\s+limit\s*=\s*\"?(\d+)\"?)?\s*>(.*?)(?:</task>|(?=<task)|$)", re.DOTALL)

    def parse(self, text: str, finish_reason: str | None) -> SpawnBlock | None:
        start = text.rfind(self.open)
        if start < 0 or finish_reason != "stop":
            return None
        body = text[start + len(self.open):]
        children = tuple(ChildSpec(m.group(2).strip(), int(m.group(1)) if m.group(1) else None)
                         for m in self._task.finditer(body) if m.group(2).strip())
        if not children:
            return SpawnBlock((), error="no <task>...</task> inside <spawn>; write one <task> per subtask")
        return SpawnBlock(children)

    def resume_text(self) -> str:
        return self.close

    def own_text(self, text: str) -> str:
        """The thread's own words: join blocks (children's results) removed, so an answer is read from the parent."""
        return re.sub(r"<join>.*?</join>", "", text, flags=re.DOTALL)

    def child_prompt(self, spec: ChildSpec, index: int) -> str:
        return (f"You are helper {index + 1}. Solve only this subtask, briefly, and end with 'Result: ...'.\n"
                f"Subtask: {spec.instruction}")

    def join(self, results: list[str], error: str | None = None) -> str:
        if error:
            return f"\n<join>\n<error>{error}</error>\n</join>\n"
        body = "\n".join(f"<result task=\"{i + 1}\">{r}</result>" for i, r in enumerate(results))
        return f"\n<join>\n{body}\n</join>\n"


class AprSpawn:
    name = "apr"
    stop = ("<End Calling Sub Searches>",)
    instructions = ""  # the trained models know their format
    _start = re.compile(r"<Start Sub Search (\d+) at level (\d+)>\s*(.*)")

    def parse(self, text: str, finish_reason: str | None) -> SpawnBlock | None:
        start = text.rfind("<Calling Sub Searches>")
        if start < 0 or finish_reason != "stop":
            return None
        lines = [self._start.match(line.strip()) for line in text[start:].splitlines()[1:]]
        children = tuple(ChildSpec(m.group(3).strip()) for m in lines if m and m.group(3).strip())
        if not children:
            return SpawnBlock((), error="no <Start Sub Search k at level L> line in the call")
        return SpawnBlock(children)

    def resume_text(self) -> str:
        return "<End Calling Sub Searches>\n"

    def own_text(self, text: str) -> str:
        return re.sub(r"<Sub Searches>.*?<End Sub Searches>", "", text, flags=re.DOTALL)

    def child_prompt(self, spec: ChildSpec, index: int) -> str:
        return spec.instruction + "\n"

    def join(self, results: list[str], error: str | None = None) -> str:
        if error:
            return f"<Sub Searches>\n<Error>{error}</Error>\n<End Sub Searches>\n"
        body = "".join(f"<Sub Search {i} Result>\n{r}\n" for i, r in enumerate(results))
        return f"<Sub Searches>\n{body}<End Sub Searches>\n"


PARSERS = {"xml": XmlSpawn(), "apr": AprSpawn()}
