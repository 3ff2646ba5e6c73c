// torch.distributed from TypeScript (src/engine/distributed.ts): two processes on loopback run the
// collectives, the all-gather with a gradient and the gradient reducer (tests/distributed_worker.ts),
// and a peer that dies or hangs makes the other fail with a clear error instead of waiting forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distributed } from '../src/index.js';
import { assertRanksOk, freePort, runRanks, type RankResult } from './rank_processes.js';
import { assertClose } from './helpers.js';

const WORKER = join('dist', 'tests', 'distributed_worker.js');

/** Runs `scenario` of the worker on `worldSize` processes. */
function runScenario(scenario: string, worldSize = 2, env: Record<string, string> = {}): Promise<RankResult[]> {
  return runRanks(WORKER, worldSize, (rank, port) => [scenario, String(rank), String(worldSize), String(port)], env, 60000);
}

/** The group's blocking collectives through Gloo, and through shared memory (DIST_TEST_SHARED). */
const TRANSPORTS = [
  { name: 'Gloo', env: { DIST_TEST_SHARED: '0' } },
  { name: 'shared memory', env: { DIST_TEST_SHARED: '1' } },
];

function ok(results: RankResult[]): void {
  assertRanksOk(results, assert.fail);
}

test('this build has the Gloo backend', () => {
  assert.equal(distributed.distributedUnavailableReason(), null);
});

test('all-reduce (sum, avg, max, min, async, non-contiguous), all-gather, broadcast and the store across 2 processes, through Gloo and through shared memory', async () => {
  for (const transport of TRANSPORTS) {
    const results = await runScenario('collectives', 2, transport.env);
    ok(results);
    for (const [rank, { lines }] of results.entries()) assertCollectives(lines[0]!, rank, transport.env.DIST_TEST_SHARED === '1');
  }
});

function assertCollectives(r: Record<string, unknown>, rank: number, sharesMemory: boolean): void {
  assert.equal(r.sharesMemory, sharesMemory);
  assert.deepEqual(r.sum, [1 + 2, 10 + 20]);
  assert.deepEqual(r.avg, [1.5, 15]);
  assert.deepEqual(r.max, [1, 0]);
  assert.deepEqual(r.min, [0, -1]);
  assert.deepEqual(r.async, [1 + 2]);
  // [[1, 2], [3, 4]]·1 + ·2, written through the transposed view into its base
  assert.deepEqual(r.base, [
    [3, 6],
    [9, 12],
  ]);
  assert.deepEqual(r.transposed, [
    [3, 9],
    [6, 12],
  ]);
  assert.deepEqual(r.gathered, [
    [0, 0],
    [1, 10],
  ]);
  assert.deepEqual(r.fromRank1, [7, 8]);
  assert.deepEqual(r.asyncBroadcast, [100]);
  assert.equal(r.other, `rank ${(rank + 1) % 2}`);
}

test("allGatherWithGrad: the gradient is the sum over ranks of their gradients of this rank's rows (Gloo, shared memory)", async () => {
  for (const transport of TRANSPORTS) {
    const results = await runScenario('gatherGrad', 2, transport.env);
    ok(results);
    // w_r = (r + 1)·[[0, 1], [2, 3]]; Σ_r w_r = 3·[[0, 1], [2, 3]]; rank r gets row r.
    const expected = [[[0, 3]], [[6, 9]]];
    for (const [rank, { lines }] of results.entries()) {
      assert.deepEqual(lines[0]!.gathered, [
        [1, 2],
        [2, 3],
      ]);
      assert.deepEqual(lines[0]!.grad, expected[rank], transport.name);
    }
  }
});

test('syncBatchNorm over 2 ranks: outputs, gradients and running averages of one batch_norm over both ranks’ rows, two layers in one call (Gloo, shared memory)', async () => {
  for (const transport of TRANSPORTS) {
    const results = await runScenario('syncBatchNorm', 2, transport.env);
    ok(results);
    for (const { lines } of results) assertSyncBatchNorm(lines[0] as Record<string, number[]>);
  }
});

function assertSyncBatchNorm(r: Record<string, number[]>): void {
  for (const [got, expected] of [
    ['y', 'refY'],
    ['grad', 'refGrad'],
    ['weightGrad', 'refWeightGrad'],
    ['biasGrad', 'refBiasGrad'],
    ['running', 'refRunning'],
    ['targetY', 'refTargetY'],
    ['targetRunning', 'refTargetRunning'],
  ] as const)
    assertClose(r[got]!, r[expected]!, 1e-5, 1e-5);
  // The layer without gradient gives an output without one.
  assert.equal(r.targetRequiresGrad, false);
}

test('BYOL_ALIGN_TRACE_COLLECTIVES: each rank writes its collectives in one order, and none ends before both ranks launched it (Gloo, shared memory)', async () => {
  for (const transport of TRANSPORTS) await assertTrace(transport.env);
});

