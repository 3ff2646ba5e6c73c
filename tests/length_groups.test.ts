// Length groups for the text tower's inference (issue 14, src/modalities/text/length_groups.ts):
// the cut of the sorted rows must be the cheapest (against every cut, tried by brute force), and a
// batch run in groups must give each row the vector it gets alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, noGrad } from '../src/index.js';
import { TextTransformer, lengthGroups } from '../src/modalities/text/index.js';
import { assertClose, idBatch } from './helpers.js';

/** The cost lengthGroups minimises: each group's rows times its longest length, plus groupCost. */
function cost(groups: number[][], lengths: number[], groupCost: number): number {
  return groups.reduce((sum, rows) => sum + rows.length * Math.max(...rows.map((r) => lengths[r]!)) + groupCost, 0);
}

/** The least cost over every way to cut the rows, sorted by length, into consecutive groups. */
function bruteForceCost(lengths: number[], groupCost: number): number {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]!);
  let best = Infinity;
  for (let cuts = 0; cuts < 2 ** (order.length - 1); cuts++) {
    const groups: number[][] = [[]];
    order.forEach((row, i) => {
      if (i > 0 && cuts & (1 << (i - 1))) groups.push([]);
      groups.at(-1)!.push(row);
    });
    best = Math.min(best, cost(groups, lengths, groupCost));
  }
  return best;
}

test('lengthGroups: every row once, groups by length, at the least cost of any cut', () => {
  let seed = 7;
  const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let trial = 0; trial < 200; trial++) {
    const lengths = Array.from({ length: 1 + random(10) }, () => 1 + random(24));
    const groupCost = [0, 1, 8, 32, 1000][trial % 5]!;
    const groups = lengthGroups(lengths, groupCost);
    assert.deepEqual(
      groups.flat().sort((a, b) => a - b),
      lengths.map((_, i) => i),
    );
    const flat = groups.flat().map((r) => lengths[r]!);
    assert.deepEqual(
      flat,
      [...flat].sort((a, b) => a - b),
      `groups out of length order: ${JSON.stringify(groups)}`,
    );
    assert.equal(cost(groups, lengths, groupCost), bruteForceCost(lengths, groupCost), `lengths ${lengths}, group cost ${groupCost}`);
  }
  assert.deepEqual(lengthGroups([4, 20, 5, 19], 8), [
    [0, 2],
    [3, 1],
  ]);
  assert.deepEqual(lengthGroups([4, 20, 5, 19], 1000), [[0, 2, 3, 1]]);
  assert.deepEqual(lengthGroups([], 8), []);
});

for (const pooling of ['mean', 'cls'] as const) {
  test(`TextTransformer in inference (${pooling} pooling): a batch run in length groups gives each row its vector alone`, () => {
    manualSeed(3);
    const model = new TextTransformer({
      vocabSize: 50,
      maxLength: 64,
      dModel: 32,
      layers: 2,
      heads: 4,
      dimFeedforward: 48,
      pooling,
    }).eval();
    // Short and long rows mixed, so that the batch splits (checked below) and rows change places.
    const lengths = [60, 3, 4, 58, 2, 61, 5, 3, 59, 4, 62, 2];
    assert.ok(lengthGroups(lengths).length > 1, 'the batch would run whole: the test would not cover the groups');
    const ids = idBatch(lengths, 64);
    for (const fused of [true, false]) {
      model.fusedInference = fused;
      const batch = noGrad(() => model.forward(ids));
      const alone = noGrad(() => lengths.map((n, r) => model.forward(ids.narrow(0, r, 1).narrow(1, 0, n))));
      assert.equal(batch.shape.join(), '12,32');
      lengths.forEach((_, r) => assertClose(batch.narrow(0, r, 1), alone[r]!, 1e-5, 1e-5));
    }
    // With autograd on (training's path), the batch runs whole and records its graph.
    const recorded = model.forward(ids);
    assert.equal(recorded.requiresGrad, true);
    assertClose(
      recorded.detach(),
      noGrad(() => model.forward(ids)),
      1e-5,
      1e-5,
    );
  });
}
