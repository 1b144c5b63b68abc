"""Tool-use questions written by the team, with gold answers, in two shapes:
- parallel: which of four numbers has the largest sum of prime factors (four independent tool calls);
- dependent: chains of lookups in a fictional atlas (each call needs the previous result).
Tools have a simulated latency of 0.5-2 s (fixed per call), like remote APIs; the atlas is fictional so a model
cannot answer from memory. A scripted responder lets the simulator play planner, joiner and ReAct agent on these
questions, for measuring the orchestration on its own.
"""
from __future__ import annotations

import asyncio
import hashlib
import re

from tts.tools.registry import Tool, ToolError, calculator
from tts.kernel.types import Problem

ATLAS = {
    "Veloria": {"capital": "Marsh Harbor", "currency": "vel", "neighbor": "Tarsin"},
    "Tarsin": {"capital": "Ostrava Nova", "currency": "tarn", "neighbor": "Quell"},
    "Quell": {"capital": "Dunmore", "currency": "quill", "neighbor": "Veloria"},
    "Marsh Harbor": {"mayor": "Ida Kern", "population": 41200, "river": "Saale"},
    "Ostrava Nova": {"mayor": "Bram Okafor", "population": 87650, "river": "Lenne"},
    "Dunmore": {"mayor": "Cato Lindqvist", "population": 12900, "river": "Vire"},
    "Ida Kern": {"birth_year": 1971, "party": "Green Lantern"},
    "Bram Okafor": {"birth_year": 1984, "party": "Harbor League"},
    "Cato Lindqvist": {"birth_year": 1966, "party": "Green Lantern"},
}


def _latency(key: str) -> float:
    """0.5-2 s, fixed per call so that runs are comparable."""
    return 0.5 + int(hashlib.blake2b(key.encode(), digest_size=2).hexdigest(), 16) / 0xFFFF * 1.5


def make_tools(latency: bool = True) -> dict[str, Tool]:
    async def prime_factors(n: int) -> list[int]:
        """The prime factors of n, with multiplicity, e.g. prime_factors(12) -> [2, 2, 3]."""
        if latency:
            await asyncio.sleep(_latency(f"pf{n}"))
        if not 1 < n < 10**9:
            raise ToolError("prime_factors: n must be between 2 and 10^9")
        out, d = [], 2
        while d * d <= n:
            while n % d == 0:
                out.append(d)
                n //= d
            d += 1
        return out + ([n] if n > 1 else [])

    async def total(values: list[float]) -> float:
        """The sum of a list of numbers, e.g. total([2, 2, 3]) -> 7."""
        if latency:
            await asyncio.sleep(0.05)
        return sum(values)

    async def lookup(entity: str, attribute: str) -> str | int:
        """Look up an attribute of a place or person in the atlas, e.g. lookup("Veloria", "capital")."""
        if latency:
            await asyncio.sleep(_latency(f"lk{entity}/{attribute}"))
        record = ATLAS.get(str(entity).strip().strip('"'))
        if record is None:
            raise ToolError(f"lookup: no entry for '{entity}'")
        if attribute not in record:
            raise ToolError(f"lookup: '{entity}' has no '{attribute}' (it has: {', '.join(record)})")
        return record[attribute]

    return {t.name: t for t in (Tool(prime_factors), Tool(total), Tool(lookup), calculator)}


def _pf_sum(n: int) -> int:
    out, d, s = n, 2, 0
    while d * d <= out:
        while out % d == 0:
            s += d
            out //= d
        d += 1
    return s + (out if out > 1 else 0)


PARALLEL = [(84, 91, 120, 143), (60, 77, 98, 121), (45, 64, 85, 99), (30, 49, 55, 91), (72, 95, 102, 119),
            (88, 105, 117, 133)]
CHAINS = [("Veloria", ["capital", "mayor"]), ("Tarsin", ["capital", "population"]),
          ("Quell", ["neighbor", "capital", "mayor"]), ("Veloria", ["neighbor", "capital", "river"]),
          ("Tarsin", ["capital", "mayor", "birth_year"]), ("Quell", ["capital", "mayor", "party"])]


