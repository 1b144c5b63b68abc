"""A run under a job-level token budget (`tts eval --budget-tokens-total N`): samples are allocated across problems in
rounds by tts/kit/allocation.py, instead of the same n for every problem.

Every draw (k samples of one problem) is appended to draws.jsonl as it finishes and every round's decision to
allocation.jsonl, so a killed run resumes from its draws and takes the decisions it would have taken; results.jsonl
gets one row per problem when the allocation is over (the vote over all of the problem's samples).
"""
from __future__ import annotations

import asyncio
import inspect
import json
import time
from pathlib import Path
from typing import Any

from tts.app.rows import ResultRow
from tts.app.runner import RESULTS, TRACE, _mark, drop_partial_line, finish_run, solve_one
from tts.kernel.budget import BudgetConfig
from tts.kernel.context import Context
from tts.kernel.trace import json_line
from tts.kernel.types import Problem, Sample, TraceStats, Usage
from tts.kit.aggregate import vote_counts
from tts.kit.allocation import AllocationConfig, ProblemVotes, plan_round
from tts.strategies.samples import answer_from, canonical

DRAWS, ALLOCATION = "draws.jsonl", "allocation.jsonl"


class _Problem:
    """One problem's samples and usage across its draws."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.samples: list[Sample] = []
        self.usage = Usage()
        self.seconds = 0.0
        self.errors: list[str] = []
        self.attempts = 0  # samples asked for, failed draws included (a failing problem cannot loop forever)

    def add(self, draw: dict[str, Any]) -> None:
        for s in draw.get("samples", ()):
            stats = TraceStats(**s["stats"]) if s.get("stats") else None
            self.samples.append(Sample(index=len(self.samples), text=s.get("text") or "", answer=s.get("answer"),
                                       completion_tokens=s["tokens"], status=s["status"], stats=stats))
        self.attempts += draw["k"]
        if "error" in draw:
            self.errors.append(draw["error"])
        self.usage = self.usage + Usage(**draw["usage"])
        self.seconds += draw.get("seconds", 0.0)


def _read_draws(path: Path) -> list[dict]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw[: raw.rfind(b"\n") + 1].decode("utf-8").splitlines()  # a line cut by a kill is dropped
    return [json.loads(line) for line in lines if line.strip()]


def _votes(ctx: Context, p: _Problem) -> ProblemVotes:
    return ProblemVotes(votes=vote_counts(canonical(ctx, p.samples)), samples=p.attempts)


async def run_allocated(engine, task, spec, sc_config, problems: list[Problem], run_dir: Path, config: dict,
                        alloc: AllocationConfig, *, concurrency: int = 8, budget: BudgetConfig | None = None,
                        reasoning=None) -> dict:
    """`spec` is self-consistency's; the run folder is already prepared (runner.prepare_run_dir)."""
    state = {p.id: _Problem(p) for p in problems}
    drop_partial_line(run_dir / DRAWS)
    for draw in _read_draws(run_dir / DRAWS):
        if draw["id"] in state:
            state[draw["id"]].add(draw)
    _mark(run_dir, "start")
    gate = asyncio.Semaphore(concurrency)
    votes_ctx = Context(engine, task=task)  # reads answers' classes the task's way; it makes no call
    with (run_dir / DRAWS).open("a") as draws, (run_dir / TRACE).open("a") as trace, \
            (run_dir / ALLOCATION).open("a") as log:
        async def draw(p: _Problem, k: int, round_: int) -> None:
            async with gate:
                cfg = sc_config.model_copy(update={"n": k, "seed": sc_config.seed + len(p.samples),
                                                   "early_stop": False})
                solved = await solve_one(engine, task, spec, cfg, p.problem, budget or BudgetConfig(), trace,
                                         reasoning=reasoning, run=f"{p.problem.id}@round{round_}")
            row = solved.row
            line = {"id": p.problem.id, "round": round_, "k": k, "samples": row.get("samples", []), "usage": row["usage"],
                    "seconds": row["seconds"], **({"error": row["error"]} if "error" in row else {})}
            draws.write(json_line(line))
            draws.flush()
            p.add(line)

        round_ = 0
        while True:
            spent = sum(p.usage.completion_tokens for p in state.values())
            drawn = sum(len(p.samples) for p in state.values())
            # the first round tops every problem up to `initial`; later ones follow the policy
            plan = {pid: alloc.initial - p.attempts for pid, p in state.items() if p.attempts < alloc.initial}
            if not plan:
                plan = plan_round({pid: _votes(votes_ctx, p) for pid, p in state.items()}, alloc.total_tokens - spent,
                                  spent / drawn if drawn else float(sc_config.max_tokens), alloc)
            if not plan:
                break
            log.write(json_line({"round": round_, "spent": spent, "given": plan}))
            log.flush()
            try:
                async with asyncio.TaskGroup() as tg:
                    for pid, k in plan.items():
                        tg.create_task(draw(state[pid], k, round_))
            except BaseExceptionGroup as group:  # only run-ending errors (an engine down) get here
                raise group.exceptions[0] from None
            round_ += 1
    rows = []
    with (run_dir / RESULTS).open("w", encoding="utf-8") as results:
        for p in state.values():
            row = await _result(Context(engine, task=task), p, sc_config.vote)
            rows.append(row)
            results.write(json_line(row))
    return finish_run(run_dir, rows, config, engine,
                      allocation={**alloc.model_dump(), "rounds": round_,
                                  "samples_per_problem": sorted(p.attempts for p in state.values())})


async def _result(ctx: Context, p: _Problem, rule: str) -> dict:
    """The problem's row: the vote over all its draws' samples, as any sampling strategy's answer is made."""
    answer = answer_from(ctx, p.samples, rule, allocated_samples=len(p.samples))
    if p.errors:
        note = "; ".join(x for x in (answer.note, f"{len(p.errors)} draw(s) failed: {p.errors[0]}") if x)
        answer = answer.model_copy(update={"note": note})
    correct = ctx.task.grade(p.problem, answer.answer) if ctx.task.gradable(p.problem) else None
    if inspect.isawaitable(correct):
        correct = await correct
    row = ResultRow.solved(p.problem.id, p.problem.gold, answer, None if correct is None else bool(correct),
                           p.usage, round(p.seconds, 4)).line()
    row["finished_at"] = round(time.time(), 3)
    return row
