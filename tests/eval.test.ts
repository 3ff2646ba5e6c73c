// Evaluation on frozen features: kNN against a brute-force reference, the linear probe on
// separable data, the collapse monitor, and the IDX reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { tensor, randn, randint, manualSeed, zeros, Generator } from '../src/index.js';
import { knnPredict } from '../src/eval/knn.js';
import { linearProbe } from '../src/eval/linear_probe.js';
import { collapseReading } from '../src/eval/collapse.js';
import { parseIdx } from '../src/data/idx.js';
import { assertClose } from './helpers.js';

function bruteForceKnn(train: number[][], labels: number[], query: number[], k: number, t: number, classes: number): number {
  const unit = (v: number[]): number[] => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const q = unit(query);
  const sims = train.map((row, i) => ({ sim: unit(row).reduce((s, x, j) => s + x * q[j]!, 0), label: labels[i]! }));
  sims.sort((a, b) => b.sim - a.sim);
  const votes = new Array(classes).fill(0);
  for (const { sim, label } of sims.slice(0, k)) votes[label] += Math.exp(sim / t);
  return votes.indexOf(Math.max(...votes));
}

test('kNN predictions equal a brute-force weighted vote', () => {
  manualSeed(4);
  const train = randn([60, 5]);
  const labels = randint(0, 3, [60]);
  const queries = randn([25, 5]);
  const trainRows = train.toArray() as number[][];
  const labelList = labels.toFlatArray();
  for (const [k, t] of [
    [1, 0.1],
    [7, 0.1],
    [20, 0.5],
  ] as const) {
    const ours = knnPredict(train, labels, queries, 3, { k, temperature: t, chunkSize: 8 }).toFlatArray();
    const expected = (queries.toArray() as number[][]).map((q) => bruteForceKnn(trainRows, labelList, q, k, t, 3));
    assert.deepEqual(ours, expected, `k=${k}, T=${t}`);
  }
});

test('the linear probe separates linearly separable classes', () => {
  manualSeed(5);
  const centres = randn([4, 8]).mul(4);
  const make = (n: number, seed: number): [ReturnType<typeof randn>, ReturnType<typeof randint>] => {
    const y = randint(0, 4, [n], { generator: new Generator(seed) });
    return [centres.index([y]).add(randn([n, 8], { generator: new Generator(seed + 1) })), y];
  };
  const [xTrain, yTrain] = make(400, 1);
  const [xTest, yTest] = make(200, 3);
  const { trainAccuracy, testAccuracy } = linearProbe(xTrain, yTrain, xTest, yTest, 4, { epochs: 20, batchSize: 64 });
  assert.ok(trainAccuracy > 0.95 && testAccuracy > 0.95, `accuracies ${trainAccuracy}, ${testAccuracy}`);
  const { testAccuracy: chance } = linearProbe(xTrain, randint(0, 4, [400]), xTest, yTest, 4, { epochs: 5 });
  assert.ok(chance < 0.5, `shuffled labels still gave ${chance}`);
});

test('the collapse monitor reads 0 for identical outputs and about 1/√d for spread ones', () => {
  const collapsed = collapseReading(zeros([64, 16]).add(tensor(Array.from({ length: 16 }, (_, i) => i + 1))));
  assertClose(collapsed.std, 0, 1e-6);
  const spread = collapseReading(randn([4096, 16]));
  assertClose(spread.reference, 0.25, 1e-12);
  assert.ok(Math.abs(spread.ratio - 1) < 0.05, `ratio ${spread.ratio}`);
});

function idxBytes(dims: number[], values: number[], type = 0x08): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(type, 2);
  header.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(values)]);
}

test('IDX files parse raw and gzipped, and bad ones name the file and the problem', () => {
  const raw = idxBytes([2, 3], [1, 2, 3, 4, 5, 6]);
  for (const bytes of [raw, gzipSync(raw)]) {
    const { shape, data } = parseIdx(bytes, 'x.idx');
    assert.deepEqual(shape, [2, 3]);
    assert.deepEqual([...data], [1, 2, 3, 4, 5, 6]);
  }
  assert.throws(() => parseIdx(Buffer.from([1, 2, 3, 4]), 'bad.idx'), /bad\.idx: not an IDX file/);
  assert.throws(() => parseIdx(idxBytes([2], [1, 2], 0x0d), 'f.idx'), /f\.idx: IDX type 0xd is not supported/);
  assert.throws(() => parseIdx(idxBytes([2, 3], [1, 2, 3]), 'short.idx'), /short\.idx: IDX header says 6 values .* holds 3/);
});
