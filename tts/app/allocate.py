"""A run under a job-level token budget (`tts eval --budget-tokens-total N`): samples are allocated across problems
by tts/kit/allocation.py, instead of the same n for every problem.

Draws (k samples of one problem) are decided one at a time as slots free, so the engine is never left idle while a
round's last draws finish: up to `concurrency` draws are in flight. The decisions are a function of the draws'
results alone, never of their timing: draw j is decided on the results of the draws before it in decision order
that have been taken in, and a draw's results are taken in in that order (the run waits for the oldest draw in
flight when it must, never for whichever finishes first). Each decision is appended to allocation.jsonl before its
draw starts, with the token cap it reserves, and each draw to draws.jsonl when it finishes. A resumed run reads both
back, re-runs the logged draws that did not finish as they were decided and decides the rest as an uninterrupted
run would have. Reserved caps never exceed the budget left, so the run never spends past the total. results.jsonl
gets one row per problem when the allocation is over (the vote over all of the problem's samples).
"""
from __future__ import annotations

import asyncio
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

from tts.app.rows import ResultRow
from tts.app.runner import RESULTS, TRACE, _mark, drop_partial_line, finish_run
from tts.app.session import Session
from tts.kernel.budget import BudgetConfig
from tts.kernel.context import Context
from tts.kernel.errors import DataError
from tts.kernel.trace import json_line
from tts.kernel.types import Problem, Sample, TraceStats, Usage
from tts.kit.aggregate import vote_counts
from tts.kit.allocation import AllocationConfig, Draw, ProblemVotes, next_draw
from tts.strategies.samples import answer_from, canonical

DRAWS, ALLOCATION = "draws.jsonl", "allocation.jsonl"


class _Problem:
    """One problem's samples and usage across the draws taken in so far."""

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


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw[: raw.rfind(b"\n") + 1].decode("utf-8").splitlines()  # a line cut by a kill is dropped
    return [json.loads(line) for line in lines if line.strip()]


class _Ledger:
    """The decisions and the draws' results, in decision order; what the policy has taken in and what is reserved."""

    def __init__(self, run_dir: Path, alloc: AllocationConfig, state: dict[str, _Problem], task) -> None:
        drop_partial_line(run_dir / DRAWS)
        drop_partial_line(run_dir / ALLOCATION)
        self.logged = _read_lines(run_dir / ALLOCATION)
        if self.logged and "draw" not in self.logged[0]:
            raise DataError(f"{run_dir}: its allocation log was written in rounds by an older tts; resume it with "
                            "that version or start a new run")
        self.finished = {d["draw"]: d for d in _read_lines(run_dir / DRAWS) if d["id"] in state}
        self.alloc, self.state, self.task = alloc, state, task  # the task reads answers' classes
        self.decided: list[Draw] = []
        self.taken = 0  # draws whose results the policy has taken in (a prefix of `decided`)
        # each problem's votes as the policy sees them, read again only when one of its draws is taken in
        self.votes = {pid: ProblemVotes() for pid in state}

    def take(self, line: dict) -> None:
        """The next draw's results, in decision order."""
        p = self.state[line["id"]]
        p.add(line)
        self.votes[line["id"]] = ProblemVotes(votes=vote_counts(canonical(self.task, p.samples)),
                                              samples=p.attempts)
        self.taken += 1

    def busy(self) -> set[str]:
        return {d.problem for d in self.decided[self.taken:]}

    def spent(self) -> int:
        return sum(p.usage.completion_tokens for p in self.state.values())

    def available(self) -> int:
        return self.alloc.total_tokens - self.spent() - sum(d.cap for d in self.decided[self.taken:])

    def decide(self, max_tokens: int) -> Draw | None:
        j = len(self.decided)
        if j < len(self.logged):  # decided before the run was cut: kept as it was (the same as deciding again)
            line = self.logged[j]
            return Draw(problem=line["id"], samples=line["k"], cap=line["cap"])
        drawn = sum(len(p.samples) for p in self.state.values())
        return next_draw(self.votes, self.busy(), self.available(),
                         self.spent() / drawn if drawn else float(max_tokens), self.alloc)


