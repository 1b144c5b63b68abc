"""What one run is, as one typed spec made of the specs the lower floors own: the problems (task, data, field
mapping, limit), the strategy (a name or composition, its options, reasoning-model handling), the engine (the engine
kinds' own specs, discriminated by `kind`), the budget, the run folder and the executor.

Users write it in one flat vocabulary, the `tts eval` flags (`--engine sim --sim-accuracy 0.8`), or as a job file's
keys, flat or in tables named like the spec's parts (`[engine] kind = "sim"`, `accuracy = 0.8`). `make_spec` checks
it all before anything starts: an option that does not apply to the chosen engine or strategy is one error line,
never dropped."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tts import strategies
from tts.engine_adapters import EngineSpec, engine_spec
from tts.kernel.budget import BudgetConfig, Price
from tts.kernel.errors import ConfigError
from tts.kernel.types import Frozen
from tts.kit.prune import PruneConfig
from tts.kernel.reasoning import ReasoningConfig
from tts.tasks.mapping import Fields


class Problems(Frozen):
    task: str = "gsm8k"
    data: Path | None = None  # default: the set's packaged file, else the hub
    fields: Fields | None = None  # which row field is the question / answer / id (a template for the question)
    limit: int | None = Field(None, ge=0)
    skip_unreadable_golds: bool = False  # run the rows whose gold reads; count and list the others


class StrategyChoice(Frozen):
    name: str = "self-consistency"  # a registered strategy, an alias, or a composition (`sc8 | pdr(rounds=1)`)
    options: dict[str, Any] = {}  # the strategy's config fields, checked by its config model
    reasoning: ReasoningConfig | None = None  # a reasoning model: thinking split from answers, a thinking budget

    def resolve(self):
        """(StrategySpec, its checked config), through the one resolver every front door uses."""
        from tts.app.session import resolve_strategy

        return resolve_strategy(self.name, self.options)


class RunBudget(Frozen):
    per_problem: BudgetConfig = BudgetConfig()
    total_tokens: int | None = Field(None, ge=1)  # one budget for the whole run, allocated across problems (sc)
    max_samples: int = Field(16, ge=1)  # a problem's cap under the whole-run budget (-n)
    price: Price | None = None  # USD per million tokens, for money budgets and usage reports


class Output(Frozen):
    folder: Path = Path("results")
    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a folder name, never a path
    resume: bool = False
    record: bool = False  # every completion into the run folder (recorded_traces.jsonl), for replays


class Executor(Frozen):
    kind: Literal["local", "ray"] = "local"
    concurrency: int = Field(8, ge=1, le=4096)  # problems in flight (per Ray worker)
    workers: int = Field(2, ge=1, le=1024)
    worker_gpus: float = Field(0.0, ge=0.0)  # GPUs each Ray worker (and its engine) holds; 1 = one engine per GPU
    ray_address: str | None = None


class RunSpec(Frozen):
    problems: Problems = Problems()
    strategy: StrategyChoice = StrategyChoice()
    engine: Annotated[EngineSpec, Field(discriminator="kind")]
    # the engine judges and verifiers call (a bigger model, say); None: the policy's own engine judges
    judge: Annotated[EngineSpec, Field(discriminator="kind")] | None = None
    budget: RunBudget = RunBudget()
    output: Output = Output()
    executor: Executor = Executor()
    seed: int = 0

    def allocation(self):
        """The job-level budget's settings, or None for a run that gives every problem the same n."""
        from tts.kit.allocation import AllocationConfig

        if self.budget.total_tokens is None:
            return None
        return AllocationConfig(total_tokens=self.budget.total_tokens, max_samples=self.budget.max_samples)

    def model_label(self) -> str | None:
        """The model as the user named it (a local model name, a served name), for run folders and reports."""
        return getattr(self.engine, "name", None) or (self.engine.model if self.engine.kind == "openai" else None)


