// Exact resume of the aligner's training: N steps, a state dict written to safetensors bytes and
// read back into a fresh model and trainer, then the rest, gives bitwise the weights, optimizer
// state and losses of one uninterrupted run (random views, dropout and InfoNCE's temperature
// included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, type Tensor } from '../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/engine/safetensors.js';
import { AlignModel } from '../src/align/model.js';
import { AlignTrainer, type AlignBatch, type AlignTrainOptions } from '../src/align/train.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import { withName, type Modality } from '../src/modalities/modality.js';

const N = 96;
const BATCH = 32; // 3 steps per epoch

async function setup(): Promise<{ model: AlignModel; options: AlignTrainOptions }> {
  manualSeed(21);
  const latent = randn([N, 3]);
  const rows = (t: Tensor, d: number): number[][] => {
    const flat = t.toFlatArray();
    return Array.from({ length: N }, (_, i) => flat.slice(i * d, (i + 1) * d));
  };
  const data = { a: rows(latent.matmul(randn([3, 6])), 6), b: rows(latent.matmul(randn([3, 5])), 5) };
  // Views with dropout and noise, so the random streams matter.
  const views = { view1: { dropoutRate: 0.2, noiseStd: 0.1 }, view2: { dropoutRate: 0.1, noiseStd: 0.2, mixP: 0.5 } };
  const a = withName(await vectorModality.fit({ featureDim: 8, hiddenDims: [16], ...views }, data.a), 'a');
  const b = withName(await vectorModality.fit({ featureDim: 8, hiddenDims: [16], ...views }, data.b), 'b');
  const modalities: Modality[] = [a, b];
  manualSeed(5);
  const model = new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16, tauBase: 0.9 },
  );
  // Epoch e visits the items in an order that depends only on e.
  const order = (epoch: number): number[] => Array.from({ length: N }, (_, i) => (i * (2 * epoch + 1) + epoch) % N);
  async function* batches(epoch: number, fromStep: number): AsyncIterable<AlignBatch> {
    const o = order(epoch);
    for (let step = fromStep; step < N / BATCH; step++) {
      const idx = o.slice(step * BATCH, (step + 1) * BATCH);
      yield {
        size: BATCH,
        inputs: new Map([
          ['a', { batch: await a.collate(idx.map((i) => data.a[i]!)), rows: null }],
          ['b', { batch: await b.collate(idx.map((i) => data.b[i]!)), rows: null }],
        ]),
      };
    }
  }
  const options: AlignTrainOptions = {
    modalities,
    batches,
    stepsPerEpoch: N / BATCH,
    epochs: 3,
    batchSize: BATCH,
    weights: { ...ALIGNMENT_OBJECTIVES.byolInfoNce, varianceWeight: 0.5, covarianceWeight: 0.02 },
    optimizer: 'adamw',
    baseLr: 3e-3,
    scaleLrByBatch: false,
    seed: 9,
  };
  return { model, options };
}

const flat = (tensors: ReadonlyMap<string, Tensor>): Record<string, number[]> =>
  Object.fromEntries([...tensors].map(([k, t]) => [k, t.toFlatArray()]));

test('N steps, a saved and reloaded state, then the rest equals one uninterrupted run, bitwise', async () => {
  const straight = await setup();
  const whole = new AlignTrainer(straight.model, straight.options);
  const wholeLog = await whole.run();
  assert.equal(whole.step, 9);

  for (const stopAt of [4, 6]) {
    // 4 stops mid-epoch, 6 at an epoch boundary.
    const first = await setup();
    const part1 = new AlignTrainer(first.model, first.options);
    const log1 = await part1.run({ stopAfter: stopAt });
    assert.equal(part1.step, stopAt);
    const { tensors, meta } = part1.stateDict();
    const bytes = serializeSafetensors(tensors, { trainer: JSON.stringify(meta) });

    // A fresh model (different initial weights) and trainer, restored from the bytes.
    const second = await setup();
    manualSeed(1234);
    randn([100]); // disturb the global generator: the resumed run must not depend on it
    const part2 = new AlignTrainer(second.model, second.options);
    const saved = parseSafetensors(bytes);
    part2.loadStateDict({ tensors: saved.tensors, meta: JSON.parse(saved.metadata!.trainer!) });
    const log2 = await part2.run();
    assert.equal(part2.step, 9);

    assert.deepEqual(
      [...log1, ...log2].map((r) => r.terms),
      wholeLog.map((r) => r.terms),
      `losses after resuming at step ${stopAt}`,
    );
    assert.deepEqual(flat(part2.stateDict().tensors), flat(whole.stateDict().tensors), `weights after resuming at step ${stopAt}`);
  }
});

test('a state from another training is refused', async () => {
  const { model, options } = await setup();
  const trainer = new AlignTrainer(model, options);
  const { tensors, meta } = trainer.stateDict();
  assert.throws(() => trainer.loadStateDict({ tensors, meta: { ...meta, step: 99 } }), /step 99 is outside this training \(0 to 9 steps\)/);
});
