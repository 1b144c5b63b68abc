"""Reports over run folders: a table per task, accuracy-vs-tokens and accuracy-vs-n plots, strategies compared at a
matched token budget. (A problem's branches over time: tts/app/timeline.py.)"""
from __future__ import annotations

import json
from math import nan
from collections import defaultdict
from pathlib import Path

from tts.kit.curves import accuracy_at_n, accuracy_curve
from tts.kernel.errors import DataError, require
from tts.app.runner import (CONFIG, RESULTS, budget_line, read_finished, read_json, summarize, verification_line,
                            wall_seconds)


def load_run(path: Path) -> tuple[dict, list[dict]]:
    if not (path / CONFIG).exists():
        raise DataError(f"not a run folder (no {CONFIG}): {path}")
    config = read_json(path / CONFIG, "run config")
    rows = list(read_finished(path / RESULTS).values())
    return config, rows


def row_grader(config: dict):
    from tts import tasks
    from tts.kernel.types import Problem

    task = tasks.get(config.get("task", "gsm8k"))
    if task.graded_by != "gold" or task.generate is not None:
        return None  # graded by running tests, or needs the problem's data: no re-grading from rows
    return lambda row, ans: bool(task.grade(Problem(id=row["id"], question="", gold=row.get("gold")), ans))


def table(paths: list[Path]) -> tuple[str, dict]:
    # each run keeps its folder: two runs of one name in different folders are two runs
    by_task: dict[str, list[tuple[Path, dict, list[dict], dict]]] = defaultdict(list)
    for path in paths:
        config, rows = load_run(path)
        if rows:
            # the run's wall time over its segments, not the sum of per-problem times (problems run concurrently)
            by_task[config.get("task", "?")].append((path, config, rows,
                                                      summarize(rows, config, wall_seconds(path, rows))))
    lines = []
    for task, runs in by_task.items():
        lines.append(f"task {task}")
        lines.append(f"  {'run':34} {'strategy':18} {'acc':>6} {'95% CI':>13} {'n':>4} {'gen tok':>9} "
                     f"{'tok/prob':>8} {'cached':>8} {'wall s':>8}")
        for path, config, rows, s in runs:
            name, wall = path.name, s["wall_seconds"]
            acc, (lo, hi) = (s["accuracy"], s["accuracy_ci95"]) if s["accuracy"] is not None else (nan, (nan, nan))
            lines.append(f"  {name[:34]:34} {config.get('strategy', '?')[:18]:18} {acc:6.3f} "
                         f"{lo:6.3f}-{hi:5.3f} {s['problems']:4d} {s['completion_tokens']:9d} "
                         f"{s['completion_tokens'] / max(1, s['problems']):8.0f} {s['cached_prompt_tokens']:8d} "
                         f"{wall:8.1f}")
            lines += [f"    {extra}" for extra in (budget_line(s), verification_line(s)) if extra]
            lines += replica_lines(path)
    return "\n".join(lines), by_task


def replica_lines(run_dir: Path | None) -> list[str]:
    """A pooled run's per-replica figures, from its summary (what the pool recorded as the run went)."""
    if run_dir is None or not (run_dir / "summary.json").exists():
        return []
    try:
        pool = read_json(run_dir / "summary.json", "run summary").get("engine_applied", {}).get("pool")
    except DataError:
        return []
    if not pool:
        return []
    out = [f"    replicas ({pool.get('policy')}): {'name':30} {'requests':>8} {'gen tok':>9} {'prompt':>9} "
           f"{'cached':>9} {'failures':>8} {'busy s':>8} healthy"]
    for r in pool.get("replicas", []):
        out.append(f"    {'':{len(pool.get('policy', '')) + 13}} {str(r.get('name'))[:30]:30} {r.get('requests', 0):8d} "
                   f"{r.get('completion_tokens', 0):9d} {r.get('prompt_tokens', 0):9d} "
                   f"{r.get('cached_prompt_tokens', 0):9d} {r.get('failures', 0):8d} {r.get('busy_seconds', 0):8.1f} "
                   f"{'yes' if r.get('healthy') else 'no'}")
    return out


def subset_curve_refusal(config: dict, rows: list[dict]) -> str | None:
    """Why accuracy at n < N cannot be read from this run's samples, or None if it can. Subsets of an early-stopped
    run's samples are not samples of SC@n: a stopped problem has fewer samples than N, chosen by the stop rule."""
    if config.get("strategy") != "self-consistency":
        return "not a self-consistency run"
    if any(r.get("stopped_early") for r in rows) or len({len(r.get("samples", [])) for r in rows}) > 1:
        return "early-stopped run: samples per problem vary (rerun with --no-early-stop for a curve)"
    return None


