#!/usr/bin/env bash
# Where the ranks of a data-parallel step wait for each other (issue 15; bench/RESULTS.md): 2
# processes of 1 libtorch thread train the default configuration (bench/dist_worker.ts, global
# batch 256, warm-up over the timed batches) with BYOL_ALIGN_TRACE_COLLECTIVES set, then trace.py
# lines up the two ranks' waits in the training group's collectives (the BatchNorm statistics, the
# gathered outputs, the stop all-reduce; the gradient buckets have their own group).
# Usage: bench/results/data-parallel/trace.sh [TIMED_STEPS] [OFF], OFF as the worker's
# BYOL_ALIGN_BENCH_DIST_OFF. Build first (npm run build) and make the icon data set (npm run data:icons).
set -euo pipefail
cd "$(dirname "$0")/../../.."
timed=${1:-6}
off=${2:-}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
port=$((29500 + RANDOM % 1000))
for rank in 0 1; do
  BYOL_ALIGN_TRACE_COLLECTIVES=$out BYOL_ALIGN_BENCH_DIST_OFF=$off OMP_NUM_THREADS=1 \
    node dist/bench/dist_worker.js "$rank" 2 "$port" "$timed" "$timed" data/icons 256 > /dev/null &
done
wait
/usr/bin/python3 bench/results/data-parallel/trace.py "$out/collectives-train-rank0.jsonl" "$out/collectives-train-rank1.jsonl" "$timed"
