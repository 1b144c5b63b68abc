"""What one run is: the task, data, strategy, engine, budget and executor a user asked for (CLI flags, a TOML job's
tables, or a Ray worker's copy), checked, and turned into a strategy config through the one resolver."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tts import strategies
from tts.kernel.budget import BudgetConfig, Price
from tts.kernel.errors import ConfigError
from tts.kit.prune import PruneConfig
from tts.kernel.reasoning import ReasoningConfig
from tts.tasks.mapping import Fields


class RunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str = "gsm8k"
    data: Path | None = None
    fields: Fields | None = None  # which row field is the question / answer / id (a template for the question)
    strategy: str = "self-consistency"
    engine: str | None = None
    model: str | None = None
    base_url: str | list[str] | None = None  # several: replicas of one model behind a routing pool
    route: str | None = None  # the pool's routing: affinity (default), least-loaded, round-robin
    request_timeout: float | None = Field(None, gt=0)  # engine openai: seconds to wait for a response
    replica_deadline: float | None = Field(None, gt=0)  # a pool: seconds before a call is retried on another replica
    slow_factor: float | None = Field(None, gt=1)  # a pool: how much slower than its peers a replica may be
    engine_args: dict[str, Any] = {}  # vLLM engine arguments by vLLM's names (--engine-arg)
    request_args: dict[str, Any] = {}  # per-request extras: vLLM SamplingParams / an OpenAI server's extra_body
    n: int | None = Field(None, ge=1, le=16_384)
    limit: int | None = Field(None, ge=0)
    skip_unreadable_golds: bool = False  # run the rows whose gold reads; count and list the others
    seed: int = 0
    temperature: float | None = Field(None, ge=0.0)
    max_tokens: int | None = Field(None, ge=1)
    early_stop: bool | None = None
    concurrency: int = Field(8, ge=1, le=4096)
    output: Path = Path("results")
    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a folder name, never a path
    resume: bool = False
    budget_tokens: int | None = Field(None, ge=1)
    budget_calls: int | None = Field(None, ge=1)
    budget_seconds: float | None = Field(None, gt=0)
    budget_usd: float | None = Field(None, gt=0)
    # one budget for the whole run, allocated across problems in rounds (tts/kit/allocation.py); n caps a problem
    budget_tokens_total: int | None = Field(None, ge=1)
    price: str | None = None  # "PROMPT,COMPLETION[,CACHED]" USD per million tokens, for the money budget
    # None: the engine's own default (0.7, 0.001 s); set for an engine that has no such option, it is an error
    sim_accuracy: float | None = Field(None, ge=0.0, le=1.0)
    sim_latency: float | None = Field(None, ge=0.0)  # the simulator's, and the replay's, seconds per token
    traces: Path | None = None  # engine replay: the recorded traces to serve
    record: bool = False  # record every completion into the run folder (recorded_traces.jsonl), for replays
    # pruning's settings are declared once, in PruneConfig: `true` means its defaults, a table sets some of them
    prune: PruneConfig | None = None
    # a reasoning model: thinking split from answers (`true` = <think> tags), optionally under a thinking budget
    reasoning: ReasoningConfig | None = None
    executor: str = "local"  # or "ray": problems spread over Ray workers
    workers: int = Field(2, ge=1, le=1024)
    worker_gpus: float = Field(0.0, ge=0.0)  # GPUs each Ray worker (and its engine) holds; 1 = one engine per GPU
    ray_address: str | None = None
    options: dict[str, Any] = {}

    @field_validator("prune", "reasoning", mode="before")
    @classmethod
    def _on_off(cls, value, info):
        if value is True:
            return PruneConfig() if info.field_name == "prune" else ReasoningConfig()
        return None if value is False else value

    def engine_options(self) -> dict[str, Any]:
        return dict(model=self.model, base_url=self.base_url, route=self.route, seed=self.seed, accuracy=self.sim_accuracy,
                    timeout_s=self.request_timeout, deadline_s=self.replica_deadline, slow_factor=self.slow_factor,
                    latency_per_token_s=self.sim_latency, traces=self.traces, engine_args=self.engine_args,
                    request_args=self.request_args)

    def budget(self) -> BudgetConfig:
        return BudgetConfig(max_tokens=self.budget_tokens, max_calls=self.budget_calls,
                            max_seconds=self.budget_seconds, max_usd=self.budget_usd)

    def allocation(self):
        """The job-level budget's settings, or None for a run that gives every problem the same n."""
        from tts.kit.allocation import AllocationConfig

        if self.budget_tokens_total is None:
            return None
        from tts.strategies.compose import is_composition

        if is_composition(self.strategy) or strategies.get(self.strategy).name != "self-consistency":
            raise ConfigError("--budget-tokens-total allocates samples across problems: it applies to strategy "
                              "self-consistency (sc)")
        if self.executor != "local":
            raise ConfigError("--budget-tokens-total runs on the local executor")
        return AllocationConfig(total_tokens=self.budget_tokens_total, max_samples=self.n or 16)

    def engine_price(self) -> Price | None:
        if self.price is None:
            if self.budget_usd is not None:
                raise ConfigError("--budget-usd needs --price PROMPT,COMPLETION (USD per million tokens)")
            return None
        return parse_price(self.price)


