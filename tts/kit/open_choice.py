"""Pure pieces of choosing a whole response where no answer extractor applies: Universal Self-Consistency's prompt
and the reading of its reply (Chen et al. 2023), and meaning clusters over embeddings with their medoid."""
from __future__ import annotations

import re
from typing import Sequence

from tts.kernel.types import Message

USC_CUE = ("Evaluate these responses.\nSelect the most consistent response based on majority consensus.\n"
           "Start your answer with \"The most consistent response is Response X\" (without quotes).")


def usc_messages(question: str, responses: Sequence[str]) -> tuple[Message, ...]:
    """The USC prompt, as the paper words it: the responses numbered from 0."""
    listed = "\n\n".join(f"Response {i}:\n{r}" for i, r in enumerate(responses))
    return (Message(role="user", content=f"I have generated the following responses to the question: {question}\n\n"
                                         f"{listed}\n\n{USC_CUE}"),)


def usc_pick(reply: str, k: int) -> int | None:
    """The 0-based response a USC reply names ("... Response 3"), or None when it names none of the k."""
    m = re.search(r"[Rr]esponse\s*#?\s*(\d+)", reply or "")
    if m and 0 <= int(m.group(1)) < k:
        return int(m.group(1))
    return None


def clusters(similarity: Sequence[Sequence[float]], threshold: float) -> list[list[int]]:
    """Meaning clusters: connected components of the graph joining responses at least `threshold` similar
    (cosine), largest first (ties: the tighter cluster, then the earliest response)."""
    import networkx as nx

    n = len(similarity)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((i, j) for i in range(n) for j in range(i + 1, n) if similarity[i][j] >= threshold)
    groups = [sorted(c) for c in nx.connected_components(graph)]

    def tightness(group: list[int]) -> float:
        if len(group) < 2:
            return 0.0
        pairs = [(i, j) for i in group for j in group if i < j]
        return sum(similarity[i][j] for i, j in pairs) / len(pairs)

    return sorted(groups, key=lambda g: (-len(g), -tightness(g), g[0]))


def medoid(group: Sequence[int], similarity: Sequence[Sequence[float]]) -> int:
    """The member most similar, in sum, to the rest of its group (the earliest on a tie)."""
    return max(group, key=lambda i: (sum(similarity[i][j] for j in group if j != i), -i))
