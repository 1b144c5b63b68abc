"""Where a problem's compute went: one row per branch over wall time (nested branches under their parent), coloured
by outcome, labelled with answer and tokens, with stop, prune, confidence and consensus events marked.

Read from a run folder's trace.jsonl, the same file `tts trace` and `tts view` read (through `problem_events`);
drawn as PNG or SVG (by the file's suffix), or as text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tts.kernel.errors import DataError, require

TRACE = "trace.jsonl"
# outcome -> (colour, legend); branch statuses, plus what events say about how an "ok" or "cancelled" branch ended
OUTCOMES = {
    "ok": ("#2e9d4f", "finished"), "stopped": ("#f0a030", "stopped early (vote settled)"),
    "consensus": ("#e6c229", "stopped at probe consensus"), "lowconf": ("#8e5cc4", "stopped: low confidence"),
    "pruned": ("#d64545", "pruned"), "budget": ("#7a5230", "budget"), "error": ("#222222", "error"),
    "running": ("#9e9e9e", "unfinished"),
}


@dataclass
class Bar:
    path: tuple[int, ...]
    label: str
    start: float
    end: float
    outcome: str = "running"
    answer: str | None = None
    tokens: int = 0
    calls: int = 0
    verify_tokens: int = 0  # what judges and verifiers read and wrote from this row: apart from its generation
    marks: list[tuple[float, str]] = field(default_factory=list)  # (t, what) on this row

    @property
    def depth(self) -> int:
        return len(self.path)

    def name(self) -> str:
        return "/".join(map(str, self.path)) or "root"


def problem_events(run_dir: Path) -> dict[str, list[dict]]:
    """Every finished problem's events, by problem id, from a run folder's trace (damaged lines skipped)."""
    path = run_dir / TRACE
    if not path.exists():
        raise DataError(f"no {TRACE} in {run_dir}")
    out: dict[str, list[dict]] = {}
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            event = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue  # a line cut by a kill, or damage: the other problems are still readable
        if isinstance(event, dict) and isinstance(event.get("run"), str):
            out.setdefault(event["run"], []).append(event)
    return out


def bars(events: list[dict]) -> tuple[list[Bar], list[tuple[float, str]]]:
    """One bar per branch in path order, and the group-level marks (stops, consensus) as (t, text)."""
    rows: dict[tuple[int, ...], Bar] = {}
    group_marks: list[tuple[float, str]] = []
    end = max((e.get("t", 0.0) for e in events), default=0.0)
    for e in events:
        path, t, kind = tuple(e.get("path") or ()), float(e.get("t", 0.0)), e.get("kind")
        if kind == "branch_start":
            rows[path] = Bar(path, e.get("label") or "", t, end)
        elif kind == "call_start" and e.get("purpose") == "verify" and path not in rows:
            # a judge calling outside any branch (a composition's judge stage) still gets a row of its own
            rows[path] = Bar(path, "verify", t, t, "ok")
        bar = rows.get(path)
        if kind == "branch_end" and bar:
            bar.end = t
            status = e.get("status") or "ok"
            if status == "cancelled":  # the reason a group gave when it cancelled the branch
                status = "consensus" if str(e.get("error") or "").startswith("probe consensus") else "stopped"
            if bar.outcome != "lowconf":
                bar.outcome = status if status in OUTCOMES else "error"
        elif kind == "call_end" and bar:
            if e.get("purpose") == "verify":
                bar.verify_tokens += int(e.get("prompt_tokens") or 0) + int(e.get("completion_tokens") or 0)
                if bar.label == "verify":
                    bar.end = max(bar.end, t)
            else:
                bar.tokens += int(e.get("completion_tokens") or 0)
            bar.calls += 1
        elif kind == "partial_answer" and bar:
            bar.answer = e.get("answer")
        elif kind == "confidence_stop" and bar:
            bar.marks.append((t, f"low confidence ({e.get('by')})"))
            bar.outcome = "lowconf"
        elif kind == "prune":
            target = rows.get(tuple(e.get("branch_path") or ()))
            if target:
                target.marks.append((t, f"pruned ({e.get('signal')}, sim {e.get('similarity')})"))
        elif kind == "stop":
            group_marks.append((t, f"stop: {e.get('reason')}"))
        elif kind == "probe_consensus":
            group_marks.append((t, f"probe consensus on {e.get('answer')}"))
        elif kind == "judge":
            verdict = "overturned the vote" if e.get("overturned") else "kept the vote"
            group_marks.append((t, f"judge ({e.get('scorer')}) chose {e.get('chosen')} of "
                                   f"{', '.join(map(str, e.get('contenders') or ()))}: {verdict}"))
        elif kind == "probe_prune":
            target = rows.get(tuple(e.get("branch_path") or ()))
            if target:
                target.marks.append((t, f"pruned (probe outlier {e.get('answer')})"))
    return _fold_probes([rows[p] for p in sorted(rows)]), group_marks


def _fold_probes(rows: list[Bar]) -> list[Bar]:
    """Answer probes are many tiny calls (one per running trace per checkpoint): one row per parent holds them all."""
    out: list[Bar] = []
    folded: dict[tuple[int, ...], Bar] = {}
    for b in rows:
        if b.label != "probe":
            out.append(b)
            continue
        parent = b.path[:-1]
        row = folded.get(parent)
        if row is None:
            row = folded[parent] = Bar(b.path, "probe", b.start, b.end, "ok")
            out.append(row)
        row.start, row.end = min(row.start, b.start), max(row.end, b.end)
        row.tokens += b.tokens
        row.calls += 1
        row.label = f"probes x{row.calls}"
    return out


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def text(bars_: list[Bar], marks: list[tuple[float, str]]) -> str:
    lines = []
    for b in bars_:
        ans = f" answer={b.answer}" if b.answer is not None else ""
        verify = f" verify_tokens={b.verify_tokens}" if b.verify_tokens else ""
        lines.append(f"{'  ' * b.depth}{b.name()} [{b.label}] {OUTCOMES[b.outcome][1]} {_seconds(b.start)}"
                     f"-{_seconds(b.end)} tokens={b.tokens}{verify}{ans}")
    lines += [f"@{_seconds(t)} {m}" for t, m in marks]
    return "\n".join(lines)


def draw(bars_: list[Bar], marks: list[tuple[float, str]], out: Path, title: str) -> Path:
    """A PNG or SVG (by `out`'s suffix) readable at any number of branches: the figure grows with the rows."""
    require("matplotlib", "report", "a timeline picture")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not out.parent.is_dir():
        raise DataError(f"{out}: folder {out.parent} does not exist")
    if out.suffix.lower() not in (".png", ".svg"):
        raise DataError(f"{out}: draw to a .png or .svg file")
    n = max(1, len(bars_))
    span = max((b.end for b in bars_), default=1.0) or 1.0
    fig, ax = plt.subplots(figsize=(13, 1.6 + 0.28 * n))
    for y, b in enumerate(bars_):
        colour = OUTCOMES[b.outcome][0]
        ax.barh(y, max(b.end - b.start, span * 0.002), left=b.start, height=0.62, color=colour, alpha=0.9)
        tag = " · ".join(x for x in (f"{b.answer}" if b.answer is not None else "", f"{b.tokens} tok",
                                     f"judge {b.verify_tokens} tok" if b.verify_tokens else "") if x)
        ax.text(b.end + span * 0.006, y, tag, va="center", fontsize=7)
        for t, what in b.marks:
            ax.plot([t], [y], marker="x" if what.startswith("pruned") else "v", color="black", markersize=6)
    for t, what in marks:
        ax.axvline(t, color="#555555", linestyle="--", linewidth=0.8)
        ax.text(t, -0.9, what[:60], fontsize=7, rotation=0, ha="left", va="bottom", color="#333333")
    ax.set_yticks(range(n), [f"{'  ' * (b.depth - 1)}{b.name()} {b.label}" for b in bars_] or [""], fontsize=7,
                  family="monospace")
    ax.set_ylim(n - 0.5, -1.5)  # top row first, with a line of room above it for the group's marks
    ax.set_xlim(0, span * 1.12)
    ax.set_xlabel("seconds since the problem started")
    ax.set_title(title, fontsize=10)
    used = {b.outcome for b in bars_}
    ax.legend(handles=[Patch(color=c, label=lab) for k, (c, lab) in OUTCOMES.items() if k in used],
              loc="upper center", bbox_to_anchor=(0.5, -0.45 / (1 + 0.18 * n)), ncol=4, fontsize=7, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def timeline(run_dir: Path, problem: str | None = None) -> tuple[str, list[Bar], list[tuple[float, str]]]:
    """(problem id, bars, marks) of one problem of a run (the first when none is named)."""
    events = problem_events(run_dir)
    if not events:
        raise DataError(f"{run_dir / TRACE} has no problem")
    key = problem or next(iter(events))
    if key not in events:
        raise DataError(f"problem '{key}' is not in {run_dir / TRACE} (it has: {', '.join(list(events)[:10])} ...)")
    b, m = bars(events[key])
    return key, b, m
