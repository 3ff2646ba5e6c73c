// BYOL's pieces against hand computation: τ schedule, EMA (parameters and BatchNorm statistics),
// the loss, the stop-gradient, and a short training run that lowers the loss without collapse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, noGrad, randint, type Tensor } from '../src/index.js';
import { BatchNorm1d, Linear, Sequential } from '../src/nn/index.js';
import { tauAt, emaUpdate, emaSchedule, makeEmaTarget, updateEmaTarget } from '../src/byol/ema.js';
import { regressionLoss, symmetricByolLoss } from '../src/byol/loss.js';
import { Byol } from '../src/byol/model.js';
import { AlignModel } from '../src/align/model.js';
import { AlignTrainer } from '../src/align/train.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { trainingOptimizer } from '../src/byol/optimizer.js';
import { mlpHead } from '../src/byol/heads.js';
import { trainByol } from '../src/byol/train.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { byolView1, byolView2 } from '../src/modalities/image/augment.js';
import { assertClose } from './helpers.js';

test('τ follows the cosine schedule: τ_base at 0, halfway at K/2, 1 at K', () => {
  assert.equal(tauAt(0, 1000, 0.996), 0.996);
  assertClose(tauAt(500, 1000, 0.996), 1 - 0.004 / 2, 1e-15);
  assert.equal(tauAt(1000, 1000, 0.996), 1);
  assertClose(tauAt(250, 1000, 0.99), 1 - (0.01 * (Math.cos(Math.PI / 4) + 1)) / 2, 1e-15);
});

test('EMA moves every parameter and float buffer to τξ + (1 − τ)θ and copies counters', () => {
  manualSeed(0);
  const online = new Sequential(new Linear(3, 2), new BatchNorm1d(2));
  const target = new Sequential(new Linear(3, 2), new BatchNorm1d(2));
  online.forward(randn([4, 3])); // moves online running stats and num_batches_tracked
  const before = new Map([...target.stateDict()].map(([k, v]) => [k, v.toFlatArray()]));
  const source = new Map([...online.stateDict()].map(([k, v]) => [k, v.toFlatArray()]));
  emaUpdate(target, online, 0.9);
  for (const [key, t] of target.stateDict()) {
    const expected = key.endsWith('num_batches_tracked')
      ? source.get(key)!
      : before.get(key)!.map((xi, i) => 0.9 * xi + 0.1 * source.get(key)![i]!);
    assertClose(t, expected, 1e-6);
  }
  assert.deepEqual(target.stateDict().get('1.num_batches_tracked')!.toFlatArray(), [1]);
});

test('makeEmaTarget copies the online network, stops its gradients, and stops its BatchNorm averaging its own batches', () => {
  manualSeed(4);
  const online = new Sequential(new Linear(3, 2), new BatchNorm1d(2));
  const target = new Sequential(new Linear(3, 2), new BatchNorm1d(2));
  online.forward(randn([4, 3])); // online running statistics away from their initial values
  makeEmaTarget(target, online);
  const source = online.stateDict();
  for (const [key, t] of target.stateDict()) assertClose(t, source.get(key)!, 0);
  assert.ok(target.parameters().every((p) => !p.requiresGrad));
  assert.ok(online.parameters().every((p) => p.requiresGrad));
  const runningMean = target.stateDict().get('1.running_mean')!.toFlatArray();
  target.forward(randn([4, 3]).mul(5).add(3)); // training mode: a batch far from the statistics
  assertClose(target.stateDict().get('1.running_mean')!, runningMean, 0);
});

test('updateEmaTarget moves by τ_k of the cosine schedule, or by τ_base with the constant one, and returns it', () => {
  for (const tauSchedule of ['cosine', 'constant'] as const) {
    manualSeed(5);
    const online = new Linear(3, 2);
    const target = new Linear(3, 2);
    const before = target.weight.toFlatArray();
    const theta = online.weight.toFlatArray();
    const tau = updateEmaTarget(target, online, { tauBase: 0.9, tauSchedule }, 250, 1000);
    // cosine: 1 − 0.1·(cos(π/4) + 1)/2
    const expectedTau = tauSchedule === 'constant' ? 0.9 : 1 - (0.1 * (Math.SQRT1_2 + 1)) / 2;
    assertClose(tau, expectedTau, 1e-15);
    assertClose(
      target.weight,
      before.map((xi, i) => expectedTau * xi + (1 - expectedTau) * theta[i]!),
      1e-6,
    );
  }
});