async function assertTrace(env: Record<string, string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'byol-align-trace-'));
  try {
    ok(await runScenario('syncBatchNorm', 2, { ...env, BYOL_ALIGN_TRACE_COLLECTIVES: dir }));
    const read = (rank: number): { op: string; beganUs: number; endedUs: number }[] =>
      readFileSync(join(dir, `collectives-main-rank${rank}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { op: string; beganUs: number; endedUs: number });
    // Without the broadcasts by which the ranks agree to share memory, where they do.
    const [first, second] = [read(0), read(1)].map((lines) => lines.filter((line) => !line.op.startsWith('broadcast'))) as [
      ReturnType<typeof read>,
      ReturnType<typeof read>,
    ];
    // The scenario's collectives, in its order (the shapes in their names are each rank's own):
    // SyncBatchNorm forward and backward, then the all-reduces of the weight's and the bias's gradient.
    const kinds = (lines: { op: string }[]): string[] => lines.map((line) => line.op.replace(/\(.*$/, ''));
    assert.deepEqual(kinds(first), ['SyncBatchNorm', "SyncBatchNorm's backward ", 'allReduce', 'allReduce']);
    assert.deepEqual(kinds(second), kinds(first));
    first.forEach((a, k) => {
      const b = second[k]!;
      for (const line of [a, b]) assert.ok(line.endedUs >= line.beganUs, `${line.op}: ends before it begins`);
      // A collective needs every rank's part: neither rank leaves it before the other launched it.
      assert.ok(Math.min(a.endedUs, b.endedUs) >= Math.max(a.beganUs, b.beganUs), `${a.op}: a rank left before the other arrived`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('BYOL_ALIGN_TRACE_COLLECTIVES naming a folder that cannot be written: creating the group fails, naming the file', async () => {
  const results = await runScenario('syncBatchNorm', 2, { BYOL_ALIGN_TRACE_COLLECTIVES: '/nonexistent/byol-align-trace' });
  for (const { code, stderr } of results) {
    assert.notEqual(code, 0);
    assert.match(
      stderr,
      /BYOL_ALIGN_TRACE_COLLECTIVES: cannot open \/nonexistent\/byol-align-trace\/collectives-main-rank\d\.jsonl for appending/,
    );
  }
});

test('GradReducer averages each backward’s gradients over the ranks; unused by some: zeros there; by all: none', async () => {
  const results = await runScenario('reducer');
  ok(results);
  // Every weight 0.1, bias 0.2: y = 0.1·Σx + 0.2 = 0.5 on both ranks (x = [r+1, 2, −r]), so
  // d(Σy²)/dW = 2y·x = x: [1, 2, 0] and [2, 2, −1], mean [1.5, 2, −0.5]; d/db = 1.
  const x = [
    [1, 2, 0],
    [2, 2, -1],
  ];
  const mean = x[0]!.map((v, k) => (v + x[1]![k]!) / 2);
  for (const { lines } of results) {
    const [averaged, local] = lines as [Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(averaged.usedWeight, [mean, mean]);
    assert.deepEqual(averaged.usedBias, [1, 1]);
    // Only rank 0 adds Σ half(x): its gradient x_0 averaged with rank 1's zeros.
    assert.deepEqual(averaged.halfWeight, [x[0]!.map((v) => v / 2)]);
    assert.equal(averaged.unusedWeight, null);
    const stats = averaged.stats as distributed.GradReducerStats;
    // Buckets of up to 16 bytes, filled in reverse order, each value count with one flag per
    // parameter: unused's bias and weight (4 + 12 bytes), half's, used's bias, used's weight (24).
    assert.deepEqual(stats.bucketSizes, [1 + 3 + 2, 1 + 3 + 2, 2 + 1, 6 + 1]);
    assert.equal(stats.backwards, 1);
    assert.deepEqual(local.localBias, [1, 1]);
  }
});

/**
 * The sharedReducer scenario's lines (two backwards a rank): the reducer scenario's averages with
 * inputs scale·x, through `transport`, and no segment name left in /dev/shm.
 */
function assertSharedScenario(lines: Record<string, unknown>[], transport: distributed.GradReducerStats['transport']): void {
  const x = [
    [1, 2, 0],
    [2, 2, -1],
  ];
  assert.equal(lines.length, 2);
  for (const line of lines) {
    // y = 0.1·scale·Σx + 0.2 = 0.3·scale + 0.2 on both ranks, d(Σy²)/dW = 2y·scale·x; half's
    // weight gets scale·x from rank 0 only.
    const scale = line.scale as number;
    const factor = 2 * (0.3 * scale + 0.2) * scale;
    const mean = x[0]!.map((v, k) => (factor * (v + x[1]![k]!)) / 2);
    for (const row of line.usedWeight as number[][]) assertClose(row, mean, 1e-5, 1e-6);
    assertClose(
      (line.halfWeight as number[][])[0]!,
      x[0]!.map((v) => (scale * v) / 2),
      1e-6,
      0,
    );
    assert.equal(line.unusedWeight, null);
    const stats = line.stats as distributed.GradReducerStats;
    assert.equal(stats.transport, transport);
    assert.deepEqual(stats.bucketSizes, [1 + 3 + 2, 1 + 3 + 2, 2 + 1, 6 + 1]);
    assert.equal(stats.backwards, scale === 1 ? 1 : 2);
    assert.deepEqual(line.leftInShm, []);
    assert.equal(line.sharesMemory, transport === 'shared-memory');
  }
}

test('GradReducer through shared memory (ranks on one machine): the same averages, two backwards in a row, no name left in /dev/shm', async () => {
  const results = await runScenario('sharedReducer');
  ok(results);
  for (const { lines } of results) assertSharedScenario(lines, 'shared-memory');
});

test('BYOL_ALIGN_SHM_DISABLE=1: the ranks keep to Gloo, with the same averages', async () => {
  const results = await runScenario('sharedReducer', 2, { BYOL_ALIGN_SHM_DISABLE: '1' });
  ok(results);
  for (const { lines } of results) assertSharedScenario(lines, 'gloo');
});

test(
  'a /dev/shm too small for the segments: both ranks fall back to Gloo together, with the same averages',
  { skip: process.getuid?.() === 0 ? false : 'needs root to mount a small /dev/shm' },
  async () => {
    // Both ranks in one mount namespace whose /dev/shm holds one page, less than the segment's header and slots.
    const port = await freePort();
    const rank = (r: number): string => `'${process.execPath}' ${WORKER} sharedReducer ${r} 2 ${port}`;
    const script = `mount -t tmpfs -o size=4k tmpfs /dev/shm && { ${rank(0)} & a=$!; ${rank(1)} & b=$!; wait $a && wait $b; }`;
    const run = spawnSync('unshare', ['-m', 'bash', '-c', script], { encoding: 'utf8', timeout: 60000 });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const r of [0, 1])
      assertSharedScenario(
        lines.filter((line) => line.rank === r),
        'gloo',
      );
  },
);

test('a killed peer makes a shared-memory gradient average fail at once, naming the bucket and the peer', async () => {
  const timeoutMs = 20000;
  const [survivor, killed] = await runScenario('sharedKilledPeer', 2, { DIST_TEST_TIMEOUT_MS: String(timeoutMs) });
  assert.equal(killed!.signal, 'SIGKILL');
  assert.equal(survivor!.code, 0, survivor!.stderr);
  const { error, ms, transport } = survivor!.lines[0] as { error: string; ms: number; transport: string };
  assert.equal(transport, 'shared-memory');
  assert.match(
    error,
    /gradient allReduce \(bucket 1 of 1, 2 parameters, 4 values\) on rank 0 of 2 \(group 'main'\) failed: rank 1 \(pid \d+\) exited/,
  );
  assert.ok(ms < timeoutMs / 2, `took ${ms} ms`);
});

test('a killed peer makes the next collective fail at once, naming the operation and the peer (Gloo, shared memory)', async () => {
  const timeoutMs = 20000;
  for (const transport of TRANSPORTS) {
    const [survivor, killed] = await runScenario('killedPeer', 2, { ...transport.env, DIST_TEST_TIMEOUT_MS: String(timeoutMs) });
    assert.equal(killed!.signal, 'SIGKILL');
    assert.equal(survivor!.code, 0, survivor!.stderr);
    const { error, ms } = survivor!.lines[0] as { error: string; ms: number };
    const why = transport.env.DIST_TEST_SHARED === '1' ? 'rank 1 \\(pid \\d+\\) exited' : 'rank 1 closed its connection';
    assert.match(error, new RegExp(`allReduce\\(\\[1\\] float32 cpu, 'sum'\\) on rank 0 of 2 \\(group 'main'\\) failed: ${why}`));
    assert.ok(ms < timeoutMs / 2, `${transport.name}: took ${ms} ms`);
  }
});

test('a peer that never joins a collective makes it fail after the timeout (Gloo, shared memory)', async () => {
  const timeoutMs = 4000;
  for (const transport of TRANSPORTS) {
    const [waiting] = await runScenario('stuckPeer', 2, { ...transport.env, DIST_TEST_TIMEOUT_MS: String(timeoutMs) });
    assert.equal(waiting!.code, 0, waiting!.stderr);
    const { error, ms } = waiting!.lines[0] as { error: string; ms: number };
    assert.match(error, /allReduce.* on rank 0 of 2 \(group 'main'\) failed: no answer from rank 1 within the timeout \(4000 ms\)/);
    assert.ok(ms >= timeoutMs * 0.9 && ms < timeoutMs * 3, `${transport.name}: took ${ms} ms`);
  }
});
