// No silent NaN runs: a NaN or infinite loss or gradient stops training with a NonFiniteLossError
// before that step's update, in both trainers and in the command (non-zero exit, no null loss in
// metrics.jsonl, the last finite checkpoint kept); a model with non-finite weights is refused by
// eval, embed and export, and a run directory falls back to its last finite checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { manualSeed, randint, randn, scalar, setNumThreads, tensor, type Tensor } from '../src/index.js';
import { AlignModel } from '../src/align/model.js';
import { AlignTrainer, NonFiniteLossError, type AlignBatch, type AlignStepRecord, type AlignTrainOptions } from '../src/align/train.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { checkFiniteStep } from '../src/optim/nonfinite.js';
import { Byol } from '../src/byol/model.js';
import { trainByol } from '../src/byol/train.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { byolView1, byolView2 } from '../src/modalities/image/augment.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import { withName, type Modality } from '../src/modalities/modality.js';
import { listCheckpoints, loadCheckpoint } from '../src/run/checkpoint.js';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { forgeCheckpoint } from './checkpoint_forge.js';

setNumThreads(1);

const N = 64;
const BATCH = 16; // 4 steps per epoch

/** Two vector modalities of one latent; the batch of step `poisonStep` (counted from 0) is all NaN. */
async function alignSetup(poisonStep: number): Promise<{ model: AlignModel; options: AlignTrainOptions }> {
  manualSeed(4);
  const latent = randn([N, 3]);
  const rows = (t: Tensor, d: number): number[][] => {
    const flat = t.toFlatArray();
    return Array.from({ length: N }, (_, i) => flat.slice(i * d, (i + 1) * d));
  };
  const data = { a: rows(latent.matmul(randn([3, 6])), 6), b: rows(latent.matmul(randn([3, 5])), 5) };
  const a = withName(await vectorModality.fit({ featureDim: 8, hiddenDims: [16] }, data.a), 'a');
  const b = withName(await vectorModality.fit({ featureDim: 8, hiddenDims: [16] }, data.b), 'b');
  const modalities: Modality[] = [a, b];
  manualSeed(5);
  const model = new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16, tauBase: 0.9 },
  );
  const stepsPerEpoch = N / BATCH;
  async function* batches(epoch: number, fromStep: number): AsyncIterable<AlignBatch> {
    for (let step = fromStep; step < stepsPerEpoch; step++) {
      const idx = Array.from({ length: BATCH }, (_, i) => step * BATCH + i);
      let batchA = await a.collate(idx.map((i) => data.a[i]!));
      // The collate step refuses NaN input, so the poison goes in after it, as a broken pipeline would.
      if (epoch * stepsPerEpoch + step === poisonStep) batchA = batchA.mul(scalar(NaN));
      const batchB = await b.collate(idx.map((i) => data.b[i]!));
      yield {
        size: BATCH,
        inputs: new Map([
          ['a', { batch: batchA, rows: null }],
          ['b', { batch: batchB, rows: null }],
        ]),
      };
    }
  }
  const options: AlignTrainOptions = {
    modalities,
    batches,
    stepsPerEpoch,
    epochs: 2,
    batchSize: BATCH,
    weights: ALIGNMENT_OBJECTIVES.byolInfoNce,
    optimizer: 'adamw',
    baseLr: 3e-3,
    scaleLrByBatch: false,
    seed: 9,
  };
  return { model, options };
}

/** A trainer state's tensors as arrays, without BatchNorm's running statistics (which the failed forward pass moves). */
const weightsAndMoments = (tensors: ReadonlyMap<string, Tensor>): Record<string, number[]> =>
  Object.fromEntries(
    [...tensors].filter(([k]) => !/running_(mean|var)$|num_batches_tracked$/.test(k)).map(([k, t]) => [k, t.toFlatArray()]),
  );

