// Data-parallel training (src/distributed/data_parallel.ts) against one process: two ranks on loopback,
// each training its half of every global batch, must end where one process training the whole
// batches ends (weights, EMA target, BatchNorm statistics, within 1e-5), which needs the shards,
// the synchronised BatchNorm, the gathered losses and the gradient averaging all right; the same
// where one rank's shard lacks a modality (its rows travel as zeros marked absent); and a
// two-process run resumed from its checkpoint continues as an uninterrupted one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Tensor } from '../src/index.js';
import { shardOfBatch } from '../src/data/epoch_order.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { assertClose } from './helpers.js';
import { assertRanksOk, runRanks } from './rank_processes.js';
import { BATCH, loadState, makeTrainer, saveState, type FixtureVariant } from './data_parallel_fixture.js';
import { scratchDir } from './scratch_dir.js';

const WORKER = join('dist', 'tests', 'data_parallel_worker.js');
const STEPS = 6; // an epoch and a half

type Transport = 'shared-memory' | 'gloo';

function train(
  steps: number,
  out: string,
  resume?: string,
  variant: FixtureVariant = 'full',
  transport: Transport = 'shared-memory',
): ReturnType<typeof runRanks> {
  return runRanks(WORKER, 2, (rank, port) => [String(rank), '2', String(port), String(steps), out, ...(resume ? [resume] : [])], {
    BYOL_ALIGN_TEST_DP_VARIANT: variant,
    BYOL_ALIGN_TEST_DP_GLOO: transport === 'gloo' ? '1' : '0',
  });
}