class RunFlags(BaseModel):
    """The flat vocabulary users write a run in: `tts eval`'s flags, a job file's keys. Checked field by field here
    (a bad value names its flag), then built into a RunSpec by `make_spec`."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str = "gsm8k"
    data: Path | None = None
    fields: Fields | None = None
    strategy: str = "self-consistency"
    engine: str | None = None
    model: str | None = None
    judge_model: str | None = None  # the model judges and verifiers ask (same engine kind and server as --model)
    judge_engine: str | None = None  # the judge's engine kind when it differs from the policy's (a replayed policy)
    base_url: str | list[str] | None = None  # several: replicas of one model behind a routing pool
    route: str | None = None
    request_timeout: float | None = Field(None, gt=0)
    replica_deadline: float | None = Field(None, gt=0)
    slow_factor: float | None = Field(None, gt=1)
    engine_args: dict[str, Any] = {}
    request_args: dict[str, Any] = {}
    n: int | None = Field(None, ge=1, le=16_384)
    limit: int | None = Field(None, ge=0)
    skip_unreadable_golds: bool = False
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
    budget_tokens_total: int | None = Field(None, ge=1)
    price: str | None = None  # "PROMPT,COMPLETION[,CACHED]" USD per million tokens
    sim_accuracy: float | None = Field(None, ge=0.0, le=1.0)
    sim_latency: float | None = Field(None, ge=0.0)
    traces: Path | None = None
    record: bool = False
    prune: PruneConfig | None = None  # `true` means its defaults, a table sets some of them
    reasoning: ReasoningConfig | None = None  # `true` = <think> tags
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, le=1024)
    worker_gpus: float = Field(0.0, ge=0.0)
    ray_address: str | None = None
    options: dict[str, Any] = {}

    @field_validator("prune", "reasoning", mode="before")
    @classmethod
    def _on_off(cls, value, info):
        if value is True:
            return PruneConfig() if info.field_name == "prune" else ReasoningConfig()
        return None if value is False else value


# a job file's tables, named like RunSpec's parts: each key of a table and the flag it stands for
TABLES: dict[str, dict[str, str]] = {
    "problems": {k: k for k in ("task", "data", "fields", "limit", "skip_unreadable_golds")},
    "strategy": {"name": "strategy", **{k: k for k in ("n", "temperature", "max_tokens", "early_stop", "prune",
                                                       "reasoning", "options")}},
    "engine": {"kind": "engine", "accuracy": "sim_accuracy", "latency_per_token_s": "sim_latency",
               "timeout_s": "request_timeout", "deadline_s": "replica_deadline", "extra_body": "request_args",
               **{k: k for k in ("model", "judge_model", "judge_engine", "base_url", "route", "slow_factor", "engine_args", "request_args",
                                 "traces")}},
    "budget": {"tokens": "budget_tokens", "calls": "budget_calls", "seconds": "budget_seconds", "usd": "budget_usd",
               "tokens_total": "budget_tokens_total", "price": "price"},
    "output": {"folder": "output", **{k: k for k in ("run_id", "resume", "record")}},
    "executor": {"kind": "executor", **{k: k for k in ("concurrency", "workers", "worker_gpus", "ray_address")}},
}


def flatten(doc: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A job file's keys, flat or in tables, as flags. A strategy table's other keys are the strategy's options
    (`[strategy] name = "pdr"`, `rounds = 3`); any other table's unknown key is an error naming it."""
    flat = {k: v for k, v in doc.items() if not (k in TABLES and isinstance(v, dict))}
    for table, keys in TABLES.items():
        body = doc.get(table)
        if not isinstance(body, dict):
            continue
        for key, value in body.items():
            if key in keys:
                flat[keys[key]] = value
            elif table == "strategy":
                flat.setdefault("options", {})
                flat["options"] = {**flat["options"], key: value}
            else:
                raise ConfigError(f"{where}{table}.{key}: unknown setting (known: {', '.join(keys)})")
    return flat


def make_spec(fields: dict[str, Any], where: str = "") -> RunSpec:
    """A RunSpec from CLI flags or a job file's keys; a bad or misplaced value is one ConfigError naming the option
    (`where` prefixes a job file's place), raised before anything starts."""
    return build(read_flags(fields, where))


def read_flags(fields: dict[str, Any], where: str = "") -> RunFlags:
    """Flags or a job file's keys as checked RunFlags; a bad value is one ConfigError naming it."""
    try:
        return RunFlags(**flatten(fields, where))
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


def build(f: RunFlags) -> RunSpec:
    strategy = choose_strategy(f.strategy, f.options, n=f.n, temperature=f.temperature, max_tokens=f.max_tokens,
                               seed=f.seed, early_stop=f.early_stop, prune=f.prune, reasoning=f.reasoning)
    if f.budget_tokens_total is not None:
        from tts.strategies.compose import is_composition

        if is_composition(f.strategy) or strategies.get(f.strategy).name != "self-consistency":
            raise ConfigError("--budget-tokens-total allocates samples across problems: it applies to strategy "
                              "self-consistency (sc)")
        if f.executor != "local":
            raise ConfigError("--budget-tokens-total runs on the local executor")
    if f.executor == "local" and (f.ray_address is not None or f.worker_gpus):
        raise ConfigError("--ray-address and --worker-gpus apply to --executor ray")
    if f.price is None and f.budget_usd is not None:
        raise ConfigError("--budget-usd needs --price PROMPT,COMPLETION (USD per million tokens)")
    budget = RunBudget(per_problem=BudgetConfig(max_tokens=f.budget_tokens, max_calls=f.budget_calls,
                                                max_seconds=f.budget_seconds, max_usd=f.budget_usd),
                       total_tokens=f.budget_tokens_total, max_samples=f.n or 16,
                       price=None if f.price is None else parse_price(f.price))
    engine = engine_of(f)
    judge = judge_of(f, engine)
    if judge is not None and f.executor != "local":
        raise ConfigError("--judge-model runs on the local executor")
    return RunSpec(problems=Problems(task=f.task, data=f.data, fields=f.fields, limit=f.limit,
                                     skip_unreadable_golds=f.skip_unreadable_golds),
                   strategy=strategy, engine=engine, judge=judge, budget=budget,
                   output=Output(folder=f.output, run_id=f.run_id, resume=f.resume, record=f.record),
                   executor=Executor(kind=f.executor, concurrency=f.concurrency, workers=f.workers,
                                     worker_gpus=f.worker_gpus, ray_address=f.ray_address), seed=f.seed)


