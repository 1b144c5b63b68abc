"""The Ray executor on a local Ray instance with 2 workers: same results as in-process, none lost or duplicated."""
import json

import pytest

from tests.test_cli import rows, tts

pytest.importorskip("ray")


def test_ray_matches_in_process_and_resumes_without_duplicates(tmp_path):
    # without early stop the votes do not depend on which sample finishes first (timing on a loaded machine)
    common = ["eval", "--engine", "sim", "-n", "4", "--no-early-stop", "--no-progress"]
    first = tts(*common, "--executor", "ray", "--workers", "2", "--limit", "10", "--run-id", "r", cwd=tmp_path,
                timeout=300)
    assert first.returncode == 0, first.stderr
    assert len(rows(tmp_path / "results" / "r")) == 10
    resumed = tts(*common, "--executor", "ray", "--workers", "2", "--limit", "20", "--run-id", "r", "--resume",
                  cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    local = tts(*common, "--limit", "20", "--run-id", "l", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    ray_rows, local_rows = rows(tmp_path / "results" / "r"), rows(tmp_path / "results" / "l")
    assert len(ray_rows) == 20 and len({r["id"] for r in ray_rows}) == 20
    key = lambda rs: sorted((r["id"], r["answer"], r["votes"]) for r in rs)  # noqa: E731
    assert key(ray_rows) == key(local_rows)
    summary = json.loads((tmp_path / "results" / "r" / "summary.json").read_text())
    assert summary["executor"]["workers"] == 2 and summary["problems"] == 20


def test_a_killed_worker_loses_no_problem_and_duplicates_none(tmp_path):
    """One Ray worker is killed mid-job (its process ends, as when a node is lost): its batch runs again on a new
    worker; every problem ends up in results.jsonl exactly once."""
    import asyncio
    import threading
    import time

    import ray

    from tts import tasks
    from tts.app.ray_executor import run_eval_ray
    from tts.app.spec import make_spec

    spec = make_spec(dict(engine="sim", n=4, early_stop=False, sim_latency=0.01, concurrency=4, task="gsm8k", limit=40))
    problems = tasks.get("gsm8k").load()[:40]
    run_dir = tmp_path / "k"
    killed = []

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            results = run_dir / "results.jsonl"
            if results.exists() and len(results.read_text().splitlines()) >= 8:
                try:
                    ray.kill(ray.get_actor("tts-k-worker-1"))
                    killed.append(True)
                except ValueError:
                    pass
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        summary = asyncio.run(run_eval_ray(spec, problems, run_dir, {"task": "gsm8k"}, workers=2, batch=4))
    finally:
        thread.join()
        ray.shutdown()
    ids = [json.loads(x)["id"] for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert killed and sorted(ids) == sorted(p.id for p in problems)  # each exactly once
    assert summary["executor"]["workers_lost"] >= 1 and summary["problems"] == 40


def test_a_batch_that_fails_twice_in_live_workers_becomes_error_rows(tmp_path):
    """Every worker's engine fails to open (its server is down): each batch is tried twice, then its problems are
    written as error rows naming the cause; the job ends, with every problem in results.jsonl exactly once."""
    import asyncio
    import socket

    import ray

    from tts import tasks
    from tts.app.ray_executor import run_eval_ray
    from tts.app.spec import make_spec

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = make_spec(dict(engine="openai", base_url=f"http://127.0.0.1:{port}/v1", model="m", n=2, task="gsm8k", limit=6))
    problems = tasks.get("gsm8k").load()[:6]
    run_dir = tmp_path / "f"
    try:
        summary = asyncio.run(run_eval_ray(spec, problems, run_dir, {"task": "gsm8k"}, workers=2, batch=3))
    finally:
        ray.shutdown()
    rows_ = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows_) == sorted(p.id for p in problems)
    assert all(r["error"].startswith("worker error:") and str(port) in r["error"] and not r["correct"]
               for r in rows_), rows_[0]
    assert summary["executor"]["problems_failed_in_workers"] == 6 and summary["executor"]["workers_lost"] == 0
