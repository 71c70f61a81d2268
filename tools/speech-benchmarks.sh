#!/usr/bin/env bash
# Reproduces the speech-classify results of the README (release build; needs RNN_DATA_DIR with
# fsdd/, espeak-ng + sox for the frame-labelled set, espeak-ng + numpy + scipy for the synthetic voices). Outputs go to ${OUT:-speech-results}.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RNN_DATA_DIR:?set RNN_DATA_DIR to the data-set folder (see datasets/README.md)}"
OUT=${OUT:-speech-results}
FSDD="$RNN_DATA_DIR/fsdd/recordings"
swift build -c release --product speech-classify
BIN=.build/release/speech-classify
mkdir -p "$OUT"

# Feature extraction speed on the whole FSDD, one thread.
$BIN bench-features --data "$FSDD" --threads 1 | tee "$OUT/bench-features.txt"

# FSDD official split (take 0-4 test, 5-49 train): without augmentation, and with the default.
$BIN train --data "$FSDD" --task utterance --split official --epochs 20 --bidirectional --no-augment --out "$OUT/fsdd-official" --overwrite | tail -1
$BIN train --data "$FSDD" --task utterance --split official --epochs 20 --bidirectional --out "$OUT/fsdd-official-augmented" --overwrite | tail -1

# Leave-one-speaker-out, every speaker of fsdd/speakers.tsv. All training files train (the
# validation files would come from the training speakers and say nothing about the held-out one).
for s in $(tail -n +2 "$RNN_DATA_DIR/fsdd/speakers.tsv" | cut -f1); do
  $BIN train --data "$FSDD" --task utterance --split "speaker:$s" --epochs 8 --bidirectional --utterance-cmn --val-fraction 0 --no-augment \
       --out "$OUT/fsdd-loso-$s" --overwrite | tail -1
done

# Leave-one-speaker-out: three seeds of BiLSTM 2x192 and their ensemble, with per-utterance mean
# normalisation and with each speaker's features normalised over that speaker's files
# (--speaker-cmvn), the latter also with silence trimmed (--trim-silence 30) and combined with the
# per-utterance seeds, trimmed too, and that six-model ensemble evaluated again with the
# filterbank warp adapted per held-out speaker (--adapt-warp); then connected digits (CTC) with each speaker held out, three seeds
# and their ensemble, evaluated again with --adapt-warp.
tools/speech-loso --out "$OUT/loso-ensemble" --seeds 3 -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3
tools/speech-loso --out "$OUT/loso-speaker-cmvn" --seeds 3 --normalization speaker -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3
# Both sets of three together, six models per speaker (the best).
tools/speech-loso --out "$OUT/loso-speaker-cmvn" --seeds 3 --reuse --normalization speaker --combine "$OUT/loso-ensemble" -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3
tools/speech-loso --out "$OUT/loso-trim" --seeds 3 --normalization speaker -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
tools/speech-loso --out "$OUT/loso-trim" --seeds 3 --reuse --normalization speaker --combine "$OUT/loso-ensemble" -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
tools/speech-loso --out "$OUT/loso-trim-utterance" --seeds 3 -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
tools/speech-loso --out "$OUT/loso-trim" --seeds 3 --reuse --normalization speaker --combine "$OUT/loso-trim-utterance" -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
tools/speech-loso --out "$OUT/loso-trim" --seeds 3 --reuse --normalization speaker --combine "$OUT/loso-trim-utterance" --adapt-warp -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
# The trimmed --speaker-cmvn model trained with 2,500 synthetic digits (77 espeak-ng voices) beside
# the five FSDD training speakers, two seeds and their ensemble, then with the trimmed models above.
tools/make-synthetic-digits --out "$OUT/fsdd-synthetic" --instances 250 --seed 1 --with "$RNN_DATA_DIR/fsdd/recordings"
tools/speech-loso --out "$OUT/loso-synthetic" --data "$OUT/fsdd-synthetic" --seeds 2 --normalization speaker -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
tools/speech-loso --out "$OUT/loso-synthetic" --data "$OUT/fsdd-synthetic" --seeds 2 --reuse --normalization speaker --combine "$OUT/loso-trim" -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30
# Ten cepstra instead of 13 in the same synthetic-voice configuration, averaged with its seed 1
# (a folder holding only that seed, for --combine): the first row with a mean of 95 % or more and
# no speaker below 90 % (Intel Xeon family 6 model 106).
tools/speech-loso --out "$OUT/loso-synthetic-c10" --data "$OUT/fsdd-synthetic" --seeds 1 --normalization speaker -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30 --cepstra 10
mkdir -p "$OUT/loso-synthetic-seed1" && ln -sfn "$(cd "$OUT/loso-synthetic/s1" && pwd)" "$OUT/loso-synthetic-seed1/s1"
tools/speech-loso --out "$OUT/loso-synthetic-c10" --data "$OUT/fsdd-synthetic" --seeds 1 --reuse --normalization speaker --combine "$OUT/loso-synthetic-seed1" -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30 --cepstra 10
# ... and with both 13-cepstra seeds, three models.
tools/speech-loso --out "$OUT/loso-synthetic-c10" --data "$OUT/fsdd-synthetic" --seeds 1 --reuse --normalization speaker --combine "$OUT/loso-synthetic" -- --augment --epochs 15 --layers 2 --hidden 192 --dropout 0.3 --trim-silence 30 --cepstra 10
tools/speech-loso --out "$OUT/ctc-loso" --sequence --seeds 3
tools/speech-loso --out "$OUT/ctc-loso" --sequence --seeds 3 --reuse --adapt-warp
# Two passes: the CTC ensembles find the words, the two synthetic-voice utterance seeds name them.
tools/speech-loso --out "$OUT/ctc-loso" --sequence --seeds 3 --reuse --rescore "$OUT/loso-synthetic"

# Frame task on a generated set: 16 training voices, 2 held-out voices.
VOICES="en-us,en-us+f3,en-gb+m3,en-gb+f2,en-029+f4,en-gb-x-rp+m7,en-gb-x-gbclan+m2,en-gb-x-gbcwmd+f1,en-us-nyc+m4,en-us+m6,en-gb+f4,en-029+m5,en-gb-x-rp+f1,en-us-nyc+f2,en-gb-x-gbclan+f3,en-gb+m1"
[ -d "$OUT/spoken16" ] || tools/make-spoken-digits --out "$OUT/spoken16" --count 1200 --seed 2 --jobs 2 \
    --voices "$VOICES" --test-voices en-gb-scotland+m1,en-us+f5
$BIN train --data "$OUT/spoken16" --task frame --epochs 15 --bidirectional --dropout 0.2 --out "$OUT/frame16" --overwrite | tail -1