async def run_allocated(session: Session, problems: list[Problem], run_dir: Path, config: dict,
                        alloc: AllocationConfig, *, concurrency: int = 8) -> dict:
    """The session's strategy is self-consistency; the run folder is already prepared (runner.prepare_run_dir)."""
    engine, task, sc_config, budget = session.engine, session.task, session.config, session.budget
    state = {p.id: _Problem(p) for p in problems}
    ledger = _Ledger(run_dir, alloc, state, task)
    _mark(run_dir, "start")
    seeds: dict[str, int] = {pid: 0 for pid in state}  # samples asked for per problem, in decision order
    running: dict[int, asyncio.Task] = {}
    last_print = 0.0
    with (run_dir / DRAWS).open("a") as draws, (run_dir / TRACE).open("a") as trace, \
            (run_dir / ALLOCATION).open("a") as log:
        async def draw(j: int, d: Draw, seed: int) -> dict:
            p = state[d.problem]
            cfg = sc_config.model_copy(update={"n": d.samples, "seed": seed, "early_stop": False})
            own = budget or BudgetConfig()
            limits = own.model_copy(update={"max_tokens": min(d.cap, own.max_tokens or d.cap)})
            solved = await session.solve(p.problem, trace_sink=trace, run=f"{p.problem.id}@draw{j}",
                                         budget=limits, config=cfg)
            row = solved.row
            line = {"draw": j, "id": p.problem.id, "k": d.samples, "samples": row.get("samples", []),
                    "usage": row["usage"], "seconds": row["seconds"], "finished_at": round(time.time(), 3),
                    **({"error": row["error"]} if "error" in row else {})}
            draws.write(json_line(line))
            draws.flush()
            return line

        async def take_in() -> None:
            j = ledger.taken
            ledger.take(ledger.finished.pop(j, None) or await running.pop(j))

        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    in_flight = len(ledger.decided) - ledger.taken
                    d = ledger.decide(sc_config.max_tokens) if in_flight < concurrency else None
                    if d is None:
                        if in_flight == 0:
                            break
                        await take_in()
                        continue
                    j = len(ledger.decided)
                    seed = sc_config.seed + seeds[d.problem]
                    seeds[d.problem] += d.samples
                    if j >= len(ledger.logged):
                        log.write(json_line({"draw": j, "id": d.problem, "k": d.samples, "cap": d.cap, "seed": seed,
                                             "spent": ledger.spent(), "taken_in": ledger.taken}))
                        log.flush()
                    ledger.decided.append(d)
                    if j not in ledger.finished:
                        running[j] = tg.create_task(draw(j, d, seed))
                    if time.monotonic() - last_print > 5.0:
                        last_print = time.monotonic()
                        print(f"draw {j}: {d.problem} +{d.samples}; {in_flight + 1} in flight; "
                              f"{ledger.spent():,} of {alloc.total_tokens:,} tokens spent", file=sys.stderr,
                              flush=True)
        except BaseExceptionGroup as group:  # only run-ending errors (an engine down) get here
            raise group.exceptions[0] from None
    print(f"allocation done: {len(ledger.decided)} draws; {ledger.spent():,} of {alloc.total_tokens:,} tokens spent",
          file=sys.stderr, flush=True)
    rows = []
    done_draws = _read_lines(run_dir / DRAWS)
    with (run_dir / RESULTS).open("w", encoding="utf-8") as results:
        for p in state.values():
            row = await _result(Context(engine, task=task), p, sc_config.vote)
            rows.append(row)
            results.write(json_line(row))
    return finish_run(run_dir, rows, config, engine, timed=done_draws + rows,
                      allocation={**alloc.model_dump(), "draws": len(ledger.decided), "concurrency": concurrency,
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
