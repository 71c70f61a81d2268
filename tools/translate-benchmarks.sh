#!/usr/bin/env bash
# Reproduces the translate-toy results table (release build, a few minutes per run).
# Usage: tools/translate-benchmarks.sh [OUTPUT_DIR]
# Each run prints its JSON summary (validation and held-out test exact match) as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product translate-toy
T=.build/release/translate-toy
OUT=${1:-translate-benchmarks}
mkdir -p "$OUT"

run() {  # name, then train arguments
  local name=$1; shift
  echo "== $name: translate-toy train $*"
  "$T" train "$@" --out "$OUT/$name" --overwrite 2> "$OUT/$name.log" | tail -n 1
}

run digits-to-letters --task digits-to-letters --count 10000 --attention general --steps 1500 --eval-every 500
run dates --task dates --count 30000 --attention general --time-budget 240 --eval-every 1000
run number-words --task number-words --count 30000 --attention general --time-budget 240 --eval-every 1000
run reverse-attention --task reverse --min-length 20 --max-length 30 --count 20000 --attention general --steps 1200 --eval-every 400
run reverse-none --task reverse --min-length 20 --max-length 30 --count 20000 --attention none --steps 1200 --eval-every 400
"$T" eval --checkpoint "$OUT/reverse-attention/best.safetensors" --data "$OUT/reverse-attention/test.tsv" \
  --attention-png "$OUT/attention-reverse.png"