function assertStatesClose(actual: ReadonlyMap<string, Tensor>, expected: ReadonlyMap<string, Tensor>, atol: number, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: keys`);
  for (const [key, t] of expected) {
    try {
      assertClose(actual.get(key)!, t, atol, 0);
    } catch (err) {
      assert.fail(`${what}: ${key}: ${(err as Error).message}`);
    }
  }
}

test('shardOfBatch: the ranks’ shards of every batch are disjoint and add up to it', () => {
  const order = [9, 4, 7, 1, 0, 8, 2, 6, 3, 5, 11, 10];
  for (let step = 0; step < 3; step++) {
    const shards = [0, 1].map((rank) => shardOfBatch(order, step, 4, rank, 2));
    assert.deepEqual(shards.flat(), order.slice(step * 4, step * 4 + 4));
  }
  assert.deepEqual(shardOfBatch(order, 1, 4, 1, 2), [2, 6]);
  assert.throws(() => shardOfBatch(order, 0, 5, 0, 2), /a batch of 5 does not split into 2 equal shards/);
});

test('ManifestLoader with a shard: each rank’s batches are its slices of the unsharded batches', async () => {
  const dataset = {
    items: Array.from({ length: 20 }, (_, i) => ({ id: `item${i}`, captions: [`caption ${i}`] })),
    source: 'memory',
    skipped: {},
  };
  const indices = async (shard?: { rank: number; worldSize: number }): Promise<number[][]> => {
    const loader = new ManifestLoader(dataset, { batchSize: 8, size: 8, seed: 3, poolSize: 1, ...(shard ? { shard } : {}) });
    const out: number[][] = [];
    try {
      for (let epoch = 0; epoch < 2; epoch++) for await (const batch of loader.epoch(epoch)) out.push(batch.indices);
    } finally {
      await loader.close();
    }
    return out;
  };
  const whole = await indices();
  assert.equal(whole.length, 4); // 2 batches of 8 an epoch, the last 4 items dropped
  const [rank0, rank1] = [await indices({ rank: 0, worldSize: 2 }), await indices({ rank: 1, worldSize: 2 })];
  whole.forEach((batch, step) => assert.deepEqual([...rank0[step]!, ...rank1[step]!], batch));
  assert.throws(
    () => new ManifestLoader(dataset, { batchSize: 8, size: 8, shard: { rank: 0, worldSize: 3 } }),
    /a batch of 8 does not split into 3 equal shards/,
  );
  assert.throws(
    () => new ManifestLoader(dataset, { batchSize: 8, size: 8, dropLast: false, shard: { rank: 0, worldSize: 2 } }),
    /a shard needs dropLast/,
  );
});

/** Two processes of the fixture's `variant` end where one process training the whole batches ends; returns their results. */
async function assertTwoEndAsOne(variant: FixtureVariant, transport: Transport = 'shared-memory'): ReturnType<typeof runRanks> {
  const dir = scratchDir('byol-dp-');
  const single = await makeTrainer(undefined, 5, variant);
  const singleLog = await single.run({ stopAfter: STEPS });
  const expected = single.stateDict().tensors;

  const results = await train(STEPS, join(dir, 'dp'), undefined, variant, transport);
  assertRanksOk(results, assert.fail);
  for (const { lines } of results) {
    assert.equal((lines[0]!.stats as { transport: string }).transport, transport);
    assert.equal(lines[0]!.sharesMemory, transport === 'shared-memory');
  }
  const [rank0, rank1] = [0, 1].map((r) => loadState(join(dir, `dp.rank${r}`)));
  // The model (online and EMA target weights, BatchNorm statistics), the temperature and the optimizer's moments.
  assertStatesClose(rank0!.tensors, expected, 1e-5, 'rank 0 against one process');
  assertStatesClose(rank1!.tensors, rank0!.tensors, 0, 'rank 1 against rank 0');
  assert.equal(rank0!.meta.step, STEPS);
  // The losses each step: the global batch's, on both ranks.
  for (const { lines } of results) {
    const terms = lines[0]!.terms as Record<string, number>[];
    assert.equal(terms.length, STEPS);
    terms.forEach((t, step) => {
      for (const [key, value] of Object.entries(singleLog[step]!.terms)) assertClose(t[key]!, value, 1e-4, 1e-4);
    });
  }
  return results;
}

test('2 processes on halves of each batch end where 1 process on the whole batches ends (within 1e-5)', async () => {
  const results = await assertTwoEndAsOne('full');
  const stats = results[0]!.lines[0]!.stats as { bucketSizes: number[]; backwards: number };
  assert.ok(stats.bucketSizes.length > 1, 'several buckets');
  assert.equal(stats.backwards, STEPS);
});

test('a modality one rank’s shard lacks (rank 1 has no b in the first step): 2 processes still end where 1 ends', async () => {
  await assertTwoEndAsOne('partial');
});

test('the same through Gloo alone, as between machines (sameHostMemory: false)', async () => {
  await assertTwoEndAsOne('partial', 'gloo');
});

test('a 2-process run resumed from its checkpoint continues as an uninterrupted one; 1 process can take it over', async () => {
  const dir = scratchDir('byol-dp-');
  const whole = await train(STEPS, join(dir, 'whole'));
  assertRanksOk(whole, assert.fail);
  const first = await train(3, join(dir, 'first'));
  assertRanksOk(first, assert.fail);
  // Rank 0 alone reads the checkpoint; the broadcast brings the others to it.
  const rest = await train(STEPS - 3, join(dir, 'rest'), join(dir, 'first.rank0'));
  assertRanksOk(rest, assert.fail);
  const uninterrupted = loadState(join(dir, 'whole.rank0'));
  for (const rank of [0, 1]) {
    const resumed = loadState(join(dir, `rest.rank${rank}`));
    assert.equal(resumed.meta.step, STEPS);
    assertStatesClose(resumed.tensors, uninterrupted.tensors, 0, `resumed rank ${rank} against the uninterrupted run`);
  }
  const terms = (r: typeof whole): Record<string, number>[] => r[0]!.lines[0]!.terms as Record<string, number>[];
  assert.deepEqual([...terms(first), ...terms(rest)], terms(whole));

  // Another world size divides the batch too: one process continues the 2-process checkpoint.
  const alone = await makeTrainer();
  alone.loadStateDict(loadState(join(dir, 'first.rank0')));
  await alone.run({ stopAfter: STEPS - 3 });
  saveState(alone, join(dir, 'alone'));
  assertStatesClose(loadState(join(dir, 'alone')).tensors, uninterrupted.tensors, 1e-5, 'one process after two');
  assert.equal(BATCH % 2, 0);
});
