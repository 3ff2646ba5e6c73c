#!/usr/bin/env bash
# What synchronised BatchNorm's own arithmetic costs (issue 15; bench/RESULTS.md): on one thread,
# ProcessGroup.syncBatchNorm in a group of one rank (its collectives trivial) against local
# BatchNorm (BatchNorm's fused op), forward and backward, on the shapes of the default
# configuration's synchronised layers for one rank (two views of 128 rows): the image tower's three
# BatchNorm2d and a head's BatchNorm1d. Each line: the medians of 15 runs, ms.
# Usage: bench/results/data-parallel/sync_batch_norm_cost.sh. Build first (npm run build).
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/cost.mjs" <<JS
import { distributed, randn, setNumThreads, ones, zeros } from '$PWD/dist/src/index.js';
import { BatchNorm1d, BatchNorm2d } from '$PWD/dist/src/nn/index.js';
setNumThreads(1);
const port = 29500 + Math.floor(Math.random() * 1000);
const store = distributed.Store.connect({ host: '127.0.0.1', port, isServer: true, worldSize: 1, timeoutMs: 60000 });
const group = distributed.ProcessGroup.create(store, { rank: 0, worldSize: 1, hostname: '127.0.0.1', timeoutMs: 60000 });
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)].toFixed(2);
for (const shape of [[256, 32, 32, 32], [256, 64, 16, 16], [256, 128, 8, 8], [256, 4096]]) {
  const channels = shape[1];
  const x = randn(shape).requiresGrad_(true);
  const weight = ones([channels]).requiresGrad_(true);
  const bias = zeros([channels]).requiresGrad_(true);
  const dy = randn(shape);
  const local = shape.length === 4 ? new BatchNorm2d(channels) : new BatchNorm1d(channels);
  for (const kind of ['local', 'synchronised']) {
    const forward = [];
    const backward = [];
    for (let i = 0; i < 15; i++) {
      let start = performance.now();
      const y =
        kind === 'local'
          ? local.forwardAffine(x, weight, bias)
          : group.syncBatchNorm(x, { weight, bias, runningMean: zeros([channels]), runningVar: ones([channels]), momentum: 0.1, eps: 1e-5 });
      forward.push(performance.now() - start);
      start = performance.now();
      y.backward(dy);
      backward.push(performance.now() - start);
    }
    console.log(\`[\${shape.join(', ')}] \${kind.padEnd(12)} forward \${median(forward)} ms, backward \${median(backward)} ms\`);
  }
}
group.destroy();
JS
OMP_NUM_THREADS=1 node "$work/cost.mjs"
