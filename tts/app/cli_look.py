"""`tts` commands that read what runs left and what this machine has: report, compare, trace, view, doctor, tasks,
strategies (registered on the app in tts/app/cli.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from tts import strategies
from tts import tasks
from tts.app.cli_common import _fail
from tts.engine_adapters import names as engine_names
from tts.kernel.errors import DataError, TtsError


def report(runs: list[Path] = typer.Argument(None, help="run folders"),
           plots: Optional[Path] = typer.Option(None, help="write accuracy-vs-tokens / accuracy-vs-n PNGs here"),
           replay: Optional[Path] = typer.Option(None, help="draw a policy replay's frontier (its JSON) into --plots")
           ) -> None:
    """A table per task (accuracy with 95% CI, tokens, cached prompt tokens, wall time), and optional plots."""
    from tts.app import report as rep

    try:
        if replay:
            typer.echo(f"plot: {rep.replay_plot(replay, plots or Path('.'))}")
            if not runs:
                return
        text, by_task = rep.table(runs or [])
        typer.echo(text)
        if plots:
            for path in rep.plots(by_task, plots):
                typer.echo(f"plot: {path}")
    except TtsError as e:
        _fail(str(e))


def compare(runs: list[Path] = typer.Argument(..., help="run folders"),
            budget: float = typer.Option(..., help="generated tokens per problem")) -> None:
    """Line strategies up at a matched token budget."""
    import math

    from tts.app import report as rep

    if not math.isfinite(budget) or budget <= 0:
        _fail(f"--budget {budget}: a positive number of generated tokens per problem")

    try:
        typer.echo(rep.compare(runs, budget))
    except TtsError as e:
        _fail(str(e))


def trace(run: Path = typer.Argument(..., help="a run folder"),
          problem: Optional[str] = typer.Option(None, help="problem id (default: the first)"),
          png: Optional[Path] = typer.Option(None, help="draw the problem's timeline to this PNG"),
          svg: Optional[Path] = typer.Option(None, help="draw the problem's timeline to this SVG")) -> None:
    """One problem's branches over time: outcome, answer, tokens, and the stop / prune / confidence events."""
    from tts.app import timeline as tl

    try:
        key, bars, marks = tl.timeline(run, problem)
        typer.echo(tl.text(bars, marks))
        for out in (p for p in (png, svg) if p):
            typer.echo(f"drawn: {tl.draw(bars, marks, out, f'{run.name} · problem {key}')}")
    except TtsError as e:
        _fail(str(e))


def view(run: Path = typer.Argument(..., help="a run folder"),
         out: Optional[Path] = typer.Option(None, help="the HTML file (default: RUN/view.html)")) -> None:
    """Write one self-contained HTML page for a run: summary, problem table, timelines, samples, decisions."""
    from tts.app.viewer import write_html

    try:
        if out is not None and not out.parent.is_dir():
            raise DataError(f"--out {out}: folder {out.parent} does not exist")
        typer.echo(f"view: {write_html(run, out)}")
    except TtsError as e:
        _fail(str(e))


def doctor() -> None:
    """What this machine gives tts: the sandbox's isolation layers (active and missing), and the engines."""
    from tts.tools.sandbox import isolation

    layers = isolation()
    typer.echo(f"sandbox: {layers['mode']}")
    typer.echo(f"  active:  {', '.join(layers['active'])}")
    typer.echo(f"  missing: {', '.join(layers['missing']) or 'none'}")
    if layers.get("seccomp_denies"):
        typer.echo(f"  seccomp denies: {', '.join(layers['seccomp_denies'])}")
    if layers["mode"] == "none":
        typer.echo("  model-written code is refused (install bubblewrap, or set TTS_SANDBOX_UNISOLATED=1)")
    if layers["mode"] != "none" and "process-limit" not in layers["active"]:
        typer.echo("  limits: no per-sandbox process limit (this kernel counts RLIMIT_NPROC for your whole uid, "
                   "not per user namespace: Linux 5.14 or later, or root for a uid per call)")
    import importlib.util

    have = lambda module: importlib.util.find_spec(module) is not None  # noqa: E731
    typer.echo(f"engines: {', '.join(engine_names())}" + ("" if have("vllm") else
                                                          " (vllm not installed: the `cpu` or `vllm` extra)"))
    extras = {"report": "matplotlib", "serve": "uvicorn", "otel": "opentelemetry.sdk", "ray": "ray",
              "data": "datasets", "embed": "sentence_transformers"}
    typer.echo("extras: " + ", ".join(f"{extra} ({'installed' if have(module) else 'missing'})"
                                      for extra, module in extras.items()))
    from tts.engine_adapters.local_models import MODELS, is_ready

    ready = [name for name in MODELS if is_ready(name)]
    typer.echo(f"local models: {', '.join(ready) or 'none (tts setup-model NAME)'}")
    typer.echo(f"hugging face hub: {'reachable' if _reachable('huggingface.co', 443) else 'not reachable'}")


def _reachable(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def list_tasks() -> None:
    """List the tasks and standard benchmark sets, with where their problems come from."""
    for name in tasks.names():
        t = tasks.get(name)
        size = f" ({t.source.size})" if t.source and t.source.size else ""
        typer.echo(f"{name:10} {t.origin() + size:48} {t.about}")


def list_strategies() -> None:
    """The registered strategies: name, aliases, what each does, and its settings with their defaults."""
    for name in strategies.names():
        spec = strategies.get(name)
        doc = spec.description
        aliases = f" (also: {', '.join(spec.aliases)})" if spec.aliases else ""
        typer.echo(f"{name}{aliases}: {doc}")
        settings = []
        for key, field in spec.config.model_fields.items():
            if field.is_required():
                settings.append(f"{key}=(required)")
                continue
            default = field.get_default(call_default_factory=True)
            settings.append(f"{key}={json.dumps(default, default=str) if default is not None else 'none'}")
        if settings:
            typer.echo(f"    -o {' '.join(settings)}")
