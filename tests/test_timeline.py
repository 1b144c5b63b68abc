"""`tts trace`'s timeline: outcomes read from the trace (low confidence, pruned, stopped), probes folded into one row,
drawn as PNG and SVG at 64+ branches."""
import subprocess
import sys

from tts.app.timeline import draw, text, timeline

TTS = [sys.executable, "-m", "tts.app.cli"]


def _run(tmp_path, run_id, *args):
    r = subprocess.run([*TTS, "eval", "--engine", "sim", "--task", "demo", "--limit", "1", "--no-progress",
                        "--sim-latency", "0.002", "--sim-accuracy", "0.6", "--output", str(tmp_path), "--run-id", run_id,
                        *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return tmp_path / run_id


def test_probe_run_timeline_at_64_branches(tmp_path):
    run = _run(tmp_path, "p", "-n", "64", "-o", 'probe={"checkpoint_tokens": 16, "agree": 1.0, "patience": 1}')
    key, bars, marks = timeline(run)
    samples = [b for b in bars if b.label == "sample"]
    probes = [b for b in bars if b.label.startswith("probes x")]
    assert len(samples) == 64 and len(probes) == 1 and probes[0].calls > 10
    assert {"ok", "pruned"} <= {b.outcome for b in samples}  # outliers pruned by their probes
    assert all(b.end >= b.start for b in bars)
    for suffix in ("png", "svg"):
        out = draw(bars, marks, tmp_path / f"t.{suffix}", "t")
        assert out.stat().st_size > 20_000
    assert "pruned" in text(bars, marks)


def test_deepconf_low_confidence_rows(tmp_path):
    run = _run(tmp_path, "d", "--strategy", "deepconf", "-n", "12", "-o", "warmup=3", "-o", "keep=0.5",
               "--no-early-stop")
    _, bars, _ = timeline(run)
    outcomes = [b.outcome for b in bars if b.label in ("warmup", "sample")]
    assert len(outcomes) == 12 and "lowconf" in outcomes
    assert all(o == "ok" for o, b in zip(outcomes, bars) if b.label == "warmup")
