"""Export a run's trace as OpenTelemetry spans: one span per branch and per engine call (tokens, cached prompt
tokens, status), nested as the DAG is, with prune, stop and spawn decisions as span events.

Enabled when an exporter is configured: `TTS_OTEL=console`, or `TTS_OTEL=otlp` with the standard
OTEL_EXPORTER_OTLP_ENDPOINT; or pass an exporter to `export` (tests use the in-memory one).
"""
from __future__ import annotations

import os
from typing import Any

from tts.kernel.errors import ConfigError, require
from tts.kernel.trace import Tracer, path_id

DECISIONS = {"prune", "stop", "spawn", "spawn_refused", "replan", "plan_error", "round_end", "stage"}


def exporter_from_env():
    kind = os.environ.get("TTS_OTEL", "").lower()
    if not kind:
        return None
    if kind not in ("console", "otlp"):
        raise ConfigError(f"TTS_OTEL={kind}: use console or otlp")
    require("opentelemetry.sdk", "otel", "TTS_OTEL")
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "otel", "TTS_OTEL=otlp")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def export(tracer: Tracer, exporter=None, name: str = "tts.run") -> int:
    """Turn the tracer's events into spans and hand them to the exporter; returns how many spans were made."""
    exporter = exporter or exporter_from_env()
    if exporter is None:
        return 0
    from opentelemetry import trace as ot
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = provider.get_tracer("tts")
    ns = lambda t: tracer.wall0_ns + int(t * 1e9)  # noqa: E731
    events = tracer.events
    end_t = max((e["t"] for e in events), default=0.0)
    starts: dict[str, float] = {}
    ends: dict[str, dict[str, Any]] = {}
    calls: dict[str, tuple[float, dict]] = {}
    decisions: dict[str, list[dict]] = {}
    for e in events:
        pid = path_id(tuple(e["path"]))
        if e["kind"] == "branch_start":
            starts[pid] = e["t"]
        elif e["kind"] == "branch_end":
            ends[pid] = e
        elif e["kind"] == "call_start":
            calls[e["node"]] = (e["t"], {})
        elif e["kind"] == "call_end" and e["node"] in calls:
            calls[e["node"]] = (calls[e["node"]][0], e)
        elif e["kind"] in DECISIONS:
            decisions.setdefault(pid, []).append(e)
    spans: dict[str, Any] = {}
    count = 0

    def open_span(node: str, parent: str | None, start: float, attrs: dict[str, Any], label: str):
        nonlocal count
        ctx = ot.set_span_in_context(spans[parent]) if parent in spans else None
        span = otel.start_span(label, context=ctx, start_time=ns(start),
                               attributes={k: v for k, v in attrs.items() if isinstance(v, (str, int, float, bool))})
        for d in decisions.get(node, []):
            span.add_event(d["kind"], {k: str(v) for k, v in d.items() if k not in ("run", "t", "path", "kind")},
                           timestamp=ns(d["t"]))
        spans[node] = span
        count += 1
        return span

    root = open_span("root", None, 0.0, {"tts.run": tracer.run}, name)
    for node in sorted(starts, key=lambda n: starts[n]):
        parent = node.rsplit("/", 1)[0]
        end = ends.get(node, {})
        open_span(node, parent if parent in spans else "root", starts[node],
                  {"tts.path": node, "tts.status": end.get("status", "running"),
                   "tts.label": tracer.dag.nodes[node].get("label") or ""}, f"branch {node}")
    for node, (start, end) in calls.items():
        parent = node.split("#", 1)[0]
        span = open_span(node, parent if parent in spans else "root", start,
                         {"tts.status": end.get("status", "running"), "gen_ai.usage.output_tokens":
                          end.get("completion_tokens", 0), "gen_ai.usage.input_tokens": end.get("prompt_tokens", 0),
                          "tts.cached_prompt_tokens": end.get("cached_prompt_tokens", 0)}, "engine call")
        span.end(end_time=ns(end.get("t", end_t)))
    for node, span in spans.items():
        if "#" not in node and node != "root":
            span.end(end_time=ns(ends.get(node, {}).get("t", end_t)))
    root.end(end_time=ns(end_t))
    provider.shutdown()
    return count
