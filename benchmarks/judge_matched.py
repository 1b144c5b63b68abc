"""Judges at matched tokens, through `tts eval` itself: a recorded sampling run (`tts eval --record`) is replayed
(`--engine replay`) by the real strategies and compositions, with the judge model live (`--judge-engine vllm
--judge-model M`), so every setting sees the same samples (paired) and pays its judge's real tokens.

Settings: SC@K votes (K = 16, 12, 8), SC@16 with the vote's lead stop, and the close-vote pairwise judge after each.
For each: accuracy with a 95% interval, total tokens (prompts + generation + verification, as `summary.json`
counts them) and their share of SC@16's, and the problems gained and lost against SC@16, problem by problem.

Usage: python benchmarks/judge_matched.py REC_RUN [--judge-model qwen2.5-coder-1.5b] [--n 16] [--max-tokens 384]
       [--out judge_matched] [--limit N] [--figures-only]
Each setting is a run folder under results/matched-<REC name>/ (resumed if cut); the figures go to
results/bench/<OUT>.json after each setting.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, write

from tts.app.report import row_grader
from tts.app.runner import read_finished, wilson


def settings(n: int, max_tokens: int) -> dict[str, str]:
    def sc(k: int, stop: bool = False) -> str:
        return f"sc(n={k}, max_tokens={max_tokens}{'' if stop else ', early_stop=False'})"

    judge = " | judge(kind='pairwise', margin=0.25)"
    out = {f"SC@{n}": sc(n), f"SC@{n} | pairwise on close votes": sc(n) + judge,
           f"SC@{n}, lead stop": sc(n, True), f"SC@{n}, lead stop | pairwise on close votes": sc(n, True) + judge}
    for k in (n * 3 // 4, n // 2):
        out[f"SC@{k}"] = sc(k)
        out[f"SC@{k} | pairwise on close votes"] = sc(k) + judge
    return out


def run(rec: Path, config: dict, name: str, expr: str, args) -> Path:
    run_id = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    out = ROOT / "results" / f"matched-{rec.name}"
    limit = args.limit or config["limit"]
    cmd = [sys.executable, "-m", "tts.app.cli", "eval", "--engine", "replay", "--traces",
           str(rec / "recorded_traces.jsonl"), "--task", config["task"], "--limit", str(limit),
           "-s", expr, "--output", str(out), "--run-id", run_id, "--no-progress", "--seed", str(config["seed"])]
    if config.get("data") and not str(config["data"]).startswith(("packaged:", "hub:")):
        cmd += ["--data", config["data"]]
    if "judge(" in expr:
        cmd += ["--judge-engine", "vllm", "--judge-model", args.judge_model]
    if args.figures_only:  # read what the runs wrote; start nothing
        return out / run_id
    if (out / run_id / "config.json").exists():
        cmd.append("--resume")
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out / run_id


def main(args) -> None:
    rec = Path(args.rec).resolve()
    config = json.loads((rec / "config.json").read_text())
    grade = row_grader(config)  # each answer graded against its row's gold, as `tts report` regrades
    if grade is None:
        raise SystemExit(f"task '{config['task']}' is not graded by a gold answer: its judges cannot be regraded here")
    figures: dict = {"recording": str(rec), "judge_model": args.judge_model, "settings": {}}
    base: dict[str, bool] | None = None
    base_tokens = 0
    for name, expr in settings(args.n, args.max_tokens).items():
        folder = run(rec, config, name, expr, args)
        if base is None:  # the first setting, SC@n without a judge, is what every other is set against
            rows = read_finished(folder / "results.jsonl")
            base = {i: bool(r.get("correct")) for i, r in rows.items()}
            base_tokens = _tokens(json.loads((folder / "summary.json").read_text()))
            figures["oracle"] = _oracle(rows, grade)
            figures["problems"] = len(base)
        figures["settings"][name] = {"strategy": expr, **_figures(folder, base, base_tokens, grade)}
        print(name, json.dumps(figures["settings"][name]), flush=True)
        write(args.out, figures)
    figures["live"] = {"strategy": config["strategy_config"], "judge_model": config.get("judge_model"),
                       **_figures(rec, base, base_tokens, grade)}
    write(args.out, figures)


def _tokens(summary: dict) -> int:
    return summary["prompt_tokens"] + summary["completion_tokens"]  # verification included, as summary.json counts


def _figures(folder: Path, base: dict[str, bool], base_tokens: int, grade) -> dict:
    """One run's figures, paired against SC@n's problems (`base`) and tokens."""
    rows = read_finished(folder / "results.jsonl")
    summary = json.loads((folder / "summary.json").read_text())
    right = {i: bool(r.get("correct")) for i, r in rows.items()}
    k, tokens = sum(right.values()), _tokens(summary)
    return {"accuracy": round(k / len(right), 4), "correct": k, "ci95": wilson(k, len(right)),
            "all_tokens": tokens, "share_of_sc_all": round(tokens / base_tokens, 3),
            "generated_tokens": summary["completion_tokens"] - summary.get("verify_completion_tokens", 0),
            "verify_calls": summary.get("verify_calls", 0),
            "verify_tokens": summary.get("verify_prompt_tokens", 0) + summary.get("verify_completion_tokens", 0),
            **contests(rows, grade),
            "gained_vs_sc": sorted(i for i in right if right[i] and not base.get(i)),
            "lost_vs_sc": sorted(i for i in right if base.get(i) and not right[i]),
            "errors": summary.get("errors", 0), "wall_seconds": summary.get("wall_seconds")}


def contests(rows: dict[str, dict], grade) -> dict:
    """Where the judge ran: how often a right answer was among its contenders, and how often it then chose one;
    a judge cannot choose an answer the leading classes do not hold."""
    ran = [(rows[i], r["meta"]["judge"]) for i, r in rows.items()
           if (r.get("meta") or {}).get("judge", {}).get("ran")]
    with_right = [(row, j) for row, j in ran if any(grade(row, a) for a in j.get("contenders", ()))]
    leans = sorted(abs(m["p_a"] - 0.5) for _, j in ran for m in j.get("matches", ()) if m.get("p_a") is not None)
    return {"judged_problems": len(ran), "judged_with_a_right_contender": len(with_right),
            # how far the pairwise judge leans from a coin (|P(first) - 0.5|, both orders averaged), its median
            **({"judge_lean_median": round(leans[len(leans) // 2], 4)} if leans else {}),
            "judge_chose_right_when_it_could": sum(grade(row, j["chosen"]) for row, j in with_right
                                                   if j.get("chosen") is not None)}


def _oracle(rows: dict[str, dict], grade) -> dict:
    """Problems where some sample is right."""
    k = sum(any(s.get("answer") is not None and grade(r, s["answer"]) for s in r.get("samples", ()))
            for r in rows.values())
    return {"accuracy": round(k / len(rows), 4), "correct": k, "ci95": wilson(k, len(rows))}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("rec", help="a run folder made with tts eval --record")
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--out", default="judge_matched")
    ap.add_argument("--limit", type=int, default=None, help="problems (default: the recording's own limit; more "
                    "when the recording was resumed with a larger one)")
    ap.add_argument("--figures-only", action="store_true", help="read the settings' finished run folders only")
    main(ap.parse_args())
