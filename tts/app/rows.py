"""A result line's shape: one problem's outcome as results.jsonl stores it, typed where it is built.

Readers (report, resume, the viewer) read these lines back as plain dicts through `runner.read_finished`, so a
field added here must stay optional for lines written by earlier versions."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from tts.kernel.types import Answer, Sample, Usage

# Absent rather than null when empty: rows stay short, and `"error" in row` means the problem failed.
_OMIT_WHEN_NONE = ("error", "note", "stats", "text", "thinking_tokens")


class SampleRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    answer: str | None
    tokens: int
    status: str
    stats: dict[str, Any] | None = None
    text: str | None = None
    thinking_tokens: int | None = None

    @classmethod
    def of(cls, s: Sample) -> "SampleRow":
        return cls(index=s.index, answer=s.answer, tokens=s.completion_tokens, status=s.status,
                   stats=s.stats.model_dump() if s.stats is not None else None, text=s.text or None,
                   thinking_tokens=s.thinking_tokens or None)


class ResultRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    gold: str | None
    answer: str | None = None
    correct: bool | None = None
    votes: dict[str, int] = {}
    stopped_early: bool = False
    budget_exhausted: bool = False
    note: str | None = None
    semantic_entropy: float | None = None
    meta: dict[str, Any] = {}
    samples: tuple[SampleRow, ...] = ()
    usage: Usage
    seconds: float
    error: str | None = None

    @classmethod
    def solved(cls, problem_id: str, gold: str | None, answer: Answer, correct: bool | None, usage: Usage,
               seconds: float) -> "ResultRow":
        return cls(id=problem_id, gold=gold, answer=answer.answer, correct=correct, votes=answer.votes,
                   stopped_early=answer.stopped_early, budget_exhausted=answer.budget_exhausted, note=answer.note,
                   semantic_entropy=answer.semantic_entropy, meta=answer.meta,
                   samples=tuple(SampleRow.of(s) for s in answer.samples), usage=usage, seconds=seconds)

    @classmethod
    def failed(cls, problem_id: str, gold: str | None, error: str, usage: Usage, seconds: float) -> "ResultRow":
        return cls(id=problem_id, gold=gold, correct=False, error=error, usage=usage, seconds=seconds)

    def line(self) -> dict[str, Any]:
        """The dict written to results.jsonl (and returned by the API and server)."""
        out = self.model_dump(mode="json")
        for key in _OMIT_WHEN_NONE:
            if out.get(key) is None:
                out.pop(key, None)
        if self.error is not None:  # a failed problem has no vote to report
            for key in ("votes", "stopped_early", "budget_exhausted", "semantic_entropy", "meta", "samples"):
                out.pop(key, None)
        for s in out.get("samples", ()):
            for key in _OMIT_WHEN_NONE:
                if s.get(key) is None:
                    s.pop(key, None)
        return out
