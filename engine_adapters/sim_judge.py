"""The simulator as a judge: on a judge prompt (tts/kit/judging.py) it gives the verdict a judge of set accuracy
would, as one token with its alternatives' logprobs, so that verifiers, pairwise judges and selection are tested on
the simulator as they run on a model. It knows what is right from the answers the simulator itself wrote
("The answer is X") and the gold of the question in the prompt."""
from __future__ import annotations

import math
import random
import re

from tts.kernel.types import TokenLogprob
from collections import Counter

from tts.kit.judging import PAIR_CUE, SELECT_CUE, VERIFY_CUE
from tts.kit.open_choice import USC_CUE

# a reasoning step that went wrong, as the simulator writes it when it reasons step by step (a request that stops at
# a blank line): every later answer of that trace is wrong, and the simulator's verifier scores a partial solution
# down for it, as a process reward model would
SLIP = " Hmm, I may have misread a quantity."
_STATED = re.compile(r"The answer is (.+?)\.(?:\s|$)")
_SURE = 0.9  # the verdict token's probability; the alternative gets the rest


def _answer(solution: str) -> str | None:
    found = _STATED.findall(solution)
    return found[-1].strip() if found else None


def _sections(prompt: str, label: str) -> list[str]:
    return re.split(rf"\n\n{label} ?[A-Z0-9]*:\n", prompt)[1:]


CUES = (VERIFY_CUE, PAIR_CUE, SELECT_CUE, USC_CUE)


def judges(prompt: str) -> bool:
    """Whether `prompt` asks for a judgment (so that other short requests, such as answer probes, skip the rest)."""
    return any(cue in prompt for cue in CUES)


def verdict(prompt: str, gold: str | None, accuracy: float, rng: random.Random
            ) -> tuple[str, tuple[TokenLogprob, ...]] | None:
    """(verdict text, its logprobs) when `prompt` is a judge prompt, else None."""
    honest = rng.random() < accuracy
    if VERIFY_CUE in prompt:
        solution = prompt.split("\n\nProposed solution:\n", 1)[-1].split(VERIFY_CUE)[0]
        stated = _answer(solution)
        right = SLIP not in solution if stated is None else (gold is not None and stated == gold)
        return _token("Yes" if right == honest else "No", ("Yes", "No"))
    if PAIR_CUE in prompt:
        parts = _sections(prompt.split(PAIR_CUE)[0], "Solution")
        a_right = gold is not None and len(parts) > 0 and _answer(parts[0]) == gold
        b_right = gold is not None and len(parts) > 1 and _answer(parts[1]) == gold
        if a_right == b_right:
            return _token(rng.choice("AB"), ("A", "B"), sure=0.5)
        return _token("A" if a_right == honest else "B", ("A", "B"))
    if SELECT_CUE in prompt:
        parts = _sections(prompt.split(SELECT_CUE)[0], "Solution")
        right = [i for i, p in enumerate(parts) if gold is not None and _answer(p) == gold]
        wrong = [i for i in range(len(parts)) if i not in right]
        pool = right if (honest and right) or not wrong else wrong
        return str(rng.choice(pool) + 1), ()
    if USC_CUE in prompt:  # names a response holding the most common answer (a wrong pick, when not honest)
        parts = re.split(r"\n\nResponse \d+:\n", prompt.split(USC_CUE)[0])[1:]
        said = [_answer(p) for p in parts]
        common = Counter(a for a in said if a is not None).most_common(1)
        pool = [i for i, a in enumerate(said) if common and a == common[0][0]] or list(range(len(parts)))
        if not honest and len(pool) < len(parts):
            pool = [i for i in range(len(parts)) if i not in pool]
        return f"The most consistent response is Response {rng.choice(pool)}", ()
    return None


def _token(said: str, options: tuple[str, str], sure: float = _SURE) -> tuple[str, tuple[TokenLogprob, ...]]:
    other = options[1] if said == options[0] else options[0]
    top = ((said, math.log(sure)), (other, math.log(1 - sure)))
    return said, (TokenLogprob(token=said, logprob=math.log(sure), top=top),)
