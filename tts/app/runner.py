"""Batch evaluation: many problems through one strategy, results written line by line, resumable.

A run folder holds config.json (what was asked), results.jsonl (one line per finished problem, flushed as it
finishes), trace.jsonl (every problem's events and DAG) and summary.json. --resume reads the finished ids, drops a
line cut short by a kill, and runs only the rest, so no problem is lost or counted twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tts.app.session import Session
from tts.kernel.engine import Engine
from tts.kernel.errors import ConfigError, DataError
from tts.kernel.trace import json_line
from tts.kernel.types import Problem

RESULTS, TRACE, SUMMARY, CONFIG = "results.jsonl", "trace.jsonl", "summary.json", "config.json"
# Options that must match for --resume to continue a run rather than mix two different ones.
IDENTITY = ("task", "data", "strategy", "strategy_config", "engine", "model", "seed", "budget", "price", "sim",
            "allocation", "traces", "judge_model", "judge_engine")
UNREADABLE = "unreadable_golds.jsonl"  # rows a run skipped because their gold cannot be read
RECORDED = "recorded_traces.jsonl"  # every completion of a run made with --record (engine replay serves them)
SEGMENTS = "segments.jsonl"  # one line per start and per clean end of the run: wall time across resumes


def read_finished(path: Path) -> dict[str, dict]:
    """Finished lines by problem id. A reader never writes: a trailing partial line (a kill mid-write, or a line
    being written by a run still going) is skipped, not cut off; `drop_partial_line` is the writer's part.
    A line that is not a result row is a DataError naming the file and line."""
    if not path.exists():
        return {}
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    raw = path.read_bytes()
    keep = raw[: raw.rfind(b"\n") + 1]
    done = {}
    for number, line in enumerate(keep.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise DataError(f"{path}:{number}: not a JSON line (a damaged results file)") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise DataError(f"{path}:{number}: not a result row (no problem id)")
        done[row["id"]] = row
    return done


def read_json(path: Path, what: str) -> dict:
    """A run folder's JSON file (config, summary) as a dict, or one DataError that names it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DataError(f"{path}: unreadable {what} ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: {what} is not a JSON object")
    return data


def drop_partial_line(path: Path) -> None:
    """Before appending to a resumed run: cut a last line that a kill left half-written."""
    if path.exists():
        raw = path.read_bytes()
        keep = raw.rfind(b"\n") + 1
        if keep != len(raw):
            with path.open("r+b") as f:
                f.truncate(keep)


def summarize(rows: list[dict], config: dict, wall_s: float) -> dict:
    n = len(rows)
    correct = sum(bool(r.get("correct")) for r in rows)
    # a row without a gold answer or tests has correct=None: it is not counted as wrong, it is counted apart
    ungraded = [r["id"] for r in rows if r.get("correct") is None and "error" not in r]
    graded = n - len(ungraded)
    usage = {k: sum(r["usage"][k] for r in rows) for k in ("prompt_tokens", "completion_tokens",
                                                           "cached_prompt_tokens", "calls")}
    # verification apart (rows written before it was recorded have none)
    for k in ("verify_prompt_tokens", "verify_completion_tokens", "verify_calls"):
        usage[k] = sum(r["usage"].get(k, 0) for r in rows)
    usage["max_prompt_tokens"] = max((r["usage"].get("max_prompt_tokens", 0) for r in rows), default=0)
    usage["usd"] = round(sum(r["usage"].get("usd", 0.0) for r in rows), 6)
    return {
        "problems": n, "correct": correct, "graded": graded, "accuracy": correct / graded if graded else None,
        "accuracy_ci95": wilson(correct, graded) if graded else None, "errors": sum("error" in r for r in rows),
        **({"ungraded": len(ungraded), "ungraded_ids": ungraded[:50]} if ungraded else {}),
        **({"unreadable_golds": config["unreadable_golds"]} if config.get("unreadable_golds") else {}),
        "stopped_early": sum(bool(r.get("stopped_early")) for r in rows),
        "budget_exhausted": sum(bool(r.get("budget_exhausted")) for r in rows),
        # samples a budget refused (status "budget"): a run cut short by its budget says by how much
        "budget_cut_samples": sum(s.get("status") == "budget" for r in rows for s in r.get("samples", ())),
        **usage, "wall_seconds": round(wall_s, 3), "config": config,
    }


def accuracy_line(summary: dict) -> str:
    """`0.700 (28/40, 95% CI 0.546-0.819)`, or why there is no accuracy; ungraded rows are named, not counted wrong."""
    if summary.get("accuracy") is None:
        return f"not graded (none of {summary['problems']} problems has a gold answer or tests)"
    lo, hi = summary["accuracy_ci95"]
    graded = summary.get("graded", summary["problems"])
    text = f"{summary['accuracy']:.3f} ({summary['correct']}/{graded}, 95% CI {lo:.3f}-{hi:.3f})"
    if summary.get("ungraded"):
        text += f", {summary['ungraded']} ungraded"
    if summary.get("unreadable_golds"):
        text += f"; {summary['unreadable_golds']} rows skipped (gold unreadable, listed in {UNREADABLE})"
    return text


def budget_line(summary: dict) -> str | None:
    """What the budget cut, when it cut anything: problems answered from fewer samples than asked for."""
    problems, samples = summary.get("budget_exhausted", 0), summary.get("budget_cut_samples", 0)
    if not problems and not samples:
        return None
    return (f"budget: {problems} of {summary['problems']} problems ran out of budget; {samples} samples were "
            f"refused (each such problem answered from the samples it had)")