def engine_of(f: RunFlags) -> EngineSpec:
    """The engine part of the flags, as the chosen kind's spec (`tts eval` and `tts serve` alike)."""
    # a replayed or simulated policy with a served judge: --base-url is the judge's server
    judge_url = f.judge_engine == "openai" and f.engine in ("replay", "sim")
    return engine_spec(f.engine, model=f.model, base_url=None if judge_url else f.base_url, route=f.route, seed=f.seed,
                       accuracy=f.sim_accuracy, timeout_s=f.request_timeout, deadline_s=f.replica_deadline,
                       slow_factor=f.slow_factor, latency_per_token_s=f.sim_latency, traces=f.traces,
                       engine_args=f.engine_args, request_args=f.request_args)


def judge_of(f: RunFlags, engine: EngineSpec) -> EngineSpec | None:
    """The judge's engine: the policy's kind, server and arguments with --judge-model's model; None without one.
    --judge-engine names another kind: a policy replayed from a recording (`--engine replay`) with a live judge,
    so that judges are compared on the same samples through the real strategies."""
    if f.judge_model is None:
        if f.judge_engine is not None:
            raise ConfigError("--judge-engine names the judge model's engine: give --judge-model too")
        return None
    kind = f.judge_engine or engine.kind
    if kind not in ("vllm", "openai"):
        hint = "; a replayed or simulated policy takes --judge-engine vllm or openai" if f.judge_engine is None else ""
        raise ConfigError(f"--judge-model applies to the vllm and openai engines, not '{kind}'{hint}")
    if kind == engine.kind:
        return engine_of(f.model_copy(update={"model": f.judge_model}))
    # another kind: the policy engine's own flags (its recording, its simulator) are not the judge's
    return engine_spec(kind, model=f.judge_model, base_url=f.base_url, seed=f.seed, timeout_s=f.request_timeout)


# flags that set a strategy's config field of the same name; given for a strategy without that field, an error
_STRATEGY_FLAGS = {"n": "-n", "temperature": "--temperature", "max_tokens": "--max-tokens",
                   "early_stop": "--early-stop", "prune": "--prune"}


def choose_strategy(name: str, options: dict[str, Any] | None = None, *, seed: int | None = None,
                    reasoning: ReasoningConfig | None = None, **flags: Any) -> StrategyChoice:
    """A strategy with the flags that set its config (-n, --temperature, ...; -o options win over them), checked
    now: a flag the strategy has no field for is an error (the seed goes to engines too, so it never is)."""
    from tts.strategies.compose import is_composition

    given = {k: v for k, v in flags.items() if v is not None}
    if is_composition(name):
        if given:
            shown = ", ".join(_STRATEGY_FLAGS[k] for k in given)
            raise ConfigError(f"{shown} applies to a single strategy; inside a composition write it as an option, "
                              f"e.g. sc(n=8, prune='step')")
        choice = StrategyChoice(name=name, options=dict(options or {}), reasoning=reasoning)
    else:
        fields = strategies.get(name).config.model_fields
        stray = [k for k in given if k not in fields]
        if stray:
            raise ConfigError(f"{', '.join(_STRATEGY_FLAGS[k] for k in stray)} does not apply to strategy "
                              f"'{strategies.get(name).name}' (its options: {', '.join(fields)})")
        if seed is not None and "seed" in fields:
            given["seed"] = seed
        if isinstance(given.get("prune"), PruneConfig):
            given["prune"] = given["prune"].model_dump()
        choice = StrategyChoice(name=name, options=given | dict(options or {}), reasoning=reasoning)
    choice.resolve()  # unknown or invalid options: an error now
    return choice


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


# CLI flags that build one RunFlags field together (--prune with --prune-opt, --reasoning with its options, ...)
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