test('both BYOL models take the one EMA schedule and its defaults: τ_base 0.996, cosine', () => {
  assert.deepEqual(emaSchedule({}), { tauBase: 0.996, tauSchedule: 'cosine' });
  assert.deepEqual(emaSchedule({ tauBase: 0.9, tauSchedule: 'constant' }), { tauBase: 0.9, tauSchedule: 'constant' });
  const sizes = { projectionHiddenDim: 8, projectionDim: 4, predictionHiddenDim: 8 };
  const byol = new Byol(() => new Sequential(new Linear(3, 4)), { featureDim: 4, ...sizes });
  const align = new AlignModel([{ name: 'a', create: () => new Sequential(new Linear(3, 4)), featureDim: 4 }], sizes);
  for (const model of [byol, align]) {
    assert.deepEqual({ tauBase: model.tauBase, tauSchedule: model.tauSchedule }, { tauBase: 0.996, tauSchedule: 'cosine' });
    assert.equal(model.updateTarget(500, 1000), 1 - 0.004 / 2);
  }
});

test('the loss is 2 − 2·cos, per item averaged, and symmetric', () => {
  const q = tensor([
    [1, 0],
    [1, 1],
  ]);
  const z = tensor([
    [0, 2],
    [2, 2],
  ]);
  // cos: 0 and 1 → losses 2 and 0 → mean 1
  assertClose(regressionLoss(q, z), 1, 1e-6);
  assertClose(regressionLoss(q, q.neg()), 4, 1e-6);
  const q2 = tensor([
    [3, 4],
    [0, 1],
  ]);
  const z2 = tensor([
    [4, 3],
    [1, 0],
  ]);
  const sym = symmetricByolLoss(q, q2, z, z2).item();
  assertClose(sym, regressionLoss(q, z2).item() + regressionLoss(q2, z).item(), 1e-6);
  assertClose(symmetricByolLoss(q2, q, z2, z), sym, 1e-6); // swapping the views changes nothing
});

test('no gradient reaches the target network, and every online parameter gets one', () => {
  manualSeed(1);
  const byol = new Byol(() => new Sequential(new Linear(6, 8)), {
    featureDim: 8,
    projectionHiddenDim: 16,
    projectionDim: 4,
    predictionHiddenDim: 16,
  });
  const { loss } = byol.trainingStep(randn([5, 6]), randn([5, 6]));
  loss.backward();
  for (const [name, p] of byol.target.namedParameters()) {
    assert.equal(p.requiresGrad, false, `target ${name} requires grad`);
    assert.equal(p.grad, null, `target ${name} received a gradient`);
  }
  for (const [name, p] of byol.online.namedParameters()) assert.notEqual(p.grad, null, `online ${name} got no gradient`);
});

test('the target starts equal to the online network and its BatchNorm statistics move only by EMA', () => {
  manualSeed(2);
  const byol = new Byol(() => new Sequential(new Linear(6, 8)), {
    featureDim: 8,
    projectionHiddenDim: 16,
    projectionDim: 4,
    predictionHiddenDim: 16,
  });
  const online = byol.online.stateDict();
  for (const [key, t] of byol.target.stateDict()) assertClose(t, online.get(key)!, 0);
  const key = 'projector.1.running_mean';
  const targetBefore = byol.target.stateDict().get(key)!.toFlatArray();
  byol.trainingStep(randn([5, 6]), randn([5, 6]));
  // The forward pass moved the online statistics but not the target's (momentum 0 there).
  assertClose(byol.target.stateDict().get(key)!, targetBefore, 0);
  const onlineStats = byol.online.stateDict().get(key)!.toFlatArray();
  assert.ok(onlineStats.some((v, i) => v !== targetBefore[i]));
  const tau = byol.updateTarget(0, 10);
  assertClose(
    byol.target.stateDict().get(key)!,
    targetBefore.map((v, i) => tau * v + (1 - tau) * onlineStats[i]!),
    1e-7,
  );
});

test('heads are Linear → BatchNorm → ReLU → Linear with the paper sizes by default', () => {
  const head = mlpHead(128);
  assert.deepEqual(
    [...head.stateDict()].map(([k, v]) => `${k}:${v.shape.join('x')}`),
    [
      '0.weight:4096x128',
      '0.bias:4096',
      '1.weight:4096',
      '1.bias:4096',
      '1.running_mean:4096',
      '1.running_var:4096',
      '1.num_batches_tracked:',
      '3.weight:256x4096',
      '3.bias:256',
    ],
  );
});

