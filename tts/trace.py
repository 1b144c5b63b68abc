"""Trace events named by branch path, and the run's DAG as a networkx graph.

The current branch path lives in a ContextVar: asyncio copies the context into each task, so a branch's path is
set once when it starts and every event emitted below it, however deep, carries it.
"""
from __future__ import annotations

import functools
import json
import time
from contextvars import ContextVar
from typing import IO, Any

import networkx as nx

Path = tuple[int, ...]
ROOT: Path = ()
current_path: ContextVar[Path] = ContextVar("tts_branch_path", default=ROOT)


try:  # msgspec encodes trace events several times faster than json; both give the same JSON lines
    import msgspec

    _msgspec_encode = msgspec.json.Encoder(enc_hook=str).encode

    def _encode(event: dict[str, Any]) -> str:
        return _msgspec_encode(event).decode() + "\n"
except ImportError:  # pragma: no cover
    def _encode(event: dict[str, Any]) -> str:
        return json.dumps(event, default=str) + "\n"


@functools.lru_cache(maxsize=65536)  # every event and DAG update of a branch names its path
def path_id(path: Path) -> str:
    return "root" if not path else "root/" + "/".join(map(str, path))


class Tracer:
    """Collects a run's events and DAG. Events may also be streamed to a JSONL sink shared by many runs."""

    def __init__(self, run: str = "run", sink: IO[str] | None = None) -> None:
        self.run = run
        self.sink = sink
        self.events: list[dict[str, Any]] = []
        self.dag = nx.DiGraph()
        self.dag.add_node(path_id(ROOT), kind="root", status="running")
        self._t0 = time.monotonic()
        self.wall0_ns = time.time_ns()  # wall-clock origin of the events' `t`, for exporters
        self._calls = 0

    def emit(self, kind: str, **data: Any) -> dict[str, Any]:
        path = current_path.get()
        event = {**data, "run": self.run, "t": round(time.monotonic() - self._t0, 6), "path": list(path), "kind": kind}
        self.events.append(event)
        if self.sink is not None:
            self.sink.write(_encode(event))
        return event

    # DAG bookkeeping: branches are nodes under their parent; engine calls are leaf nodes of their branch;
    # a join node depends on every branch it gathered.
    def add_branch(self, path: Path, label: str | None = None) -> str:
        node = path_id(path)
        self.dag.add_node(node, kind="branch", status="running", label=label)
        self.dag.add_edge(path_id(path[:-1]), node)
        return node

    def add_call(self) -> str:
        self._calls += 1
        node = f"{path_id(current_path.get())}#call{self._calls}"
        self.dag.add_node(node, kind="call", status="running")
        self.dag.add_edge(path_id(current_path.get()), node)
        return node

    def add_join(self, branch_paths: list[Path], label: str) -> str:
        parent = current_path.get()
        node = f"{path_id(parent)}#join:{label}:{len(self.dag)}"
        self.dag.add_node(node, kind="join", status="done", label=label)
        for p in branch_paths:
            self.dag.add_edge(path_id(p), node)
        return node

    def set_status(self, node: str, status: str, **attrs: Any) -> None:
        self.dag.nodes[node].update(status=status, **attrs)

    def dag_json(self) -> dict[str, Any]:
        return nx.node_link_data(self.dag, edges="edges")
