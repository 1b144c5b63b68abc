"""Trace events named by branch path, and the run's DAG as a networkx graph.

The current branch path lives in a ContextVar: asyncio copies the context into each task, so a branch's path is
set once when it starts and every event emitted below it, however deep, carries it.
"""
from __future__ import annotations

import json
import time
from contextvars import ContextVar
from functools import lru_cache
from typing import IO, Any, Callable

import networkx as nx

Path = tuple[int, ...]
ROOT: Path = ()
current_path: ContextVar[Path] = ContextVar("tts_branch_path", default=ROOT)


try:  # msgspec encodes trace events several times faster than json; both give the same JSON lines
    import msgspec

    _encode_lines = msgspec.json.Encoder(enc_hook=str).encode_lines

    def _encode(events: list[dict[str, Any]]) -> str:
        return _encode_lines(events).decode()
except ImportError:  # pragma: no cover
    def _encode(events: list[dict[str, Any]]) -> str:
        return "".join(json.dumps(e, default=str) + "\n" for e in events)


def json_line(obj: Any) -> str:
    """`obj` as one JSON line, encoded as the trace is (results rows are written once per problem)."""
    return _encode([obj])


@lru_cache(maxsize=1 << 16)  # called for every branch, call and status change; paths repeat across problems
def path_id(path: Path) -> str:
    return "root" if not path else "root/" + "/".join(map(str, path))


class Tracer:
    """Collects a run's events and DAG. Events go to a JSONL sink (shared by many runs) when `flush()` is called:
    a batch runner flushes once per finished problem, so a killed run leaves no half-written problem trace.

    The DAG is kept as plain dicts while the run is hot and built as a networkx graph when asked for: graph updates
    on every branch and call were a measurable part of the per-branch overhead."""

    UNNAMED = "run"  # a tracer made without a run name (a one-off context); a batch names it after the problem

    def __init__(self, run: str = UNNAMED, sink: IO[str] | None = None) -> None:
        self.run = run
        self.sink = sink
        self.events: list[dict[str, Any]] = []
        self._flushed = 0
        self._nodes: dict[str, dict[str, Any]] = {path_id(ROOT): {"kind": "root", "status": "running"}}
        self._edges: list[tuple[str, str]] = []
        self._graph: tuple[int, int, nx.DiGraph] | None = None
        self._t0 = time.monotonic()
        self.wall0_ns = time.time_ns()  # wall-clock origin of the events' `t`, for exporters
        self._calls = 0
        self._children: dict[Path, int] = {}  # each path's own child counter: branch numbering lives here
        # what the model saw: each distinct prompt once, by id (`call_start` events name the id)
        self.prompts: dict[str, Any] = {}
        self._prompt_ids: dict[Any, str] = {}

    def prompt_id(self, prompt: Any, dump: Callable[[], Any]) -> str:
        """The id of a request's input (`prompt` hashable: a string or a tuple of messages); its first sighting
        stores `dump()`, the input as JSON, so that a run records each distinct prompt once."""
        pid = self._prompt_ids.get(prompt)
        if pid is None:
            pid = self._prompt_ids[prompt] = f"p{len(self._prompt_ids)}"
            self.prompts[pid] = dump()
        return pid

    def emit(self, kind: str, **data: Any) -> dict[str, Any]:
        data.update(run=self.run, t=round(time.monotonic() - self._t0, 6), path=list(current_path.get()), kind=kind)
        self.events.append(data)
        return data

    def flush(self) -> None:
        """Write the events not yet written to the sink."""
        if self.sink is not None and self._flushed < len(self.events):
            self.sink.write(_encode(self.events[self._flushed:]))
        self._flushed = len(self.events)

    # DAG bookkeeping: branches are nodes under their parent; engine calls are leaf nodes of their branch;
    # a join node depends on every branch it gathered.
    def _add(self, node: str, parent: str, attrs: dict[str, Any]) -> None:
        self._nodes[node] = attrs
        self._edges.append((parent, node))

    def next_child(self) -> Path:
        """The path of a new branch under the current one: numbered by the trace scope, so that every context on
        this tracer (nested strategies, a prune's shadow pass) adds to the one DAG instead of overwriting it."""
        parent = current_path.get()
        i = self._children.get(parent, 0)
        self._children[parent] = i + 1
        return parent + (i,)

    def add_branch(self, path: Path, label: str | None = None) -> str:
        node = path_id(path)
        self._add(node, path_id(path[:-1]), {"kind": "branch", "status": "running", "label": label})
        return node

    def add_call(self) -> str:
        self._calls += 1
        parent = path_id(current_path.get())
        node = f"{parent}#call{self._calls}"
        self._add(node, parent, {"kind": "call", "status": "running"})
        return node

    def add_join(self, branch_paths: list[Path], label: str) -> str:
        parent = current_path.get()
        node = f"{path_id(parent)}#join:{label}:{len(self._nodes)}"
        self._nodes[node] = {"kind": "join", "status": "done", "label": label}
        self._edges.extend((path_id(p), node) for p in branch_paths)
        return node

    def set_status(self, node: str, status: str, **attrs: Any) -> None:
        self._nodes[node].update(status=status, **attrs)
        self._graph = None

    @property
    def dag(self) -> nx.DiGraph:
        """The run's DAG (a snapshot: rebuilt when nodes, edges or statuses changed since the last call)."""
        key = (len(self._nodes), len(self._edges))
        if self._graph is None or self._graph[:2] != key:
            g = nx.DiGraph()
            g.add_nodes_from((n, dict(a)) for n, a in self._nodes.items())
            g.add_edges_from(self._edges)
            self._graph = (*key, g)
        return self._graph[2]

    def dag_json(self) -> dict[str, Any]:
        """The DAG in networkx's node-link form (`nx.node_link_graph(d, edges="edges")` reads it back), built from
        the dicts directly: going through networkx cost more than the rest of a problem's trace bookkeeping."""
        return {"directed": True, "multigraph": False, "graph": {},
                "nodes": [{**a, "id": n} for n, a in self._nodes.items()],
                "edges": [{"source": s, "target": t} for s, t in self._edges]}
