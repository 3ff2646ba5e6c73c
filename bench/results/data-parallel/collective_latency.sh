#!/usr/bin/env bash
# What one small collective costs on this machine (issue 15; bench/RESULTS.md): 2 processes on
# loopback all-gather a [1, N] float32 tensor 2,000 times, N = 1, 8,193 (the statistics a
# 4,096-channel synchronised BatchNorm gathers) and 131,072, through our addon's ProcessGroup and
# through PyTorch's torch.distributed (Debian's python3-torch, the same Gloo), in the same run.
# Each line: the wall and CPU time (every thread of the process) per all-gather on each rank.
# Usage: bench/results/data-parallel/collective_latency.sh [REPEATS]. Build first (npm run build).
set -euo pipefail
cd "$(dirname "$0")/../../.."
repeats=${1:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/ours.mjs" <<JS
import { distributed, zeros, setNumThreads } from '$PWD/dist/src/index.js';
const [rank, port, n, size] = process.argv.slice(2).map(Number);
setNumThreads(1);
const store = distributed.Store.connect({ host: '127.0.0.1', port, isServer: rank === 0, worldSize: 2, timeoutMs: 60000 });
const group = distributed.ProcessGroup.create(store, { rank, worldSize: 2, hostname: '127.0.0.1', timeoutMs: 60000 });
const t = zeros([1, size]);
for (let i = 0; i < 100; i++) group.allGather(t);
const cpu = process.cpuUsage();
const start = performance.now();
for (let i = 0; i < n; i++) group.allGather(t);
const wall = (1000 * (performance.now() - start)) / n;
const used = process.cpuUsage(cpu);
console.log(\`byol-align  [1, \${size}] rank \${rank}: \${wall.toFixed(0)} us wall, \${((used.user + used.system) / n).toFixed(0)} us CPU\`);
group.destroy();
JS

cat > "$work/peer.py" <<'PY'
import sys, time, torch, torch.distributed as dist
rank, port, n, size = map(int, sys.argv[1:5])
torch.set_num_threads(1)
dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
t = torch.zeros(1, size)
out = [torch.zeros(1, size) for _ in range(2)]
for _ in range(100):
    dist.all_gather(out, t)
cpu, start = time.process_time(), time.perf_counter()
for _ in range(n):
    dist.all_gather(out, t)
wall, used = (time.perf_counter() - start) / n, (time.process_time() - cpu) / n
print(f'PyTorch     [1, {size}] rank {rank}: {wall * 1e6:.0f} us wall, {used * 1e6:.0f} us CPU', flush=True)
PY

pair() { # SIZE COMMAND...: two ranks of COMMAND RANK PORT REPEATS SIZE on a fresh port; fails if either does
  local size=$1 port=$((29500 + RANDOM % 1000)) pids=()
  shift
  for rank in 0 1; do OMP_NUM_THREADS=1 "$@" "$rank" "$port" "$repeats" "$size" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
}

for size in 1 8193 131072; do
  pair "$size" node "$work/ours.mjs"
  pair "$size" /usr/bin/python3 "$work/peer.py"
done
