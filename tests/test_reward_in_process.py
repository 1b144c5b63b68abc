"""The `reward` scorer with the reward model in this process, on vLLM's pooling runner: a process reward model
(Qwen2.5-Math-PRM's architecture) and an outcome one, made from SmolLM2-135M (tests/reward_checkpoint.py), give the
rewards transformers' own forward pass gives, the choice follows them, every call is charged as verification, and
closing ends the engine's processes. Its bad input (a folder that is not a reward model, a step tag of several
tokens, no folder) is one error line before any engine starts (these run without vLLM)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reward_checkpoint import STEP_TAG, make_reward_model, reference_rewards
from tests.test_bad_input import SIM, cli, one_error
from tts.engine_adapters.sim import SimulatedEngine
from tts.kernel.context import Context
from tts.kernel.types import Problem, Sample
from tts.kit.judging import split_steps
from tts.strategies.reward_http import RewardConfig, judge_reward, prm_input

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SOLUTIONS = ["Tom starts with 3 apples.\n\nHe buys 4 more, so 3 + 4 = 7.\n\nThe answer is 7.",
             "Tom has 3 apples.\n\n3 * 4 = 12.\n\nThe answer is 12.",
             "He has 7 apples."]
F32 = {"max_model_len": 1024, "dtype": "float32"}


@pytest.fixture(scope="module")
def smollm(tmp_path_factory) -> Path:
    from tests.test_real_engine import model_dir

    return Path(model_dir())


@pytest.mark.real_engine
async def test_in_process_prm_gives_transformers_rewards_and_is_charged(smollm, tmp_path):
    from tts.engine_adapters.watchdog import child_pids
    from tts.strategies.scorers import close_all

    folder = make_reward_model(smollm, tmp_path / "prm", process=True)
    problem = Problem(id="p", question=QUESTION, gold="7")
    candidates = [Sample(index=i, text=t, answer=None, completion_tokens=9) for i, t in enumerate(SOLUTIONS)]
    # the reference computes in float32; on a CPU with bfloat16 in hardware tts runs the model in bfloat16, 0.011
    # off in probability here (found on an AVX-512 BF16 EPYC): the test checks the path, so it pins the dtype
    config = RewardConfig(model=str(folder), in_process=True, step_tag=STEP_TAG, aggregate="min",
                          engine_args=F32)
    before = set(child_pids())
    ctx = Context(SimulatedEngine.for_problems([problem]))
    try:
        judgement = await judge_reward(ctx, problem, candidates, config)
        started = set(child_pids()) - before
        started_cmdlines = [_cmdline(p) for p in started]
    finally:
        await close_all()
    expected = []
    for text in SOLUTIONS:
        steps = reference_rewards(folder, prm_input(QUESTION, text, config))
        assert len(steps) == len(split_steps(text, "\n\n"))  # a reward at each step tag, none elsewhere
        expected.append(min(steps))
    assert judgement.scores == pytest.approx(expected, abs=2e-3)
    assert len(set(round(s, 3) for s in expected)) == 3  # the head separates them, so the choice below means something
    assert judgement.chosen == max(range(3), key=expected.__getitem__)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    prompt_tokens = sum(len(tok.encode(prm_input(QUESTION, t, config), add_special_tokens=False).ids) for t in SOLUTIONS)
    u = ctx.usage
    assert (u.verify_calls, u.verify_prompt_tokens, u.prompt_tokens, u.completion_tokens) == (3, prompt_tokens,
                                                                                             prompt_tokens, 0)
    # multiprocessing's resource tracker, started by vLLM's import, is this process's own and lives as long as it
    alive = [p for p in started if "zombie" not in _state(p) and "resource_tracker" not in _cmdline(p)]
    assert any("resource_tracker" not in c for c in started_cmdlines)  # the engine core was among them
    assert not alive, f"reward model processes survived close_all: {[_cmdline(p) for p in alive]}"


@pytest.mark.real_engine
async def test_in_process_outcome_reward_model(smollm, tmp_path):
    from tts.strategies.scorers import close_all

    folder = make_reward_model(smollm, tmp_path / "orm", process=False)
    problem = Problem(id="p", question=QUESTION, gold="7")
    candidates = [Sample(index=i, text=t, answer=None, completion_tokens=9) for i, t in enumerate(SOLUTIONS)]
    config = RewardConfig(model=str(folder), in_process=True, process=False, engine_args=F32)
    try:
        judgement = await judge_reward(Context(SimulatedEngine.for_problems([problem])), problem, candidates, config)
    finally:
        await close_all()
    expected = [reference_rewards(folder, f"{QUESTION}\n{t}", process=False)[0] for t in SOLUTIONS]
    # measured: vLLM's sequence-classification path is off transformers' by up to 0.004 here (logits by up to 0.4,
    # the last hidden state by a few percent) where its process-reward path agrees to 2e-3; found, not chased
    assert judgement.scores == pytest.approx(expected, abs=1e-2)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:160]
    except OSError:
        return "gone"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "gone zombie"  # a process that is gone counts as ended


# --- bad input: no vLLM, no model weights; a config.json and a tokenizer are all the checks read ---

def _folder(tmp_path: Path, arch: str) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = tmp_path / arch
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": [arch], "model_type": "qwen2"}))
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "step": 1, "<": 2, "tag": 3, ">": 4}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<tag>"])  # a tag the tokenizer keeps whole, as Qwen's <extra_0>
    tok.save(str(folder / "tokenizer.json"))
    return folder


def _bon(folder: Path | str, **more) -> str:
    options = {"in_process": True, "model": str(folder), **more}
    return f"best-of-n(n=4, scorer='reward', scorer_options={options!r})"


@pytest.mark.parametrize("case", ["causal-lm", "tag-in-pieces", "no-folder"])
def test_in_process_reward_model_bad_input_is_one_line(tmp_path, case):
    if case == "causal-lm":
        expr, words = _bon(_folder(tmp_path, "LlamaForCausalLM")), "is LlamaForCausalLM, not a reward model"
    elif case == "tag-in-pieces":
        expr, words = _bon(_folder(tmp_path, "Qwen2ForProcessRewardModel"), step_tag="<tag >"), "is 3 tokens"
    else:
        expr, words = _bon(tmp_path / "nowhere"), "does not exist"
    line = one_error(cli("eval", *SIM, "--task", "gsm8k", "-s", expr, "--output", str(tmp_path / "out"),
                         cwd=tmp_path))
    assert words in line, line
    assert not (tmp_path / "out").exists()  # refused before any run folder or engine


def test_in_process_reward_model_checks_pass_on_a_reward_model(tmp_path):
    from tts.engine_adapters.vllm_reward import check_local

    check_local(str(_folder(tmp_path, "Qwen2ForProcessRewardModel")), process=True, step_tag="<tag>")
    check_local(str(_folder(tmp_path, "LlamaForCausalLM")), process=False, step_tag="<tag>",
                engine_args={"convert": "classify"})  # a causal LM the user asks vLLM to convert