def problems() -> list[Problem]:
    out = []
    for i, nums in enumerate(PARALLEL):
        best = max(nums, key=_pf_sum)
        q = (f"Which of the numbers {', '.join(map(str, nums[:-1]))} and {nums[-1]} has the largest sum of prime "
             f"factors (counted with multiplicity)?")
        plan = [f"{j + 1}. prime_factors({n})" for j, n in enumerate(nums)]
        plan += [f"{len(nums) + j + 1}. total(${j + 1})" for j in range(len(nums))] + [f"{2 * len(nums) + 1}. join()"]
        out.append(Problem(id=f"parallel-{i}", question=q, gold=str(best),
                           meta={"shape": "parallel", "plan": plan, "critical_path": [f"pf{n}" for n in nums]}))
    for i, (start, attrs) in enumerate(CHAINS):
        value, chain, plan = start, [], []
        for j, attr in enumerate(attrs):
            chain.append(f"lk{value}/{attr}")
            plan.append(f'{j + 1}. lookup({json_str(value) if j == 0 else "$" + str(j)}, "{attr}")')
            value = ATLAS[value][attr]
        phrase = start
        for attr in attrs[:-1]:
            phrase = f"the {attr.replace('_', ' ')} of {phrase}"
        q = f"What is the {attrs[-1].replace('_', ' ')} of {phrase}? Use the atlas."
        out.append(Problem(id=f"chain-{i}", question=q, gold=str(value),
                           meta={"shape": "dependent", "plan": plan + [f"{len(attrs) + 1}. join()"],
                                 "critical_path": chain}))
    return out


def json_str(s: str) -> str:
    return '"' + s.replace('"', '\\"') + '"'


def critical_path_seconds(problem: Problem) -> float:
    """The latency bound: the longest chain of tool latencies (parallel calls overlap; chains add up)."""
    keys = problem.meta["critical_path"]
    if problem.meta["shape"] == "parallel":
        return max(_latency(k) for k in keys) + 0.05
    return sum(_latency(k) for k in keys)


def load(path=None) -> list[Problem]:
    return problems()


PROMPT = "{question}"
_ANSWER = re.compile(r"answer\s*:\s*(.+)", re.IGNORECASE)


def extract(text: str) -> str | None:
    m = _ANSWER.findall(text or "")
    return m[-1].strip().strip("*.").strip() if m else None


def grade(problem: Problem, predicted: str | None) -> bool:
    if predicted is None:
        return False
    norm = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731
    return norm(problem.gold) == norm(predicted) or (norm(problem.gold) in norm(predicted) and len(predicted) < 60)


def sim_responder(items: list[Problem]):
    """Lets the simulator act as planner, joiner and ReAct agent on these questions (gold behaviour)."""
    by_question = {p.question: p for p in items}

    def respond(request) -> str | None:
        text = request.prompt_text()
        problem = next((p for q, p in by_question.items() if q in text), None)
        if problem is None:
            return None
        if "PLANNER" in text:
            return "Thought: independent calls first.\n" + "\n".join(problem.meta["plan"])
        if "JOINER" in text:
            return f"Thought: the observations answer it.\nAnswer: {problem.gold}"
        if "REACT" in text:
            done = len(re.findall(r"^Observation:", text, re.MULTILINE))
            calls = [line.split(". ", 1)[1] for line in problem.meta["plan"][:-1]]
            if done >= len(calls):
                return f"Thought: done.\nAnswer: {problem.gold}"
            return f"Thought: next step.\nAction: {_concrete(calls[done], text)}"
        return None

    return respond


def _concrete(call: str, transcript: str) -> str:
    """ReAct has no $N: fill references from the observations so far."""
    observations = re.findall(r"^Observation: (.*)", transcript, re.MULTILINE)
    return re.sub(r"\$(\d+)", lambda m: json_str(observations[int(m.group(1)) - 1]) if not
                  observations[int(m.group(1)) - 1].startswith("[") else observations[int(m.group(1)) - 1], call)
