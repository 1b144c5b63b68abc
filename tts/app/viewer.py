"""`tts view RUN`: one self-contained HTML file for a run (no server, no network, no external assets): the summary
with its interval, a sortable and filterable table of problems, and per problem its timeline, samples, votes and
decisions (stop rule, prunes, confidence stops, consensus, and the strategy's own record: PDR rounds, APR threads,
LLMCompiler plans).

It reads the run folder the way `tts report` does (runner.read_finished for rows, timeline.problem_events for the
trace) and never the engine. The page's script lives in viewer.js next to this file and is inlined.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from tts.app.report import row_grader, load_run
from tts.app.runner import summarize, wall_seconds
from tts.app.timeline import OUTCOMES, bars, problem_events

TEXT_LIMIT = 6000  # characters of each sample's text kept in the page (the run folder has all of it)


def _inputs(events: list[dict]) -> dict:
    """The question and the prompts the model saw, each with the sampling parameters of the calls that sent it."""
    found = next((e for e in events if e.get("kind") == "inputs"), None)
    if found is None:
        return {}
    sampling: dict[str, list] = {}
    seeds: dict[tuple, list] = {}
    for e in events:
        if e.get("kind") == "call_start" and isinstance(e.get("prompt"), str):
            # calls that differ only by seed are one line, with their seeds listed
            params = {k: e[k] for k in ("n", "max_tokens", "temperature", "top_p", "stop", "logprobs", "purpose")
                      if k in e}
            if params not in sampling.setdefault(e["prompt"], []):
                sampling[e["prompt"]].append(params)
            seeds.setdefault((e["prompt"], repr(params)), []).append(e.get("seed"))
    for pid, all_params in sampling.items():
        for params in all_params:
            used = sorted({x for x in seeds[(pid, repr(params))] if x is not None})
            if used:
                params["seeds"] = f"{used[0]}-{used[-1]} ({len(used)})" if len(used) > 2 else used
    prompts = found.get("prompts") if isinstance(found.get("prompts"), dict) else {}
    return {"question": found.get("question"),
            "prompts": [[pid, text[:TEXT_LIMIT] if isinstance(text, str) else text, sampling.get(pid, [])]
                        for pid, text in prompts.items()]}


def _tie(votes: dict, answer) -> str | None:
    """Why the answer won when the top of the vote is a tie (the rule in tts/kit/voting.py)."""
    if not votes:
        return None
    top = max(votes.values())
    tied = [a for a, v in votes.items() if v == top]
    if len(tied) < 2:
        return None
    return (f"tie at {top:g} between {', '.join(map(str, tied))}: {answer} wins, as the answer whose first sample "
            f"has the lowest index (a vote never depends on completion order)")


def _problem(row: dict, events: list[dict], grade) -> dict:
    bs, marks = bars(events)
    right: dict = {}

    def graded(answer):  # each distinct answer graded once, where the task can grade from the row alone
        if grade is None or answer is None:
            return None
        if answer not in right:
            try:
                right[answer] = bool(grade(row, answer))
            except Exception:  # a row the grader cannot read: no mark rather than a wrong one
                right[answer] = None
        return right[answer]
    scores = (row.get("meta") or {}).get("scores") or {}  # a scorer's score per sample index, where one scored
    samples = [[s.get("index"), s.get("answer"), s.get("tokens", 0), s.get("status", "ok"),
                (s.get("text") or "")[:TEXT_LIMIT], scores.get(str(s.get("index")))] for s in row.get("samples", ())]
    decisions = [[round(t, 4), m] for t, m in marks]
    for b in bs:
        decisions += [[round(t, 4), f"branch {b.name()}: {m}"] for t, m in b.marks]
    return {
        "id": row["id"], "correct": row.get("correct"), "answer": row.get("answer"), "gold": row.get("gold"),
        "votes": row.get("votes", {}), "stopped": bool(row.get("stopped_early")),
        "tokens": row.get("usage", {}).get("completion_tokens", 0), "calls": row.get("usage", {}).get("calls", 0),
        "verify": [row.get("usage", {}).get(k, 0) for k in
                   ("verify_calls", "verify_prompt_tokens", "verify_completion_tokens")],
        "seconds": row.get("seconds", 0.0), "note": row.get("note"), "error": row.get("error"),
        "meta": row.get("meta", {}), "samples": samples, "decisions": sorted(decisions),
        "bars": [[b.name(), b.depth, b.label, round(b.start, 4), round(b.end, 4), b.outcome, b.answer, b.tokens,
                  graded(b.answer), b.verify_tokens] for b in bs],
        "tie": _tie(row.get("votes") or {}, row.get("answer")), **_inputs(events),
    }


def page_data(run_dir: Path) -> dict:
    config, rows = load_run(run_dir)
    events = problem_events(run_dir) if (run_dir / "trace.jsonl").exists() else {}
    summary = summarize(rows, config, wall_seconds(run_dir, rows))
    summary.pop("config", None)
    grade = row_grader(config)
    return {"run": run_dir.name, "config": {k: config.get(k) for k in ("task", "data", "strategy", "strategy_config",
                                                                       "engine", "model", "seed")},
            "simulated": config.get("engine") == "sim",
            "summary": summary, "outcomes": {k: list(v) for k, v in OUTCOMES.items()},
            "problems": [_problem(r, events.get(r["id"]) or _first_draw(events, r["id"]), grade) for r in rows]}


def _first_draw(events: dict[str, list], pid: str) -> list:
    """A run under a job-level budget traces each draw apart (ID@drawJ): the problem's first draw is shown."""
    draws = [(int(k.rsplit("@draw", 1)[1]), k) for k in events if k.startswith(f"{pid}@draw")
             and k.rsplit("@draw", 1)[1].isdigit()]
    return events[min(draws)[1]] if draws else []


