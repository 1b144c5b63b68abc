"""OpenTelemetry export of a run: one span per branch and call, nested, with decisions as span events."""
import numpy as np
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tts import tasks
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.self_consistency import SCConfig, run
from tts.kit import embed
from tts.app import otel
from tts.kernel.context import Context
from tts.kit.prune import PruneConfig
from tts.kernel.types import Problem


async def test_spans_for_branches_calls_and_decisions(monkeypatch):
    monkeypatch.setattr(embed, "embed_sync", lambda texts: np.ones((len(texts), 4)) / 2)
    p = Problem(id="p", question="What is 3 plus 4?", gold="7")
    engine = SimulatedEngine.for_problems([p], SimConfig(accuracy=1.0, min_tokens=100, max_tokens=100,
                                                         latency_per_token_s=0.001))
    ctx = Context(engine, task=tasks.get("gsm8k"))
    await run(ctx, p, SCConfig(n=4, early_stop=False, prune=PruneConfig(min_alive=2)))
    exporter = InMemorySpanExporter()
    assert otel.export(ctx.tracer, exporter) == 1 + 4 + 4
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "tts.run")
    branches = [s for s in spans if s.name.startswith("branch")]
    calls = [s for s in spans if s.name == "engine call"]
    assert all(b.parent.span_id == root.context.span_id for b in branches)
    assert {c.parent.span_id for c in calls} == {b.context.span_id for b in branches}
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls) == ctx.usage.completion_tokens
    assert sorted(b.attributes["tts.status"] for b in branches) == ["ok", "ok", "pruned", "pruned"]
    assert [e.name for e in root.events].count("prune") == 2
    assert all(s.end_time >= s.start_time for s in spans)


def test_no_exporter_no_spans(monkeypatch):
    monkeypatch.delenv("TTS_OTEL", raising=False)
    from tts.kernel.trace import Tracer
    assert otel.export(Tracer()) == 0