def verification_line(summary: dict) -> str | None:
    """What judges and verifiers spent, when they spent anything (it is part of the totals, reported apart)."""
    if not summary.get("verify_calls"):
        return None
    return (f"verification: {summary['verify_calls']} calls, {summary['verify_prompt_tokens']} prompt and "
            f"{summary['verify_completion_tokens']} generated tokens (of the totals)")


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [0.0, 0.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def prepare_run_dir(run_dir: Path, config: dict, resume: bool) -> dict[str, dict]:
    """Create or reopen a run folder; on resume, check it is the same run and return its finished lines. Called
    before any engine starts, so that a run that cannot be written or resumed costs nothing."""
    config_path = run_dir / CONFIG
    if resume:
        if not config_path.exists():
            raise ConfigError(f"nothing to resume: {run_dir} has no {CONFIG}")
        old = read_json(config_path, "run config")
        diff = [k for k in IDENTITY if old.get(k) != config.get(k)]
        if diff:
            raise ConfigError(f"--resume: {run_dir} was started with different {', '.join(diff)}")
        done = read_finished(run_dir / RESULTS)
        try:
            drop_partial_line(run_dir / RESULTS)
        except OSError as e:
            raise DataError(f"cannot write run folder {run_dir}: {e.strerror or e}") from None
        return done
    if (run_dir / RESULTS).exists():
        raise ConfigError(f"run folder {run_dir} already has results: pass --resume to continue it, or another --run-id")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(config, indent=2))
        with (run_dir / RESULTS).open("a"):
            pass
    except OSError as e:
        raise DataError(f"cannot write run folder {run_dir}: {e.strerror or e}") from None
    return {}


def _mark(run_dir: Path, what: str) -> None:
    with (run_dir / SEGMENTS).open("a") as f:
        f.write(json_line({what: round(time.time(), 3)}))


def wall_seconds(run_dir: Path, rows: list[dict]) -> float:
    """Wall time of the run over all its segments (a killed segment ends at its last finished row)."""
    marks = []
    if (run_dir / SEGMENTS).exists():
        for line in (run_dir / SEGMENTS).read_text().splitlines():
            try:
                marks.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill
    starts = [m["start"] for m in marks if isinstance(m, dict) and "start" in m]
    ends = [m["end"] for m in marks if isinstance(m, dict) and "end" in m]
    finished = sorted(r["finished_at"] for r in rows if isinstance(r.get("finished_at"), (int, float)))
    total = 0.0
    for i, start in enumerate(starts):
        nxt = starts[i + 1] if i + 1 < len(starts) else float("inf")
        end = next((e for e in ends if start <= e < nxt), None)
        if end is None:
            end = max((f for f in finished if start <= f < nxt), default=start)
        total += end - start
    return total


@contextlib.contextmanager
def _batch_gc():
    """A batch run allocates many short-lived objects per branch (requests, completions, events); CPython 3.11's
    default young-generation threshold (700) runs the collector every branch or two, about a fifth of the
    orchestrator's CPU time on the simulator. Long-lived objects are frozen out of the scans and the threshold
    raised for the run, then restored: a library must not leave the host process's collector changed."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


async def run_eval(session: Session, problems: list[Problem], run_dir: Path, config: dict, *, resume: bool = False,
                   concurrency: int = 8, progress: bool = True, done: dict[str, dict] | None = None) -> dict:
    """Every problem through the session, `concurrency` at a time, each line written as it finishes. `done`: the
    finished lines, when the caller has already prepared the run folder (before starting its engine); otherwise
    the folder is prepared here."""
    if done is None:
        done = prepare_run_dir(run_dir, config, resume)
    todo = [p for p in problems if p.id not in done]
    rows = [done[p.id] for p in problems if p.id in done]
    correct = [sum(bool(r.get("correct")) for r in rows)]  # running count for the progress bar
    queue: asyncio.Queue[Problem] = asyncio.Queue()
    for p in todo:
        queue.put_nowait(p)
    _mark(run_dir, "start")
    bar = tqdm(total=len(problems), initial=len(rows), desc=f"{session.strategy.name}", unit="problem",
               disable=not progress)
    with (run_dir / RESULTS).open("a", encoding="utf-8") as results, (run_dir / TRACE).open("a") as trace, \
            _batch_gc():
        async def worker() -> None:
            while not queue.empty():
                problem = queue.get_nowait()
                row = (await session.solve(problem, trace_sink=trace)).row
                row["finished_at"] = round(time.time(), 3)
                results.write(json_line(row))
                results.flush()
                trace.flush()
                rows.append(row)
                correct[0] += bool(row.get("correct"))
                bar.update(1)
                bar.set_postfix(acc=f"{correct[0] / len(rows):.3f}")

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(max(1, min(concurrency, len(todo)))):
                    tg.create_task(worker())
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        finally:
            bar.close()
    return finish_run(run_dir, rows, config, session.engine)


def finish_run(run_dir: Path, rows: list[dict], config: dict, engine: Engine, *, timed: list[dict] | None = None,
               **extra: Any) -> dict:
    """Close a run segment: its end mark, and its summary (with `extra` and what the engine applied besides each
    request's own values, e.g. the model's generation_config defaults) written to summary.json. `timed`: lines
    whose `finished_at` say when a killed segment last made progress (default: the rows)."""
    _mark(run_dir, "end")
    summary = summarize(rows, config, wall_seconds(run_dir, timed if timed is not None else rows))
    summary.update(extra)
    summary["engine_applied"] = engine.describe()
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary
