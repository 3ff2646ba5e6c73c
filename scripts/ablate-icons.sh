#!/usr/bin/env bash
# The alignment ablation of docs/align.md: every objective at the same budget on the icon data
# set, each run's results as JSON under bench/results/align/. Extra arguments go to every run
# (e.g. --epochs 3 --split val). Runs go two at a time, THREADS (default 1) libtorch threads each.
# τ_base is the one these rows were measured with, 0.99 (the example's default is now 0.996).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
out=bench/results/align
mkdir -p "$out"
run() { # name, then example arguments
  local name=$1; shift
  node dist/examples/align_icons.js --tau 0.99 --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1
  echo "$name: $(grep -E '^(projection|pairing)' "$out/$name.log" | tr -s ' ' | paste -sd ';')"
}
run infoNce --objective infoNce --threads "${THREADS:-1}" "$@" &
run byol-shared --objective byol --threads "${THREADS:-1}" "$@" &
wait
run byol-separate --objective byol --heads separate --threads "${THREADS:-1}" "$@" &
run intraOnly --objective intraOnly --threads "${THREADS:-1}" "$@" &
wait
run crossOnly-separate --objective crossOnly --heads separate --threads "${THREADS:-1}" "$@" &
run byolInfoNce --objective byolInfoNce --threads "${THREADS:-1}" "$@" &
wait
