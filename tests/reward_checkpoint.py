"""A small reward model in the hub's format, made from SmolLM2-135M for the real tier: a Llama is a Qwen2 without the
attention's q/k/v biases, so the causal LM's weights plus zero biases and a seeded random head make a
`Qwen2ForProcessRewardModel` (Qwen2.5-Math-PRM's architecture: hidden -> Linear -> ReLU -> Linear(2), read at a step
tag) or a `Qwen2ForSequenceClassification` (an outcome reward). Its rewards mean nothing; its code path is the real
one, and `reference_rewards` computes what it must return with transformers' own Qwen2 forward pass."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

STEP_TAG = "<issue_start>"  # one special token of SmolLM2's tokenizer, as <extra_0> is of Qwen2.5-Math-PRM's


def make_reward_model(src: Path, dst: Path, *, process: bool = True, seed: int = 0) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    cfg = json.loads((src / "config.json").read_text())
    keep = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "rms_norm_eps", "vocab_size", "max_position_embeddings", "bos_token_id", "eos_token_id",
            "tie_word_embeddings", "hidden_act")
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
    config = {k: cfg[k] for k in keep if k in cfg} | {
        "model_type": "qwen2", "num_labels": 2, "use_sliding_window": False, "torch_dtype": "float32",
        "architectures": ["Qwen2ForProcessRewardModel" if process else "Qwen2ForSequenceClassification"],
        "rope_theta": theta, "rope_parameters": {"rope_theta": theta, "rope_type": "default"}}
    weights = {k: v.float() for k, v in load_file(str(src / "model.safetensors")).items() if "lm_head" not in k}
    h, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = h // heads
    for i in range(config["num_hidden_layers"]):
        for name, size in (("q", heads * head_dim), ("k", kv * head_dim), ("v", kv * head_dim)):
            weights[f"model.layers.{i}.self_attn.{name}_proj.bias"] = torch.zeros(size)
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g) * 0.05  # noqa: E731
    if process:
        weights |= {"score.0.weight": rand(h, h), "score.0.bias": rand(h), "score.2.weight": rand(2, h),
                    "score.2.bias": torch.zeros(2)}
    else:
        weights["score.weight"] = rand(2, h)
    dst.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(dst / "model.safetensors"))
    (dst / "config.json").write_text(json.dumps(config, indent=1))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    return dst


def reference_rewards(folder: Path, text: str, *, process: bool = True, step_tag: str = STEP_TAG) -> list[float]:
    """The positive-class probability at each step tag (process), or of the whole text (outcome), by transformers'
    Qwen2Model and the head applied here."""
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import Qwen2Model

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tok.encode(text, add_special_tokens=False).ids
    tag = tok.encode(step_tag, add_special_tokens=False).ids[0]
    model = Qwen2Model.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    w = load_file(str(folder / "model.safetensors"))
    with torch.no_grad():
        hidden = model(torch.tensor([ids])).last_hidden_state[0]
        if process:
            x = torch.relu(hidden @ w["score.0.weight"].T + w["score.0.bias"])
            probs = torch.softmax(x @ w["score.2.weight"].T + w["score.2.bias"], dim=-1)
            return [float(probs[i, 1]) for i, t in enumerate(ids) if t == tag]
        return [float(torch.softmax(hidden[-1] @ w["score.weight"].T, dim=-1)[1])]
