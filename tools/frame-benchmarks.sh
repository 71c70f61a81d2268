#!/bin/sh
# Reproduces the frame-classify results table: generates the three data sets, trains, evaluates
# and measures loading speed. Needs RNN_DATA_DIR (for the MNIST files) and a release build
# (swift build -c release --product frame-classify). Writes under ${WORK:-runs/frame-bench}.
set -eu
BIN=${BIN:-.build/release/frame-classify}
WORK=${WORK:-runs/frame-bench}
mkdir -p "$WORK"

"$BIN" generate --kind mnist-rows --out "$WORK/mnist"
"$BIN" train --data "$WORK/mnist" --rows --hidden 128 --epochs 30 --shift 2 --out "$WORK/mnist-run" | tail -n 1
"$BIN" eval --checkpoint "$WORK/mnist-run/last.safetensors" --data "$WORK/mnist" --confusion "$WORK/mnist-confusion.png"

"$BIN" generate --kind moving-digits --out "$WORK/moving" --count 1000
"$BIN" train --data "$WORK/moving" --size 48x48 --shift 3 --epochs 20 --out "$WORK/moving-run" | tail -n 1
"$BIN" eval --checkpoint "$WORK/moving-run/last.safetensors" --data "$WORK/moving" --confusion "$WORK/moving-confusion.png"
"$BIN" bench-load --data "$WORK/moving" --size 48x48 --threads 1

"$BIN" generate --kind shapes --out "$WORK/shapes" --count 500
# Frame differences (--deltas) carry the rotation direction of the squares; without them the
# square-cw / square-ccw pair stays at chance (85 % overall).
"$BIN" train --data "$WORK/shapes" --size 16x16 --deltas --shift 1 --epochs 60 --out "$WORK/shapes-run" | tail -n 1
"$BIN" eval --checkpoint "$WORK/shapes-run/last.safetensors" --data "$WORK/shapes" --confusion "$WORK/shapes-confusion.png"
