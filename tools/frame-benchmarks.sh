#!/bin/sh
# Reproduces the frame-classify results table: generates the three data sets, trains, evaluates
# and measures loading speed. Needs RNN_DATA_DIR (for the MNIST files) and a release build
# (swift build -c release --product frame-classify). Writes under ${WORK:-runs/frame-bench}.
#
# Each task is trained twice: with --val-fraction 0 (the whole training folder trains; the
# figure is the final model on the test set, as in earlier versions of this table) and with the
# default --val-fraction 0.1 (best.safetensors chosen on the validation share; the summary's
# test_accuracy is that checkpoint on the test set). The test set never chooses anything.
set -eu
BIN=${BIN:-.build/release/frame-classify}
WORK=${WORK:-runs/frame-bench}
mkdir -p "$WORK"

"$BIN" generate --kind mnist-rows --out "$WORK/mnist"
for v in 0 0.1; do
  "$BIN" train --data "$WORK/mnist" --rows --hidden 128 --epochs 30 --shift 2 --val-fraction $v --out "$WORK/mnist-run-$v" --overwrite | tail -n 1
done
"$BIN" eval --checkpoint "$WORK/mnist-run-0/last.safetensors" --data "$WORK/mnist" --confusion "$WORK/mnist-confusion.png"

"$BIN" generate --kind moving-digits --out "$WORK/moving" --count 1000
for v in 0 0.1; do
  "$BIN" train --data "$WORK/moving" --size 48x48 --shift 3 --epochs 20 --val-fraction $v --out "$WORK/moving-run-$v" --overwrite | tail -n 1
done
"$BIN" bench-load --data "$WORK/moving" --size 48x48 --threads 1

"$BIN" generate --kind shapes --out "$WORK/shapes" --count 500
# Frame differences (--deltas) carry the rotation direction of the squares; without them the
# square-cw / square-ccw pair stays at chance (85 % overall).
for v in 0 0.1; do
  "$BIN" train --data "$WORK/shapes" --size 16x16 --deltas --shift 1 --epochs 60 --val-fraction $v --out "$WORK/shapes-run-$v" --overwrite | tail -n 1
done
