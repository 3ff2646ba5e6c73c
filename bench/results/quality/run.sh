#!/usr/bin/env bash
# The alignment ablation of docs/align.md (issues 13 and 18), through the byol-align command itself:
# each objective trained with `byol-align train --preset cpu-small` (3 epochs, the main job's
# budget; one libtorch thread per run, two runs at a time on 2 cores), then `byol-align eval`
# measuring the projection and encoder spaces in one pass on the icon test split and on the second
# collection (data/icons-other: other sets, concepts unseen in training); beside them the plain
# PyTorch peer. Logs and JSON land here; `node dist/scripts/ablation-table.js` prints the table.
# Usage: bench/results/quality/run.sh train NAME [train options or key=value ...] | eval NAME
#   | peer NAME [options of bench/align_quality_torch.py]. Build the data first: npm run data:icons.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=bench/results/quality
cli() { node dist/src/cli/main.js "$@"; }
case $1 in
  train) # NAME, then train options and config overrides
    name=$2; shift 2
    cli train --preset cpu-small --data coco:data/icons/captions_train.json --images data/icons/images \
      --out "runs/quality-$name" --threads 1 "$@" >> "$out/$name.train.log" 2>&1 ;;
  eval) # NAME: both spaces on both collections, one JSON line per space
    name=$2
    for collection in icons:data/icons/captions_test.json:data/icons/images other:data/icons-other/captions_other.json:data/icons-other/images; do
      IFS=: read -r label captions images <<< "$collection"
      cli eval --checkpoint "runs/quality-$name" --data "coco:$captions" --images "$images" --space projection,encoder --json --threads 1 \
        > "$out/$name.$label.json"
    done ;;
  peer) # NAME, then options of bench/align_quality_torch.py
    name=$2; shift 2
    /usr/bin/python3 bench/align_quality_torch.py --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1 ;;
  *) echo "usage: $0 train|eval|peer NAME ..." >&2; exit 2 ;;
esac
