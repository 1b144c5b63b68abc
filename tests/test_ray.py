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
