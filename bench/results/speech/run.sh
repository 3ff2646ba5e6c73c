#!/usr/bin/env bash
# Three-way alignment on the spoken icon set (issue 17, docs/audio.md): `byol-align train` with the
# default objective on data/icons-speech/train.jsonl (image, text and audio, items lacking some),
# validating on 5% of the training concepts, and the same run without audio
# (data.modalities=[image,text]) at the same budget; then `byol-align eval` on test_all.jsonl (the
# test split's unseen concepts, every item with all three) in every direction. One libtorch thread
# per run so that two run side by side on 2 cores. Build the data first: npm run data:icons &&
# npm run data:speech.
# Usage: bench/results/speech/run.sh train NAME [train options or key=value ...] | eval NAME
# TRAIN_MANIFEST=FILE trains on data/icons-speech/FILE instead of train.jsonl (transcript_manifest.py).
# THREADS=N gives a lone training run N libtorch threads (default 1).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=bench/results/speech
cli() { node dist/src/cli/main.js "$@"; }
case $1 in
  train) # NAME, then train options and config overrides
    name=$2; shift 2
    cli train --preset cpu-small --data "jsonl:data/icons-speech/${TRAIN_MANIFEST:-train.jsonl}" --val-fraction 0.05 \
      --out "runs/speech-$name" --threads "${THREADS:-1}" data.allowOutsideImages=true "$@" >> "$out/$name.train.log" 2>&1 ;;
  eval) # NAME: every direction on the test split's items with all three modalities, one JSON line
    name=$2
    cli eval --checkpoint "runs/speech-$name" --data jsonl:data/icons-speech/test_all.jsonl --json --threads 1 \
      > "$out/$name.test.json" ;;
  *) echo "usage: $0 train|eval NAME ..." >&2; exit 2 ;;
esac
