#!/usr/bin/env bash
# Where data-parallel training's time goes (issue 15; bench/RESULTS.md): 2 processes of 1 libtorch
# thread on the default configuration (global batch 256), with the parts of data-parallel training
# taken away one layer at a time (bench/dist_worker.ts, BYOL_ALIGN_BENCH_DIST_OFF), beside two
# independent processes on half the batch each. The arms alternate, ROUNDS times (default 3); each
# line is one run: the slower rank's mean wall and CPU ms over the timed steps (and the CPU's
# kernel part), after as many warm-up steps over the same batches.
# Usage: bench/results/data-parallel/ablate.sh [ROUNDS] [TIMED_STEPS]. Build first (npm run build) and make
# the icon data set (npm run data:icons).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
timed=${2:-6}
worker=dist/bench/dist_worker.js
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

report() { # LABEL FILE...: the slower rank's mean step, wall, CPU and kernel CPU, over the timed steps
  TIMED=$timed /usr/bin/python3 - "$@" <<'PY'
import json, os, sys
label, files = sys.argv[1], sys.argv[2:]
ranks = [json.loads(open(f).read().strip().split('\n')[-1]) for f in files]
timed = int(os.environ['TIMED'])
wall = max(sum(r['stepMs'][-timed:]) / timed for r in ranks)
cpu = max(sum(r['cpuMs'][-timed:]) / timed for r in ranks)
system = max(sum(r['systemMs'][-timed:]) / timed for r in ranks)
print(f'{label:<44} {wall:8.0f} {cpu:8.0f} {system:8.0f}')
PY
}

two() { # LABEL OFF: two ranks of one job, BYOL_ALIGN_BENCH_DIST_OFF=OFF
  local port=$((29500 + RANDOM % 1000))
  for rank in 0 1; do
    BYOL_ALIGN_BENCH_DIST_OFF=$2 OMP_NUM_THREADS=1 node "$worker" "$rank" 2 "$port" "$timed" "$timed" data/icons 256 > "$out/r$rank" &
  done
  wait
  report "$1" "$out/r0" "$out/r1"
}

halves() { # two processes of one rank each on half the batch, at once, without communicating
  for i in 0 1; do OMP_NUM_THREADS=1 node "$worker" 0 1 0 "$timed" "$timed" data/icons 128 > "$out/h$i" & done
  wait
  report "two independent half batches" "$out/h0" "$out/h1"
}

printf '%-44s %8s %8s %8s\n' 'arm (2 processes, 128 rows each)' 'wall ms' 'CPU ms' 'kernel'
for _ in $(seq "$rounds"); do
  two 'data-parallel (everything)' ''
  two 'without gradient averaging' gradients
  two 'without it, synchronised BatchNorm' gradients,syncbn
  two 'without them, the gathered outputs' gradients,syncbn,gathers
  two 'without them, the stop all-reduce' gradients,syncbn,gathers,stop
  two 'without a process group (shards alone)' gradients,syncbn,gathers,stop,group
  halves
done