# CLI flags that build one RunSpec field together (--prune with --prune-opt, --reasoning with its options, ...)
ASSEMBLED_FROM = ("option", "prune", "prune_opt", "field", "engine_arg", "request_arg", "reasoning", "reasoning_opt",
                  "thinking_budget")


def parse_option(text: str, flag: str = "--option") -> tuple[str, Any]:
    """KEY=VALUE, the value read as JSON where it is JSON (numbers, booleans, tables), else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{flag} wants KEY=VALUE, got '{text}'")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def from_flags(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """`tts eval`'s flags as (RunSpec fields, the fields assembled from several flags, strategy options); only
    what was given is assembled, so an absent flag leaves a job file's value standing. ValueError: a bad KEY=VALUE."""
    p = params
    given = {k: v for k, v in p.items() if k not in ("ctx", "config", "progress", *ASSEMBLED_FROM)}
    urls = p.get("base_url") or []
    given["base_url"] = urls[0] if len(urls) == 1 else (list(urls) or None)  # several: a replica pool
    options = dict(parse_option(o) for o in p.get("option") or [])
    thinking = dict(parse_option(o, "--reasoning-opt") for o in p.get("reasoning_opt") or [])
    if p.get("thinking_budget") is not None:
        thinking["thinking_budget"] = p["thinking_budget"]
    prune_opts = dict(parse_option(o, "--prune-opt") for o in p.get("prune_opt") or [])
    assembled = {"prune": prune_opts or (True if p.get("prune") else None),
                 "fields": {k: str(v) for k, v in (parse_option(f, "--field") for f in p.get("field") or [])},
                 "reasoning": thinking or (True if p.get("reasoning") else None),
                 "engine_args": dict(parse_option(a, "--engine-arg") for a in p.get("engine_arg") or []),
                 "request_args": dict(parse_option(a, "--request-arg") for a in p.get("request_arg") or [])}
    assembled = {k: v for k, v in assembled.items() if v}
    given.update(assembled)
    return given, assembled, options


def make_spec(fields: dict[str, Any], where: str = "") -> RunSpec:
    """A RunSpec from CLI or job-file fields; a bad value is one ConfigError naming the option."""
    try:
        return RunSpec(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(map(str, err["loc"])) or "option"
        name = key if where else "--" + key.replace("_", "-")  # a job file's key, or the CLI flag
        flags = {"prune": "--prune-opt", "fields": "--field", "reasoning": "--reasoning-opt"}
        if not where and err["loc"][0] in flags and len(err["loc"]) > 1:
            name = f"{flags[err['loc'][0]]} {err['loc'][1]}"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}{name}: unknown setting") from None
        value = err.get("input")
        shown = f" (got {value!r})" if isinstance(value, (int, float, str)) and len(repr(value)) < 60 else ""
        raise ConfigError(f"{where}{name}: {err['msg']}{shown}") from None


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


def strategy_config(spec: RunSpec):
    """The run's strategy and config, through the one resolver every front door uses."""
    from tts.app.session import resolve_strategy
    from tts.strategies.compose import is_composition

    composed = is_composition(spec.strategy)
    prune = spec.prune
    if prune is not None:
        if composed:
            raise ConfigError("--prune applies to a single strategy; inside a composition write sc(prune='step')")
        s = strategies.get(spec.strategy)
        if "prune" not in s.config.model_fields:
            raise ConfigError(f"--prune does not apply to strategy '{s.name}' (it applies to: self-consistency, pdr, sr)")
    if composed:
        return resolve_strategy(spec.strategy)
    s = strategies.get(spec.strategy)
    # CLI flags (-n, --temperature, ...) apply where the strategy has them; -o options win over them
    flags = {"n": spec.n, "temperature": spec.temperature, "max_tokens": spec.max_tokens, "seed": spec.seed,
             "early_stop": spec.early_stop, "prune": prune}
    merged = {k: v for k, v in flags.items() if k in s.config.model_fields} | spec.options
    return resolve_strategy(spec.strategy, merged)