test('a NaN loss stops the aligner before that step: no update, no onStep record, no afterStep', async () => {
  // The 6th step (index 5, epoch 2) sees a NaN batch.
  const { model, options } = await alignSetup(5);
  const records: AlignStepRecord[] = [];
  const afterSteps: number[] = [];
  const trainer = new AlignTrainer(model, { ...options, onStep: (r) => records.push(r) });
  await assert.rejects(trainer.run({ afterStep: (t) => void afterSteps.push(t.step) }), (err: Error) => {
    assert.ok(err instanceof NonFiniteLossError, String(err));
    assert.equal(err.step, 6);
    assert.equal(err.epoch, 2);
    assert.ok(Number.isNaN(err.terms.total), JSON.stringify(err.terms));
    assert.ok(Object.keys(err.terms).includes('intra/a'), JSON.stringify(err.terms));
    assert.ok(Object.values(err.terms).every((v) => !Number.isFinite(v)));
    assert.match(err.message, /^trainAlignment: training stopped at step 6 \(epoch 2\): the loss is not finite \(total = NaN, /);
    assert.match(err.message, /the update of that step was not applied/);
    return true;
  });
  assert.equal(trainer.step, 5);
  assert.deepEqual(
    records.map((r) => r.step),
    [0, 1, 2, 3, 4],
  );
  assert.ok(records.every((r) => Number.isFinite(r.loss)));
  assert.deepEqual(afterSteps, [1, 2, 3, 4, 5]);

  // The weights, EMA target and optimizer moments are those of a run stopped after 5 steps.
  const reference = await alignSetup(-1);
  const stopped = new AlignTrainer(reference.model, reference.options);
  await stopped.run({ stopAfter: 5 });
  assert.deepEqual(weightsAndMoments(trainer.stateDict().tensors), weightsAndMoments(stopped.stateDict().tensors));
});

test('a finite loss with an infinite gradient stops training too, naming the parameter', () => {
  const p = tensor([0, 4]).requiresGrad_();
  const q = tensor([1, 1]).requiresGrad_();
  // d√x/dx = 1/(2√x) is infinite at 0, though √0 = 0 is finite.
  const loss = p.sqrt().sum().add(q.sum());
  loss.backward();
  assert.throws(
    () =>
      checkFiniteStep('trainX', 6, 1, { total: loss.item() }, [
        ['head.p', p],
        ['head.q', q],
      ]),
    (err: Error) =>
      err instanceof NonFiniteLossError &&
      err.step === 7 &&
      err.epoch === 2 &&
      Object.keys(err.terms).length === 0 &&
      err.gradients.join() === 'head.p' &&
      err.message ===
        'trainX: training stopped at step 7 (epoch 2): the gradient of 1 parameter is not finite (head.p); ' +
          'the update of that step was not applied. Lower the learning rate or clip the gradient norm.',
  );
  assert.doesNotThrow(() => checkFiniteStep('trainX', 6, 1, { total: loss.item() }, [['head.q', q]]));
});

test('trainByol stops at the first NaN loss with the weights of the step before', () => {
  manualSeed(3);
  const n = 32;
  const pixels = new Uint8Array(n * 64);
  randint(0, 4, [n])
    .toFlatArray()
    .forEach((p, i) => {
      for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) pixels[i * 64 + ((p >> 1) * 4 + r) * 8 + (p & 1) * 4 + c] = 255;
    });
  const images = tensor(pixels, { shape: [n, 1, 8, 8] });
  const make = (): Byol => {
    manualSeed(7);
    return new Byol(() => new SmallCnn({ inChannels: 1, widths: [4, 8, 8] }), {
      featureDim: 8,
      projectionHiddenDim: 16,
      projectionDim: 8,
      predictionHiddenDim: 16,
      tauBase: 0.99,
    });
  };
  // LARS at a learning rate of 1e20: the first update is finite, the second forward pass is not.
  const options = {
    images,
    views: [byolView1(8, 1), byolView2(8, 1)] as [ReturnType<typeof byolView1>, ReturnType<typeof byolView2>],
    batchSize: 16,
    optimizer: 'lars' as const,
    baseLr: 1e20,
    scaleLrByBatch: false,
    warmupSteps: 0,
    lrSchedule: 'constant' as const,
    seed: 1,
  };
  const byol = make();
  const losses: number[] = [];
  assert.throws(
    () => trainByol(byol, { ...options, steps: 40, onStep: (r) => losses.push(r.loss) }),
    (err: Error) =>
      err instanceof NonFiniteLossError &&
      err.step === 2 &&
      err.epoch === 1 &&
      /^trainByol: training stopped at step 2 \(epoch 1\): the loss is not finite \(total = NaN\)/.test(err.message),
  );
  assert.equal(losses.length, 1);
  assert.ok(Number.isFinite(losses[0]));
  // The online weights are those after step 1: the same as a one-step run's (a constant learning
  // rate, and the online network does not depend on the EMA schedule's length).
  const oneStep = make();
  trainByol(oneStep, { ...options, steps: 1 });
  const online = (b: Byol): number[][] => b.online.parameters().map((p) => p.toFlatArray());
  assert.deepEqual(online(byol), online(oneStep));
  assert.ok(online(byol).flat().every(Number.isFinite));
});

