#!/usr/bin/env bash
# The main job: image–text alignment on the icon data set. Builds the data set when missing
# (npm run data:icons), trains with the byol-align command (preset cpu-small, the default
# objective: BYOL's cross term beside VICReg's terms, no negatives, see docs/align.md), validating
# after every epoch on 5% of the training concepts held out of training (never on the test split),
# then prints the retrieval metrics on the test split's unseen concepts. Extra arguments go to `train`
# (e.g. --epochs 1, or key=value overrides). Rerunning continues the run in runs/icons (RUN_DIR
# to use another directory).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
[ -f data/icons/captions_train.json ] || node dist/scripts/build-icon-dataset.js --out data/icons
out=${RUN_DIR:-runs/icons}
resume=()
if [ -d "$out/checkpoints" ] && [ -n "$(ls "$out/checkpoints")" ]; then resume=(--resume); fi
node dist/src/cli/main.js train --preset cpu-small \
  --data coco:data/icons/captions_train.json --images data/icons/images \
  --val-fraction 0.05 --out "$out" "${resume[@]}" "$@"
# eval uses the space the run measured best at validation, the one `embed` returns (--space to choose).
node dist/src/cli/main.js eval --checkpoint "$out" \
  --data coco:data/icons/captions_test.json --images data/icons/images