def plots(by_task: dict, out_dir: Path) -> list[Path]:
    require("matplotlib", "report", "plots")
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task, runs in by_task.items():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        refused = []
        families: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
        for path, config, rows, s in runs:
            if s["accuracy"] is not None:  # an ungraded run has no point on an accuracy plot
                families[config.get("strategy", path.name)].append(
                    (s["completion_tokens"] / max(1, s["problems"]), s["accuracy"], *s["accuracy_ci95"]))
        draw_frontier(a1, families)
        for path, config, rows, s in runs:
            name, grade = path.name, row_grader(config)
            n = max((len(r.get("samples", [])) for r in rows), default=0)
            if not grade or n < 2:
                continue
            reason = subset_curve_refusal(config, rows)
            if reason:
                refused.append(f"{name[:24]}: {reason}")
                continue
            curve = accuracy_curve(rows, grade, [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n])
            ns, points = list(curve), list(curve.values())
            line, = a2.plot(ns, [p.accuracy for p in points], marker="o",
                            label=f"{config.get('strategy')} ({name[:20]}; exact over all subsets)")
            a2.fill_between(ns, [p.ci95[0] for p in points], [p.ci95[1] for p in points], alpha=0.15,
                            color=line.get_color())
            for p in points:  # every point labelled: its value and how many problems it averages
                a2.annotate(f"{p.accuracy:.3f} ({p.problems})", (p.n, p.accuracy), fontsize=6,
                            textcoords="offset points", xytext=(0, 5), ha="center")
            a2.set_xscale("log", base=2)
            a2.set_xticks(ns, [str(k) for k in ns])
            a2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a1.set(xlabel="generated tokens per problem", ylabel="accuracy (95% CI band)",
               title=f"{task}: accuracy vs tokens")
        a2.set(xlabel="samples n", ylabel="accuracy (95% CI band)", title=f"{task}: accuracy vs n (subsets)")
        if refused:
            a2.text(0.02, 0.02, "not drawn:\n" + "\n".join(refused), transform=a2.transAxes, fontsize=7, va="bottom")
        if a2.lines:
            a2.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def draw_frontier(ax, families: dict[str, list[tuple[float, float, float, float]]]) -> None:
    """Each family's (tokens, accuracy, CI low, CI high) points, its frontier (the points no cheaper point of the
    family beats) as a line with its 95% band; dominated points drawn faint."""
    for family, points in families.items():
        points = sorted(points)
        front, best = [], -1.0
        for p in points:
            if p[1] > best:
                front.append(p)
                best = p[1]
        xs, ys, lo, hi = zip(*front)
        line, = ax.plot(xs, ys, marker="o", label=family)
        ax.fill_between(xs, lo, hi, alpha=0.12, color=line.get_color())
        rest = [p for p in points if p not in front]
        if rest:
            ax.plot([p[0] for p in rest], [p[1] for p in rest], "o", alpha=0.25, color=line.get_color())
    if families:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def replay_plot(path: Path, out_dir: Path) -> Path:
    """The frontier plot of a paired policy replay (benchmarks/policy_replay.py's JSON): one panel per set."""
    require("matplotlib", "report", "plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_json(path, "policy replay")
    sets = data.get("sets", {})
    if not sets:
        raise DataError(f"{path}: no sets (not a policy replay?)")
    labels = {"sc@": "SC@n", "adaptive-": "SC, adaptive stop", "deepconf-": "DeepConf online",
              "job-budget-": "job-level budget", "probe-": "probe consensus"}
    fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), 4.6), squeeze=False)
    for ax, (name, one) in zip(axes[0], sets.items()):
        families: dict[str, list] = defaultdict(list)
        for key, v in one["policies"].items():
            label = next((lab for prefix, lab in labels.items() if key.startswith(prefix)), key)
            families[label].append((v["token_share_of_sc16"], v["accuracy"], *v["ci95"]))
        draw_frontier(ax, families)
        ax.set(xlabel="generated tokens (share of SC@16's)", ylabel="accuracy (95% CI band)",
               title=f"{name}: {one['problems']} problems, paired replay")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{path.stem}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def compare(paths: list[Path], budget: float) -> str:
    """Each strategy's accuracy at a matched budget of generated tokens per problem: sampling runs are cut to the
    largest n that fits (accuracy over subsets of that size); other runs count if their mean fits."""
    lines = [f"matched budget: {budget:.0f} generated tokens per problem"]
    for path in paths:
        config, rows = load_run(path)
        if not rows:
            continue
        per_problem = sum(r["usage"]["completion_tokens"] for r in rows) / len(rows)
        samples = max((len(r.get("samples", [])) for r in rows), default=0)
        grade = row_grader(config)
        if samples > 1 and grade and subset_curve_refusal(config, rows) is None:  # independent, unstopped samples
            per_sample = per_problem / samples
            n = min(samples, int(budget // max(per_sample, 1)))
            if n >= 1:
                acc = accuracy_at_n(rows, grade, [n])[n]
                lines.append(f"  {config.get('strategy'):18} n={n:<3} accuracy {acc:.3f}  ({path.name})")
                continue
        fits = "fits" if per_problem <= budget else f"over budget ({per_problem:.0f})"
        acc = sum(bool(r.get("correct")) for r in rows) / len(rows)
        lines.append(f"  {config.get('strategy'):18} accuracy {acc:.3f}  {fits}  ({path.name})")
    return "\n".join(lines)