const fixture = useCliFixture();

const finite = (t: Tensor): boolean => t.isfinite().all().item() === 1;

test('train with a huge learning rate exits 1 naming the step; metrics have no null loss; the last finite checkpoint is kept', () => {
  const run = join(fixture.dir, 'run-nan');
  // 4 epochs of 3 steps, a checkpoint every 2 steps, the newest 2 kept.
  const r = cli('train', ...fixture.data, '--epochs', '4', '--out', run, ...TINY, 'optim.baseLr=1000000');
  assert.equal(r.status, 1, r.stderr);
  const stop =
    /train: training stopped at step (\d+) \(epoch (\d+)\): the loss is not finite \(total = NaN[^)]*\); the update of that step was not applied/.exec(
      r.stderr,
    );
  assert.ok(stop, r.stderr);
  const failedStep = Number(stop[1]);
  assert.ok(failedStep >= 2 && failedStep <= 12, r.stderr);
  assert.equal(Number(stop[2]), Math.ceil(failedStep / 3));
  assert.doesNotMatch(r.stderr, /finished/);

  // One finite line per step before the failed one, and none after it.
  const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { step?: number; loss?: unknown })
    .filter((e) => e.step !== undefined);
  assert.deepEqual(
    steps.map((e) => e.step),
    Array.from({ length: failedStep - 1 }, (_, i) => i + 1),
  );
  for (const e of steps) assert.equal(typeof e.loss, 'number', JSON.stringify(e));

  // Checkpoints at every second step before the failure, the newest two kept, every tensor finite.
  const lastCheckpointStep = 2 * Math.floor((failedStep - 1) / 2);
  const expected = [lastCheckpointStep - 2, lastCheckpointStep].filter((s) => s > 0);
  const files = listCheckpoints(join(run, 'checkpoints'));
  assert.deepEqual(
    files.map((f) => basename(f)),
    expected.map((s) => `step-${String(s).padStart(9, '0')}.safetensors`),
  );
  for (const f of files) for (const [k, t] of loadCheckpoint(f).tensors) assert.ok(finite(t), `${f}: ${k}`);
  assert.match(
    r.stderr,
    new RegExp(`The newest checkpoint, .*${basename(files.at(-1)!)}, holds the last finite state \\(step ${lastCheckpointStep}\\)`),
  );
  assert.match(r.stderr, /with a lower optim\.baseLr or with optim\.clipGradNorm set/);
});

test('eval, embed and export refuse a checkpoint with NaN weights; a run directory falls back to its last finite one', () => {
  const run = fixture.trainedRun(); // checkpoints at steps 2 and 3
  const newest = join(run, 'checkpoints', 'step-000000003.safetensors');
  forgeCheckpoint(newest, newest, (tensors) => {
    const [key, weight] = [...tensors].find(([k]) => k.startsWith('model.online.') && k.endsWith('.weight'))!;
    tensors.set(key, weight.mul(scalar(NaN)));
  });
  const queries = join(fixture.dir, 'queries.txt');
  writeFileSync(queries, 'a red square\nstripe in blue\n');
  const input = ['--modality', 'text', '--input', queries];
  const refused = /step-000000003\.safetensors: the checkpoint holds tensors holding NaN or infinite values: model\.online\./;
  const commands: [string, string[]][] = [
    ['eval', ['--data', `coco:${fixture.annotations}`, '--images', fixture.images, '--json', '--threads', '1']],
    ['embed', [...input, '--out', join(fixture.dir, 'nan.npy'), '--threads', '1']],
    ['export', ['--out', join(fixture.dir, 'export-nan')]],
  ];
  for (const [command, args] of commands) {
    const direct = cli(command, '--checkpoint', newest, ...args);
    assert.equal(direct.status, 1, `${command}: ${direct.stderr}`);
    assert.match(direct.stderr, refused, command);
  }
  // Through the run directory: the NaN checkpoint is reported and step 2 is used.
  const embedded = cli('embed', '--checkpoint', run, ...input, '--out', join(fixture.dir, 'finite.npy'), '--threads', '1');
  assert.equal(embedded.status, 0, embedded.stderr);
  assert.match(embedded.stderr, new RegExp(`skipping a broken checkpoint: .*${refused.source}`));
  const bytes = readFileSync(join(fixture.dir, 'finite.npy'));
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 128, bytes.byteOffset + bytes.length));
  assert.ok(values.length > 0 && values.every(Number.isFinite));
});
