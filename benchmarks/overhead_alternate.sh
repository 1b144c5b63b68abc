#!/usr/bin/env bash
# Per-branch CPU before and after a change, alternately on one machine: OLD is a checkout of the earlier commit with
# strategies/, tasks/ and engine_adapters/ copied under tts/ (so it imports its own code); writes
# results/bench/overhead_before_after.jsonl, a line per run.
# Usage: bash benchmarks/overhead_alternate.sh OLD_ROOT [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1; ROUNDS=${2:-2}
OUT=results/bench/overhead_before_after.jsonl
: > "$OUT"
for i in $(seq "$ROUNDS"); do
  (cd /tmp && PYTHONPATH="$OLD" "$OLDPWD/.venv/bin/python" "$OLDPWD/benchmarks/overhead_compare.py" --root "$OLD" --label "before_$i") >> "$OUT"
  .venv/bin/python benchmarks/overhead_compare.py --root "$PWD" --label "after_$i" >> "$OUT"
done
cat "$OUT"