test('a short training run lowers the loss without collapse', () => {
  manualSeed(3);
  // Synthetic images with structure: a bright square at one of four places.
  const n = 256;
  const position = randint(0, 4, [n]).toFlatArray();
  const pixels = new Uint8Array(n * 16 * 16);
  position.forEach((p, i) => {
    const [r0, c0] = [(p >> 1) * 8 + 2, (p & 1) * 8 + 2];
    for (let r = r0; r < r0 + 4; r++) for (let c = c0; c < c0 + 4; c++) pixels[i * 256 + r * 16 + c] = 255;
  });
  const images: Tensor = tensor(pixels, { shape: [n, 1, 16, 16] });
  const byol = new Byol(() => new SmallCnn({ inChannels: 1, widths: [8, 16, 32] }), {
    featureDim: 32,
    projectionHiddenDim: 64,
    projectionDim: 16,
    predictionHiddenDim: 64,
    tauBase: 0.99,
  });
  const records = trainByol(byol, {
    images,
    views: [byolView1(16, 1), byolView2(16, 1)],
    batchSize: 64,
    steps: 40,
    optimizer: 'adam',
    baseLr: 1e-3,
    scaleLrByBatch: false,
    seed: 1,
  });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(records.slice(0, 5).map((r) => r.loss));
  const last = mean(records.slice(-5).map((r) => r.loss));
  assert.ok(last < first * 0.7, `loss went from ${first.toFixed(3)} to ${last.toFixed(3)}`);
  const finalRatio = records.at(-1)!.collapseRatio;
  assert.ok(finalRatio > 0.2, `collapse monitor ratio ${finalRatio.toFixed(3)}`);
  assert.equal(records.at(-1)!.tau > records[0]!.tau, true);
  assert.equal(byol.training, false);
  noGrad(() => assert.deepEqual(byol.forward(images.slice(0, 0, 2).float()).shape, [2, 32]));
});

test('trainByol and AlignTrainer set the same optimizer and learning rates for the same options', () => {
  manualSeed(6);
  const images = randint(0, 256, [32, 1, 8, 8], { dtype: 'uint8' });
  const sizes = { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16 };
  const byol = new Byol(() => new SmallCnn({ inChannels: 1, widths: [4, 8, 8] }), { featureDim: 8, ...sizes });
  // Adam with no weight decay given: the default these trainers used to disagree on (0 and 1e-4).
  const shared = { optimizer: 'adam' as const, baseLr: 2e-3, batchSize: 16 };
  const byolLrs = trainByol(byol, { ...shared, images, views: [byolView1(8, 1), byolView2(8, 1)], steps: 10 }).map((r) => r.lr);
  const align = new AlignModel([{ name: 'a', create: () => new Sequential(new Linear(3, 4)), featureDim: 4 }], sizes);
  const trainer = new AlignTrainer(align, {
    ...shared,
    modalities: [],
    batches: () => {
      throw new Error('the optimizer is set up without data');
    },
    stepsPerEpoch: 10,
    epochs: 1,
    weights: ALIGNMENT_OBJECTIVES.byol,
  });
  const alignLrs = Array.from({ length: 10 }, (_, step) => {
    trainer.scheduler.setStep(step);
    return trainer.scheduler.currentLrs()[0]!;
  });
  assert.deepEqual(alignLrs, byolLrs);
  // Both from trainingOptimizer: 2e-3 · 16/256 = 1.25e-4 at the peak, 1 warm-up step, Adam's weight decay 0.
  const expected = trainingOptimizer([], shared, { batchSize: 16, totalSteps: 10 }).settings;
  assert.deepEqual(trainer.optimization, expected);
  assert.deepEqual(
    { peakLr: expected.peakLr, warmupSteps: expected.warmupSteps, weightDecay: expected.weightDecay },
    { peakLr: 1.25e-4, warmupSteps: 1, weightDecay: 0 },
  );
  assert.equal(byolLrs[1], 1.25e-4);
  assert.equal(trainer.optimizer.name, 'Adam');
  assert.deepEqual(
    trainer.optimizer.paramGroups.map((g) => (g as typeof g & { weightDecay: number }).weightDecay),
    [0, 0],
  );
});
