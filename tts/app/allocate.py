"""A run under a job-level token budget (`tts eval --budget-tokens-total N`): samples are allocated across problems in
rounds by tts/kit/allocation.py, instead of the same n for every problem.

Every draw (k samples of one problem) is appended to draws.jsonl as it finishes and every round's decision to
allocation.jsonl before its draws start. A resumed run reads both back: it finishes the draws of the round that was
cut short, as that round's decision gave them, and plans the next rounds from the state an uninterrupted run would
have had, so it takes the same decisions. Each draw may spend at most its share of what the round started with
(the budget left over the samples planned, times its own): the run never spends past the total, and the cap is
decided at the round's start, so it is the same whether the run was interrupted or not. results.jsonl gets one row
per problem when the allocation is over (the vote over all of the problem's samples).
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


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw[: raw.rfind(b"\n") + 1].decode("utf-8").splitlines()  # a line cut by a kill is dropped
    return [json.loads(line) for line in lines if line.strip()]


def _votes(ctx: Context, p: _Problem) -> ProblemVotes:
    return ProblemVotes(votes=vote_counts(canonical(ctx, p.samples)), samples=p.attempts)


async def run_allocated(session: Session, problems: list[Problem], run_dir: Path, config: dict,
                        alloc: AllocationConfig, *, concurrency: int = 8) -> dict:
    """The session's strategy is self-consistency; the run folder is already prepared (runner.prepare_run_dir)."""
    engine, task, sc_config, budget = session.engine, session.task, session.config, session.budget
    state = {p.id: _Problem(p) for p in problems}
    drop_partial_line(run_dir / DRAWS)
    drop_partial_line(run_dir / ALLOCATION)
    done_draws = _read_lines(run_dir / DRAWS)
    for d in done_draws:
        if d["id"] in state:
            state[d["id"]].add(d)
    logged = _read_lines(run_dir / ALLOCATION)
    finished = {(d["id"], d["round"]) for d in done_draws}
    # the first logged round with draws missing is where the run was cut (a kill leaves at most that one); the log
    # is kept up to it, and the run goes on from there as it would have
    cut = next((line for line in logged if any((pid, line["round"]) not in finished for pid in line["given"]
                                                if pid in state)), None)
    if cut is not None:
        logged = [line for line in logged if line["round"] <= cut["round"]]
        (run_dir / ALLOCATION).write_text("".join(json_line(line) for line in logged))
    _mark(run_dir, "start")
    gate = asyncio.Semaphore(concurrency)
    votes_ctx = Context(engine, task=task)  # reads answers' classes the task's way; it makes no call
    with (run_dir / DRAWS).open("a") as draws, (run_dir / TRACE).open("a") as trace, \
            (run_dir / ALLOCATION).open("a") as log:
        async def draw(p: _Problem, k: int, round_: int, cap: int) -> None:
            async with gate:
                cfg = sc_config.model_copy(update={"n": k, "seed": sc_config.seed + len(p.samples),
                                                   "early_stop": False})
                own = budget or BudgetConfig()
                limits = own.model_copy(update={"max_tokens": min(cap, own.max_tokens or cap)})
                solved = await session.solve(p.problem, trace_sink=trace, run=f"{p.problem.id}@round{round_}",
                                             budget=limits, config=cfg)
            row = solved.row
            line = {"id": p.problem.id, "round": round_, "k": k, "samples": row.get("samples", []), "usage": row["usage"],
                    "seconds": row["seconds"], "finished_at": round(time.time(), 3),
                    **({"error": row["error"]} if "error" in row else {})}
            done_draws.append(line)
            draws.write(json_line(line))
            draws.flush()
            p.add(line)

        round_ = logged[-1]["round"] + 1 if logged else 0
        resumed = None
        if cut is not None:  # a resumed run: the round that was cut short keeps its decision; its missing draws run
            round_ = cut["round"]
            resumed = {pid: k for pid, k in cut["given"].items() if pid in state and (pid, round_) not in finished}
            resumed_share = cut.get("per_sample", (alloc.total_tokens - cut["spent"]) // max(
                1, sum(cut["given"].values())))
        while True:
            spent = sum(p.usage.completion_tokens for p in state.values())
            drawn = sum(len(p.samples) for p in state.values())
            if resumed is not None:
                plan, per_sample, resumed = resumed, resumed_share, None
            else:
                # the first round tops every problem up to `initial`; later ones follow the policy
                plan = {pid: alloc.initial - p.attempts for pid, p in state.items() if p.attempts < alloc.initial}
                if not plan:
                    plan = plan_round({pid: _votes(votes_ctx, p) for pid, p in state.items()},
                                      alloc.total_tokens - spent,
                                      spent / drawn if drawn else float(sc_config.max_tokens), alloc)
                # each sample's share of what is left: a draw may spend its share times its samples (decided
                # now and logged, so that a resumed round gives the same shares)
                per_sample = max(0, alloc.total_tokens - spent) // max(1, sum(plan.values()))
                if not plan or per_sample < 1:
                    break
                log.write(json_line({"round": round_, "spent": spent, "given": plan, "per_sample": per_sample}))
                log.flush()
            print(f"round {round_}: {len(plan)} problems, {sum(plan.values())} samples; {spent:,} of "
                  f"{alloc.total_tokens:,} tokens spent", file=sys.stderr, flush=True)
            try:
                async with asyncio.TaskGroup() as tg:
                    for pid, k in plan.items():
                        tg.create_task(draw(state[pid], k, round_, per_sample * k))
            except BaseExceptionGroup as group:  # only run-ending errors (an engine down) get here
                raise group.exceptions[0] from None
            round_ += 1
    rows = []
    with (run_dir / RESULTS).open("w", encoding="utf-8") as results:
        for p in state.values():
            row = await _result(Context(engine, task=task), p, sc_config.vote)
            rows.append(row)
            results.write(json_line(row))
    return finish_run(run_dir, rows, config, engine, timed=done_draws + rows,
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
