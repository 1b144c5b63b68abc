"""`--executor ray`: spread a run's problems over Ray workers, each with its own engine (or all pointing at one
OpenAI-compatible endpoint), while the driver alone writes the results folder: rows come back to it as each batch
finishes and are appended once, so nothing is lost or written twice, and --resume works as in-process."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tts.kernel.errors import ConfigError


class _Worker:
    """A Ray actor: one engine, problems solved concurrently on its own event loop."""

    def __init__(self, spec_json: str, problems_json: str) -> None:
        from tts.app.spec import RunSpec
        from tts.kernel.types import Problem

        self.spec = RunSpec.model_validate_json(spec_json)
        self.problems = [Problem.model_validate(p) for p in json.loads(problems_json)]
        self.engine = None

    async def solve(self, ids: list[str]) -> list[dict]:
        from tts import tasks
        from tts.engine_adapters import open_engine
        from tts.app.session import Session

        spec = self.spec
        task = tasks.get(spec.problems.task)
        if self.engine is None:
            self.engine = await open_engine(spec.engine, problems=self.problems, price=spec.budget.price,
                                            responder=task.sim_responder(self.problems) if task.sim_responder else None)
        s, config = spec.strategy.resolve()
        session = Session(self.engine, task, s, config, spec.budget.per_problem, spec.strategy.reasoning)
        by_id = {p.id: p for p in self.problems}
        sem = asyncio.Semaphore(spec.executor.concurrency)

        async def one(pid: str) -> dict:
            async with sem:
                solved = await session.solve(by_id[pid])
                row = solved.row
                row["trace"] = solved.tracer.events
                return row

        async with asyncio.TaskGroup() as tg:
            jobs = [tg.create_task(one(pid)) for pid in ids]
        return [j.result() for j in jobs]


async def run_eval_ray(spec, problems, run_dir: Path, run_config: dict, *, workers: int = 2,
                       batch: int = 8, address: str | None = None) -> dict:
    """Batches go to workers as they free up. A worker that dies (its process killed, its node lost) is replaced and
    its batch re-run on the next free worker: its rows had not come back, so nothing is lost or written twice. A
    batch whose task fails twice becomes error rows; the job goes on."""
    try:
        import ray
        from ray.exceptions import RayActorError, RayTaskError
    except ImportError:
        raise ConfigError("--executor ray needs the `ray` extra (pip install 'tts-orchestrator[ray]')") from None
    from collections import deque

    from tts.app.rows import ResultRow
    from tts.app.runner import RESULTS, SUMMARY, TRACE, prepare_run_dir, summarize
    from tts.kernel.trace import json_line
    from tts.kernel.types import Usage

    done = prepare_run_dir(run_dir, run_config, spec.output.resume)
    rows = [done[p.id] for p in problems if p.id in done]
    todo = [p.id for p in problems if p.id not in done]
    gold = {p.id: p.gold for p in problems}
    ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
             ignore_reinit_error=True, log_to_driver=False, configure_logging=False)
    actor = ray.remote(num_cpus=1, num_gpus=spec.executor.worker_gpus)(_Worker)
    payload = json.dumps([p.model_dump() for p in problems])
    started = 0

    def new_worker():
        nonlocal started
        started += 1  # named, so that an operator (or a test) can find and kill one
        return actor.options(name=f"tts-{run_dir.name}-worker-{started}").remote(spec.model_dump_json(), payload)

    pool = [new_worker() for _ in range(workers)]
    t0 = time.monotonic()
    queue = deque(todo[i: i + batch] for i in range(0, len(todo), batch))
    failures: dict[str, int] = {}
    lost = errored = 0
    pending: dict = {}

    def submit(w: int) -> None:
        if queue:
            b = queue.popleft()
            pending[pool[w].solve.remote(b)] = (w, b)

    try:
        with (run_dir / RESULTS).open("a") as results, (run_dir / TRACE).open("a") as trace:
            def write(row: dict) -> None:
                for event in row.pop("trace", []):
                    trace.write(json_line(event))
                results.write(json_line(row))
                results.flush()
                rows.append(row)

            for w in range(workers):
                submit(w)
            while pending:
                ready, _ = await asyncio.to_thread(ray.wait, list(pending), num_returns=1)
                for ref in ready:
                    w, b = pending.pop(ref)
                    try:
                        out = await asyncio.to_thread(ray.get, ref)
                    except RayActorError:  # the worker died: a new one takes its place, the batch runs again
                        lost += 1
                        pool[w] = new_worker()
                        queue.appendleft(b)
                    except RayTaskError as e:  # the batch failed inside a live worker: once more, then error rows
                        key = b[0]
                        failures[key] = failures.get(key, 0) + 1
                        if failures[key] < 2:
                            queue.append(b)
                        else:
                            errored += len(b)
                            cause = str(e).strip().splitlines()[-1][:300]
                            for pid in b:
                                write(ResultRow.failed(pid, gold[pid], f"worker error: {cause}", Usage(), 0.0).line())
                    else:
                        for row in out:
                            write(row)
                    submit(w)
    finally:
        for a in pool:
            ray.kill(a)
    summary = summarize(rows, run_config, time.monotonic() - t0)
    summary["executor"] = {"kind": "ray", "workers": workers, "batch": batch, "workers_lost": lost,
                           "problems_failed_in_workers": errored}
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary
