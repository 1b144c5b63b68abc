"""From a data row to a Problem: which field is the question, which the gold answer, which the id.

A mapping (`Fields`) names fields or, for the question, a template over them (`"{body} {question}"`), in the spirit
of lm-eval's doc_to_text / doc_to_target. Without one, the common shapes of the public sets are recognised. A row
that carries context the question would drop (ASDiv's lowercase `body`) is refused, never silently cut."""
from __future__ import annotations

import string
from typing import Any

from pydantic import field_validator

from tts.kernel.errors import DataError, UnreadableGold
from tts.kernel.types import Frozen
from tts.kit.equivalence import last_boxed
from tts.tasks.extract import normalize_gold

# Fields that hold text a question refers to: a question mapped without them loses the story it asks about.
CONTEXT_FIELDS = ("body", "Body", "context", "Context", "passage", "story")
ID_FIELDS = ("id", "ID", "task_id", "unique_id", "idx", "problem_id")


class Fields(Frozen):
    question: str | None = None  # a field name, or a template such as "{Body} {Question}"
    answer: str | None = None
    id: str | None = None

    @field_validator("question", "answer", "id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name a field")
        if value is not None and "{" in value:  # a template: fields only, no conversion, format or lookup inside
            try:
                parts = list(string.Formatter().parse(value))
            except ValueError as e:
                raise ValueError(f"not a template ({e}): write fields as {{name}}") from None
            for _, name, spec, conversion in parts:
                if name is not None and (spec or conversion or not name or any(c in name for c in ".[]")):
                    raise ValueError(f"'{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}'"
                                     f" is not a plain field: a template names fields only, as {{name}}")
        return value

    def used(self) -> set[str]:
        """The row fields this mapping reads."""
        names = set()
        for value in (self.question, self.answer, self.id):
            if value is not None:
                names |= referenced(value)
        return names


def referenced(template: str) -> set[str]:
    """The fields a value names: `{a} {b}` names a and b; a plain value names itself."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:
        return {template}
    return names or {template}


def render(template: str, row: dict, where: str) -> str:
    names = referenced(template)
    missing = [n for n in names if n not in row]
    if missing:
        raise DataError(f"{where}: no field '{missing[0]}' (fields: {', '.join(sorted(map(str, row))[:12])})")
    if names == {template}:
        return _text(row[template])
    return template.format(**{n: _text(row[n]) for n in names}).strip()


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def auto_question(row: dict, where: str) -> tuple[str, set[str]]:
    """The question of a row in a known shape, and the fields it used."""
    if "Body" in row and "Question" in row:  # SVAMP
        return f"{_text(row['Body'])} {_text(row['Question'])}", {"Body", "Question"}
    for name in ("problem", "question", "input", "prompt", "text"):
        if isinstance(row.get(name), str):
            return row[name], {name}
    raise DataError(f"{where}: no question field (looked for problem, question, input, prompt, text; map one with "
                    f"--field question=NAME)")


ANSWER_FIELDS = ("answer", "Answer", "target", "final_answer", "solution")


def auto_answer(row: dict) -> tuple[Any, str] | None:
    for name in ANSWER_FIELDS:
        if row.get(name) not in (None, ""):
            return row[name], name
    return None


def guard_context(row: dict, used: set[str], where: str) -> None:
    dropped = [f for f in CONTEXT_FIELDS if f in row and f not in used and isinstance(row[f], str) and row[f].strip()]
    if dropped:
        f = dropped[0]
        raise DataError(f"{where}: the row has a '{f}' field that the question leaves out (the model would not see "
                        f"the text the question refers to); map it, e.g. --field question='{{{f}}} {{question}}'")


def numeric_gold(value: Any) -> str | None:
    text = _text(value)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    return normalize_gold(text)


def latex_gold(value: Any) -> str | None:
    text = _text(value)
    if "####" in text:
        return text.rsplit("####", 1)[1].strip() or None
    if "\\boxed" in text:
        return last_boxed(text)
    return text.strip().strip("$").strip() or None


def problem_id(row: dict, fields: Fields, default: str) -> str:
    if fields.id is not None:
        if fields.id not in row:
            raise DataError(f"{default}: no id field '{fields.id}'")
        return _text(row[fields.id])
    return next((_text(row[f]) for f in ID_FIELDS if row.get(f) not in (None, "")), default)


def qa_row(row: dict, fields: Fields, where: str, gold_of) -> tuple[str, str | None, str | None]:
    """(question, gold, the gold as written) of a math row; gold None when the row has no answer to grade."""
    if fields.question is not None:
        question, used = render(fields.question, row, where), fields.used()
    else:
        question, used = auto_question(row, where)
        used |= fields.used()
    guard_context(row, used, where)
    if fields.answer is not None:
        if fields.answer not in row:
            raise DataError(f"{where}: no answer field '{fields.answer}'")
        raw, name = row[fields.answer], fields.answer
    else:
        found = auto_answer(row)
        if found is None and not any(f in row for f in ANSWER_FIELDS):
            raise DataError(f"{where}: missing an answer field (looked for {', '.join(ANSWER_FIELDS)}; map one with "
                            f"--field answer=NAME)")
        raw, name = found if found else (None, None)
    if raw in (None, ""):
        return question, None, None  # present but empty: a row that cannot be graded, skipped with a warning
    if name == "solution" and "####" not in str(raw):  # a worked solution: the gold is its last \boxed{}
        raw = last_boxed(str(raw))
        if raw is None:
            raise DataError(f"{where}: missing a \\boxed{{}} answer in 'solution'")
    gold = gold_of(raw)
    if gold is None:
        raise UnreadableGold(f"{where}: cannot read a gold answer from {_text(raw)[-60:]!r}", _text(raw))
    written = _text(raw)
    return question, gold, written.rsplit("####", 1)[1].strip() if "####" in written else written
