#!/usr/bin/env bash
# Issue 18's quality check: byol-align at the main job's budget (preset cpu-small, 3 epochs) and the
# plain PyTorch peer, each evaluated on the icon test split and on the second collection
# (data/icons-other, other sets, concepts unseen in training). One libtorch thread per run, two
# runs at a time; logs and JSON land here. Usage: bench/results/quality/run.sh train NAME [key=value ...]
#   | eval NAME | peer NAME [peer options]. Build the data first: npm run data:icons.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=bench/results/quality
cli() { node dist/src/cli/main.js "$@"; }
case $1 in
  train) # NAME, then config overrides
    name=$2; shift 2
    cli train --preset cpu-small --data coco:data/icons/captions_train.json --images data/icons/images \
      --out "runs/quality-$name" --threads 1 "$@" >> "$out/$name.train.log" 2>&1 ;;
  eval) # NAME: every space on both collections, one JSON line each
    name=$2
    for collection in icons:data/icons/captions_test.json:data/icons/images other:data/icons-other/captions_other.json:data/icons-other/images; do
      IFS=: read -r label captions images <<< "$collection"
      for space in projection encoder; do
        cli eval --checkpoint "runs/quality-$name" --data "coco:$captions" --images "$images" --space "$space" --json --threads 1 \
          > "$out/$name.$label.$space.json"
      done
    done ;;
  peer) # NAME, then options of bench/align_quality_torch.py
    name=$2; shift 2
    /usr/bin/python3 bench/align_quality_torch.py --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1 ;;
  *) echo "usage: $0 train|eval|peer NAME ..." >&2; exit 2 ;;
esac
