// One rank of tests/distributed.test.ts, as its own process: `node distributed_worker.js
// SCENARIO RANK WORLD PORT`. It meets the other ranks on loopback, runs the scenario and prints
// one JSON line of what it saw; the test compares the lines with values computed by hand.
import { distributed, tensor, arange, cat, noGrad, F, type Tensor } from '../src/index.js';
import { readdirSync } from 'node:fs';
import { Linear } from '../src/nn/index.js';
import { gradientReducer, shareCollectiveMemory } from '../src/distributed/same_host.js';

const [scenario, rankText, worldText, portText] = process.argv.slice(2);
const rank = Number(rankText);
const worldSize = Number(worldText);
const timeoutMs = Number(process.env.DIST_TEST_TIMEOUT_MS ?? 20000);

const store = distributed.Store.connect({ host: '127.0.0.1', port: Number(portText), isServer: rank === 0, worldSize, timeoutMs });
const group = distributed.ProcessGroup.create(store, { rank, worldSize, hostname: '127.0.0.1', timeoutMs });
// DIST_TEST_SHARED=1: the group's blocking collectives through shared memory (both ranks run here).
if (process.env.DIST_TEST_SHARED === '1' && !shareCollectiveMemory(group)) throw new Error('the group could not share memory');

function report(values: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ rank, ...values })}\n`);
}

/** The reducer scenarios' layers: `used`, `half` and `unused`, every value 0.1·(its parameter's index + 1). */
function reducerLayers(): { used: Linear; half: Linear; unused: Linear; params: Tensor[] } {
  const used = new Linear(3, 2);
  const half = new Linear(3, 1);
  const unused = new Linear(3, 1);
  const params = [...used.parameters(), ...half.parameters(), ...unused.parameters()];
  noGrad(() => {
    for (const [i, p] of params.entries()) p.copy_(p.mul(0).add(0.1 * (i + 1)));
  });
  return { used, half, unused, params };
}

const scenarios: Record<string, () => void> = {
  collectives() {
    const sum = group.allReduce(tensor([rank + 1, 10 * (rank + 1)]));
    const avg = group.allReduce(tensor([rank + 1, 10 * (rank + 1)]), 'avg');
    const max = group.allReduce(tensor([rank, -rank]), 'max');
    const min = group.allReduce(tensor([rank, -rank], { dtype: 'int64' }), 'min');
    const pending = tensor([2 ** rank]);
    group.allReduceAsync(pending).wait();
    // A non-contiguous tensor is reduced in place all the same.
    const base = tensor([
      [1, 2],
      [3, 4],
    ]).mul(rank + 1);
    const transposed = base.t();
    group.allReduce(transposed);
    const gathered = group.allGather(tensor([[rank, rank * 10]]));
    const fromRank1 = group.broadcast(tensor([rank * 7, rank * 7 + 1]), 1);
    const asyncBroadcast = tensor([rank + 100]);
    group.broadcastAsync(asyncBroadcast, 0).wait();
    group.barrier();
    store.set(`hello/${rank}`, `rank ${rank}`);
    const other = store.get(`hello/${(rank + 1) % worldSize}`);
    report({
      sum: sum.toFlatArray(),
      avg: avg.toFlatArray(),
      max: max.toFlatArray(),
      min: min.toFlatArray(),
      sharesMemory: group.sharesMemory,
      async: pending.toFlatArray(),
      transposed: transposed.toArray(),
      base: base.toArray(),
      gathered: gathered.toArray(),
      fromRank1: fromRank1.toFlatArray(),
      asyncBroadcast: asyncBroadcast.toFlatArray(),
      other,
    });
  },

  // loss_r = Σ gathered · w_r with w_r = (r + 1)·arange: the gradient of Σ_r loss_r reaching this
  // rank's rows is Σ_r w_r over this rank's slice.
  gatherGrad() {
    const x = tensor([[rank + 1, rank + 2]]).requiresGrad_(true);
    const gathered = group.allGatherWithGrad(x);
    const w = arange(0, 2 * worldSize)
      .reshape(worldSize, 2)
      .mul(rank + 1);
    gathered.mul(w).sum().backward();
    report({ gathered: gathered.detach().toArray(), grad: x.grad!.toArray() });
  },

  // Each rank normalises its [3, 2, 2] rows with the statistics of both ranks' rows; the reference
  // is one batch_norm over the 6 rows, here in the same process, for loss Σ_r Σ y_r·w_r. In the
  // same collective, a second layer without gradient (as a BYOL target's) on [2 + r, 3] rows.
  syncBatchNorm() {
    const inputs = [0, 1].map((r) =>
      arange(0, 12)
        .reshape(3, 2, 2)
        .mul(0.3 * (r + 1))
        .sin()
        .add(r),
    );
    const lossWeights = [0, 1].map((r) =>
      arange(0, 12)
        .reshape(3, 2, 2)
        .mul(0.7 + r)
        .cos(),
    );
    const targetInputs = [0, 1].map((r) =>
      arange(0, 3 * (2 + r))
        .reshape(2 + r, 3)
        .mul(0.9 + r)
        .cos()
        .mul(r + 2),
    );
    const x = inputs[rank]!.clone().requiresGrad_(true);
    const weight = tensor([1.5, -0.5]).requiresGrad_(true);
    const bias = tensor([0.25, 2]).requiresGrad_(true);
    const runningMean = tensor([0, 0]);
    const runningVar = tensor([1, 1]);
    const targetWeight = tensor([0.5, 2, -1]);
    const targetMean = tensor([0, 0, 0]);
    const targetVar = tensor([1, 1, 1]);
    const [y, targetY] = group.syncBatchNorm([
      { input: x, weight, bias, runningMean, runningVar, momentum: 0.1, eps: 1e-5 },
      { input: targetInputs[rank]!, weight: targetWeight, runningMean: targetMean, runningVar: targetVar, momentum: 0.2, eps: 1e-3 },
    ]) as [Tensor, Tensor];
    y.mul(lossWeights[rank]!).sum().backward();
    // The ranks' shares of the weight's and bias's gradient add up to theirs.
    const weightGrad = group.allReduce(weight.grad!.clone());
    const biasGrad = group.allReduce(bias.grad!.clone());

    const all = cat(inputs).requiresGrad_(true);
    const refWeight = tensor([1.5, -0.5]).requiresGrad_(true);
    const refBias = tensor([0.25, 2]).requiresGrad_(true);
    const refMean = tensor([0, 0]);
    const refVar = tensor([1, 1]);
    const ref = F.batchNorm(all, refMean, refVar, { weight: refWeight, bias: refBias, training: true, momentum: 0.1, eps: 1e-5 });
    ref.mul(cat(lossWeights)).sum().backward();
    const refTargetMean = tensor([0, 0, 0]);
    const refTargetVar = tensor([1, 1, 1]);
    const refTarget = F.batchNorm(cat(targetInputs), refTargetMean, refTargetVar, {
      weight: targetWeight,
      training: true,
      momentum: 0.2,
      eps: 1e-3,
    });
    report({
      y: y.detach().toFlatArray(),
      refY: ref
        .detach()
        .narrow(0, 3 * rank, 3)
        .toFlatArray(),
      grad: x.grad!.toFlatArray(),
      refGrad: all.grad!.narrow(0, 3 * rank, 3).toFlatArray(),
      weightGrad: weightGrad.toFlatArray(),
      refWeightGrad: refWeight.grad!.toFlatArray(),
      biasGrad: biasGrad.toFlatArray(),
      refBiasGrad: refBias.grad!.toFlatArray(),
      running: [...runningMean.toFlatArray(), ...runningVar.toFlatArray()],
      refRunning: [...refMean.toFlatArray(), ...refVar.toFlatArray()],
      targetY: targetY.toFlatArray(),
      refTargetY: refTarget.narrow(0, rank === 0 ? 0 : 2, 2 + rank).toFlatArray(),
      targetRunning: [...targetMean.toFlatArray(), ...targetVar.toFlatArray()],
      refTargetRunning: [...refTargetMean.toFlatArray(), ...refTargetVar.toFlatArray()],
      targetRequiresGrad: targetY.requiresGrad,
    });
  },

  // Three layers: `used` everywhere, `half` used by rank 0 only, `unused` by none; buckets of
  // 16 bytes, so there are several.
  reducer() {
    const { used, half, unused, params } = reducerLayers();
    const reducer = new distributed.GradReducer(group, params, { bucketBytes: 16 });
    const input = tensor([[rank + 1, 2, -rank]]);
    let loss = used.forward(input).square().sum();
    if (rank === 0) loss = loss.add(half.forward(input).sum());
    loss.backward();
    report({
      usedWeight: used.weight.grad!.toArray(),
      usedBias: used.bias!.grad!.toArray(),
      halfWeight: half.weight.grad?.toArray() ?? null,
      unusedWeight: unused.weight.grad?.toArray() ?? null,
      stats: reducer.stats(),
    });
    // Disabled, backward leaves this rank's own gradient.
    reducer.enabled = false;
    for (const p of params) p.grad = null;
    used.forward(input).square().sum().backward();
    report({ localBias: used.bias!.grad!.toArray() });
  },

  // The reducer's scenario through a shared-memory segment (both ranks run here), two backwards
  // averaged: the second must not read the first's sums.
  sharedReducer() {
    const { used, half, unused, params } = reducerLayers();
    // The group's own collectives through shared memory too, where it can.
    const sharesMemory = shareCollectiveMemory(group);
    const reducer = gradientReducer(params, { group, gradientGroup: group, bucketBytes: 16 });
    // Its name is gone from /dev/shm once both ranks have it open (rank 0 removes it).
    group.barrier();
    const leftInShm = readdirSync('/dev/shm').filter((name) => name.startsWith('byol-align-'));
    for (const scale of [1, 3]) {
      for (const p of params) p.grad = null;
      const input = tensor([[rank + 1, 2, -rank]]).mul(scale);
      let loss = used.forward(input).square().sum();
      if (rank === 0) loss = loss.add(half.forward(input).sum());
      loss.backward();
      report({
        scale,
        usedWeight: used.weight.grad!.toArray(),
        halfWeight: half.weight.grad?.toArray() ?? null,
        unusedWeight: unused.weight.grad?.toArray() ?? null,
        stats: reducer.stats(),
        leftInShm,
        sharesMemory,
      });
    }
  },

  // Rank 1 dies before backward; rank 0's wait for its share of the shared sums must fail, not hang.
  sharedKilledPeer() {
    const layer = new Linear(3, 1);
    const reducer = gradientReducer(layer.parameters(), { group, gradientGroup: group, bucketBytes: 1024 });
    group.barrier();
    if (rank === 1) process.kill(process.pid, 'SIGKILL');
    const start = performance.now();
    try {
      layer
        .forward(tensor([[1, 2, 3]]))
        .sum()
        .backward();
      report({ error: null });
    } catch (err) {
      report({ error: (err as Error).message, ms: performance.now() - start, transport: reducer.stats().transport });
    }
  },

  // Rank 1 dies (SIGKILL: no goodbye); rank 0's next collective must fail, not hang.
  killedPeer() {
    group.barrier();
    if (rank === 1) process.kill(process.pid, 'SIGKILL');
    const start = performance.now();
    try {
      group.allReduce(tensor([1]));
      report({ error: null });
    } catch (err) {
      report({ error: (err as Error).message, ms: performance.now() - start });
    }
  },

  // Rank 1 stays alive but never joins the collective: rank 0 fails after its timeout.
  stuckPeer() {
    group.barrier();
    if (rank === 1) {
      setTimeout(() => process.exit(0), timeoutMs * 2);
      return;
    }
    const start = performance.now();
    try {
      group.allReduce(tensor([1]));
      report({ error: null });
    } catch (err) {
      report({ error: (err as Error).message, ms: performance.now() - start });
    }
    process.exit(0);
  },
};

const run = scenarios[scenario ?? ''];
if (run === undefined) throw new Error(`distributed_worker: unknown scenario '${scenario}'`);
run();