def write_html(run_dir: Path, out: Path | None = None) -> Path:
    out = out or run_dir / "view.html"
    data = json.dumps(page_data(run_dir), separators=(",", ":")).replace("</", "<\\/")  # no early </script>
    script = (Path(__file__).with_name("viewer.js")).read_text()
    out.write_text(_PAGE.format(title=html.escape(run_dir.name), data=data, script=script), encoding="utf-8")
    return out


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tts run {title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }} .muted {{ color: #666; }}
#summary span {{ margin-right: 18px; }}
#filters button {{ margin: 8px 4px 8px 0; padding: 3px 10px; border: 1px solid #999; background: #f4f4f4;
  border-radius: 3px; cursor: pointer; }}
#filters button.on {{ background: #2e6fd6; color: white; border-color: #2e6fd6; }}
#layout {{ display: flex; gap: 16px; align-items: flex-start; }}
#left {{ flex: 0 0 46%; max-height: 82vh; overflow: auto; }} #right {{ flex: 1; min-width: 0; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ padding: 3px 6px; border-bottom: 1px solid #e4e4e4;
  text-align: left; white-space: nowrap; }}
th {{ position: sticky; top: 0; background: #fafafa; cursor: pointer; }} tr.row:hover {{ background: #eef4ff; }}
tr.sel {{ background: #dde9ff !important; }} .ok {{ color: #2e9d4f; }} .bad {{ color: #d64545; }}
pre {{ white-space: pre-wrap; background: #f7f7f7; padding: 6px; max-height: 260px; overflow: auto; }}
details {{ margin: 2px 0; }} .tag {{ display: inline-block; padding: 0 5px; border-radius: 3px; color: white; }}
</style></head>
<body>
<h1>tts run <span id="run"></span></h1>
<div id="summary"></div>
<div id="filters"><button data-f="all" class="on">all</button><button data-f="correct">correct</button>
<button data-f="wrong">wrong</button><button data-f="stopped">stopped early</button>
<input id="search" placeholder="problem id" size="14"> <span id="count" class="muted"></span></div>
<div id="layout"><div id="left"><table id="problems"><thead><tr>
<th data-k="id">problem</th><th data-k="correct">right</th><th data-k="answer">answer</th><th data-k="gold">gold</th>
<th data-k="nsamples">samples</th><th data-k="tokens">tokens</th><th data-k="seconds">seconds</th>
<th data-k="stopped">stopped</th></tr></thead><tbody></tbody></table></div>
<div id="right"><p class="muted">Click a problem to see its timeline, samples and decisions.</p></div></div>
<script id="data" type="application/json">{data}</script>
<script>{script}</script>
</body></html>
"""
