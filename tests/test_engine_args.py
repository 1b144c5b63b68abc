"""Hub model ids and --engine-arg / --request-arg reach vLLM's own argument objects, checked before anything starts."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("vllm")

CAPTURE = textwrap.dedent("""
    import json, sys
    OUT = sys.argv[1]
    from vllm.v1.engine.async_llm import AsyncLLM

    def capture(args, *a, **k):  # vLLM's argument object as tts built it; then stop before loading weights
        with open(OUT, "w") as f:
            json.dump({k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}, f)
        raise RuntimeError("captured")

    AsyncLLM.from_engine_args = classmethod(lambda cls, args, *a, **k: capture(args))
    from tts.app.cli import main
    sys.argv = ["tts", *sys.argv[2:]]
    main()
""")


def hub_cache(root, repo="Qwen/Qwen3-8B"):
    """A model as the Hugging Face cache holds it (models--org--name/{refs,snapshots})."""
    folder = root / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    snap = folder / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}))
    return root


def run(tmp_path, *args):
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache(tmp_path / "hub")), "HF_ENDPOINT": "http://127.0.0.1:9",
           "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "args.json"
    r = subprocess.run([sys.executable, "-c", CAPTURE, str(out), *args], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    return r, (json.loads(out.read_text()) if out.exists() else None)


def test_a_hub_id_and_engine_args_reach_vllms_engine_args(tmp_path):
    r, args = run(tmp_path, "eval", "--model", "Qwen/Qwen3-8B", "--limit", "1", "--no-progress",
                  "--engine-arg", "tensor_parallel_size=2", "--engine-arg", "gpu_memory_utilization=0.85",
                  "--engine-arg", "quantization=awq", "--engine-arg", "max_model_len=32768",
                  "--engine-arg", "enable_prefix_caching=false", "--request-arg", "top_k=20")
    assert args is not None, r.stderr
    # vLLM itself maps a hub id to its cached snapshot when the hub is offline
    assert args["model"] in ("Qwen/Qwen3-8B", str(tmp_path / "hub" / "models--Qwen--Qwen3-8B" / "snapshots" / "0123abcd"))
    assert args["tensor_parallel_size"] == 2
    assert args["gpu_memory_utilization"] == 0.85 and args["quantization"] == "awq"
    assert args["max_model_len"] == 32768 and args["enable_prefix_caching"] is False  # the user's values win
    from tts.engine_adapters.vllm_engine import cpu_dtype

    # tts's defaults where the user said nothing: on the CPU build, the dtype this machine computes fast
    assert args["dtype"] == cpu_dtype() and args["seed"] == 0
    assert "captured" in r.stderr and r.returncode == 1  # the start failed, cleanly, as the capture made it


@pytest.mark.parametrize("args,message", [
    (["--engine-arg", "tensor_paralel_size=2"], "not a vLLM engine argument (did you mean 'tensor_parallel_size'?)"),
    (["--engine-arg", "model=x"], "--engine-arg model: set it with --model"),
    (["--request-arg", "min_pp=0.1"], "not a vLLM sampling parameter (did you mean 'min_p'?)"),
    (["--request-arg", "temperature=0.1"], "tts sets it per request"),
    (["--request-arg", "chat_template_kwargs=5"], "expected a JSON object"),
    (["--model", "Qwen/NotCached-1B"], "not in the local Hugging Face cache and the hub is unreachable"),
    (["--model", "not a model"], "is not a hub id"),
])
def test_bad_engine_arguments_are_one_line_before_anything_starts(tmp_path, args, message):
    r, captured = run(tmp_path, "eval", "--model", "Qwen/Qwen3-8B", "--limit", "1", *args)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert captured is None and r.returncode == 1
    assert lines[-1].startswith("error: ") and message in lines[-1], r.stderr
    assert not (tmp_path / "results").exists()


def test_the_cpu_build_computes_in_bfloat16_only_where_the_hardware_does():
    from tts.engine_adapters.vllm_engine import cpu_dtype

    amd = "processor\t: 0\nflags\t\t: fpu sse sse2 avx fma f16c avx2 sha_ni vaes\n"  # an AVX2 EPYC (this CI's kind)
    sapphire = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    cooper = "flags\t\t: fpu avx2 avx512f avx512_bf16\n"
    skylake = "flags\t\t: fpu avx2 avx512f avx512bw\n"  # AVX-512 without BF16: bf16 would be emulated
    assert [cpu_dtype(x) for x in (amd, sapphire, cooper, skylake, "")] == \
        ["float32", "bfloat16", "bfloat16", "float32", "float32"]
