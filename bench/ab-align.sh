#!/usr/bin/env bash
# A/B of the alignment step across code versions: each git revision (or `worktree`, the files as
# they are now) is built into its own folder under $AB_DIR (default /tmp/byol-align-ab) with this
# checkout's addon and node_modules, the PyTorch side is removed so that only byol-align's step is
# timed, and `bench/run.js align` runs in each folder in turn, round after round, so that the
# machine's drift falls on every version alike. Prints one line per run; compare medians.
# Usage: bench/ab-align.sh [--rounds N] REV|worktree ...   (bench/RESULTS.md, issue 13)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
if [ "${1:-}" = --rounds ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [--rounds N] REV|worktree ..." >&2; exit 2; }
root=${AB_DIR:-/tmp/byol-align-ab}
here=$(pwd)
for rev in "$@"; do
  dir=$root/$rev
  rm -rf "$dir" && mkdir -p "$dir"
  if [ "$rev" = worktree ]; then git ls-files -z | xargs -0 cp --parents -t "$dir"; else git archive "$rev" | tar -x -C "$dir"; fi
  ln -s "$here/node_modules" "$dir/node_modules"
  ln -s "$here/data" "$dir/data"
  cp -r build "$dir/build"
  rm -f "$dir/bench/align_torch.py"
  (cd "$dir" && npx tsc -p . > /dev/null)
done
for round in $(seq "$rounds"); do
  for rev in "$@"; do
    cd "$root/$rev"
    # Versions before the --threads flag run on every core, which is what --threads 2 is here.
    if grep -q "'threads'\|threads:" bench/run.ts; then args=(--threads "$(nproc)"); else args=(); fi
    echo "round $round $rev: $(node dist/bench/run.js align "${args[@]}" 2>&1 | grep -m1 'pairs/s' | sed 's/^ *//')"
  done
done
