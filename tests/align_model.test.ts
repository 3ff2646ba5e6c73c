// The heterogeneous aligner: shared or per-modality heads, the EMA target, missing modalities in a
// batch, the training loop on a synthetic paired task, and retrieval through the trained model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cat, manualSeed, randn, tensor, tidy, noGrad, type Tensor } from '../src/index.js';
import { AlignModel, type AlignEncoderSpec } from '../src/align/model.js';
import { trainAlignment, type AlignBatch } from '../src/align/train.js';
import type { AlignmentLossWeights } from '../src/align/loss.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { evaluateRetrieval, type RetrievalDirection } from '../src/align/evaluate.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import { withName, type ModalitySpec } from '../src/modalities/modality.js';
import { modalityFactory, registerModality, registeredModalities, restoreModality } from '../src/modalities/registry.js';
import { BatchNorm, Linear, Sequential, type BatchNormTogether } from '../src/nn/index.js';
import { resolveConfig } from '../src/config/load.js';
import { lossWeights } from '../src/run/model_setup.js';
import { assertClose } from './helpers.js';

const small = { projectionHiddenDim: 32, projectionDim: 16, predictionHiddenDim: 32 };
const encoder = (name: string, inDim: number, outDim: number): AlignEncoderSpec => ({
  name,
  create: () => new Sequential(new Linear(inDim, outDim)),
  featureDim: outDim,
});

test('shared heads: one projector and predictor, and a neck where encoder widths differ', () => {
  manualSeed(0);
  const model = new AlignModel([encoder('a', 5, 8), encoder('b', 3, 6)], { ...small, sharedHeads: true });
  const names = model.online.namedParameters().map(([n]) => n);
  assert.ok(names.includes('projectors.shared.0.weight'));
  assert.ok(names.includes('predictors.shared.0.weight'));
  assert.ok(!names.some((n) => n.startsWith('projectors.a')));
  // b's encoder (width 6) gets a Linear neck to the common width 8; a's does not.
  assert.deepEqual(model.online.encoders.get('b').forward(randn([2, 3])).shape, [2, 8]);
  assert.ok(names.includes('encoders.b.1.weight'));
  assert.ok(!names.includes('encoders.a.1.weight'));
  // The target has no predictor and starts as a copy of the online network.
  assert.ok(!model.target.namedParameters().some(([n]) => n.startsWith('predictors')));
  const online = new Map(model.online.namedParameters());
  for (const [n, p] of model.target.namedParameters()) assert.deepEqual(p.toFlatArray(), online.get(n)!.toFlatArray());
});

test('headInputDim: the shared heads take that width, and every tower of another width gets a neck to it', () => {
  manualSeed(0);
  // The widest tower (a, 8) would set the width; headInputDim 6 gives a a neck 8 → 6 and leaves b as it is.
  const model = new AlignModel([encoder('a', 5, 8), encoder('b', 3, 6)], { ...small, sharedHeads: true, headInputDim: 6 });
  const shapes = new Map(model.online.namedParameters().map(([n, p]) => [n, p.shape]));
  assert.deepEqual(shapes.get('encoders.a.1.weight'), [6, 8]);
  assert.ok(!shapes.has('encoders.b.1.weight'));
  assert.deepEqual(shapes.get('projectors.shared.0.weight'), [32, 6]);
  assert.deepEqual(model.embed('a', randn([3, 5]), 'projection').shape, [3, 16]);
  assert.throws(
    () => new AlignModel([encoder('a', 5, 8)], { ...small, sharedHeads: false, headInputDim: 6 }),
    /model\.headInputDim .*needs model\.sharedHeads true/,
  );
});
test('separate heads: one projector and predictor per modality, no neck', () => {
  const model = new AlignModel([encoder('a', 5, 8), encoder('b', 3, 6)], { ...small, sharedHeads: false });
  const names = model.online.namedParameters().map(([n]) => n);
  assert.ok(names.includes('projectors.a.0.weight') && names.includes('projectors.b.0.weight'));
  assert.ok(names.includes('predictors.a.0.weight') && names.includes('predictors.b.0.weight'));
  assert.ok(!names.some((n) => n.includes('shared')));
  assert.deepEqual(model.embed('b', randn([4, 3]), 'projection').shape, [4, 16]);
});

test('updateTarget: ξ ← τξ + (1 − τ)θ with the constant schedule; the target gets no gradient', () => {
  manualSeed(1);
  const model = new AlignModel([encoder('a', 4, 4)], { ...small, tauBase: 0.9, tauSchedule: 'constant' });
  const w = (m: 'online' | 'target'): number[] => model[m].encoders.get('a').namedParameters()[0]![1].toFlatArray();
  const before = w('target');
  noGrad(() => model.online.encoders.get('a').namedParameters()[0]![1].add_(1));
  const onlineNow = w('online');
  assert.equal(model.updateTarget(5, 10), 0.9);
  const expected = before.map((x, i) => 0.9 * x + 0.1 * onlineNow[i]!);
  assertClose(w('target'), expected, 1e-6);
  assert.ok(model.target.parameters().every((p) => !p.requiresGrad));
});

test('forwardViews: an item without a modality gets zero rows and is marked absent', () => {
  manualSeed(2);
  const model = new AlignModel([encoder('a', 4, 8), encoder('b', 3, 8)], small);
  const rowsB = tensor([0, 2], { dtype: 'int64' });
  const outputs = tidy(() =>
    model.forwardViews(
      new Map([
        ['a', { view1: randn([3, 4]), view2: randn([3, 4]), rows: null }],
        ['b', { view1: randn([2, 3]), view2: randn([2, 3]), rows: rowsB }],
      ]),
      3,
    ),
  );
  const b = outputs.get('b')!;
  assert.deepEqual(b.present.toFlatArray().map(Number), [1, 0, 1]);
  assert.deepEqual(b.q1.shape, [3, 16]);
  assert.deepEqual(b.z2.toFlatArray().slice(16, 32), new Array(16).fill(0));
  assert.deepEqual(outputs.get('a')!.present.toFlatArray().map(Number), [1, 1, 1]);
});

test("forwardViews runs the heads' BatchNorms together: every modality's online and target projectors, then the predictors", () => {
  for (const sharedHeads of [true, false]) {
    manualSeed(3);
    const model = new AlignModel([encoder('a', 4, 8), encoder('b', 3, 8)], { ...small, sharedHeads });
    const views = new Map([
      ['a', { view1: randn([3, 4]), view2: randn([3, 4]), rows: null }],
      ['b', { view1: randn([3, 3]), view2: randn([3, 3]), rows: null }],
    ]);
    // Each BatchNorm by its path, through the identity of its running mean.
    const layerName = new Map(
      model
        .namedBuffers()
        .filter(([n]) => n.endsWith('.running_mean'))
        .map(([n, t]) => [t, n.slice(0, -'.running_mean'.length)] as const),
    );
    const groups: string[][] = [];
    const together: BatchNormTogether = (calls) => {
      groups.push(calls.map((call) => layerName.get(call.layer.runningMean!)!));
      return calls.map((call) => call.layer.forwardAffine(call.input, call.weight, call.bias));
    };
    for (const m of model.modules()) if (m instanceof BatchNorm) m.together = together;
    const outputs = tidy(() => model.forwardViews(views, 3));
    const head = (branch: string, kind: string, m: string): string =>
      sharedHeads ? `${branch}.${kind}.shared.1.statistics.${m}` : `${branch}.${kind}.${m}.1`;
    assert.deepEqual(groups, [
      [
        head('online', 'projectors', 'a'),
        head('online', 'projectors', 'b'),
        head('target', 'projectors', 'a'),
        head('target', 'projectors', 'b'),
      ],
      [head('online', 'predictors', 'a'), head('online', 'predictors', 'b')],
    ]);
    // The same outputs as each modality's heads run alone.
    for (const m of ['a', 'b']) {
      const both = cat([views.get(m)!.view1, views.get(m)!.view2]);
      const p = model.online.project(m, model.online.encode(m, both));
      const q = model.online.predict(m, p);
      const z = noGrad(() => model.target.project(m, model.target.encode(m, both)));
      const out = outputs.get(m)!;
      assertClose(cat([out.p1, out.p2]).detach().toFlatArray(), p.detach().toFlatArray(), 1e-6, 1e-6);
      assertClose(cat([out.q1, out.q2]).detach().toFlatArray(), q.detach().toFlatArray(), 1e-6, 1e-6);
      assertClose(cat([out.z1, out.z2]).toFlatArray(), z.toFlatArray(), 1e-6, 1e-6);
      assert.equal(out.z1.requiresGrad, false);
    }
  }
});

// A synthetic paired task: both modalities are noisy linear images of one latent per item.
function pairedTask(n: number, seed: number): { a: number[][]; b: number[][] } {
  manualSeed(seed);
  const latent = randn([n, 4]);
  const a = latent.matmul(randn([4, 12])).add(randn([n, 12]).mul(0.05));
  const b = latent.matmul(randn([4, 10])).add(randn([n, 10]).mul(0.05));
  const rows = (t: Tensor, d: number): number[][] => {
    const flat = t.toFlatArray();
    return Array.from({ length: n }, (_, i) => flat.slice(i * d, (i + 1) * d));
  };
  return { a: rows(a, 12), b: rows(b, 10) };
}

/**
 * Trains two vector modalities on the synthetic paired task with `weights` (12 epochs of 8 steps)
 * and evaluates retrieval on 200 training items, one "caption" each (chance R@10: 5%).
 */
async function trainPairedTask(weights: AlignmentLossWeights, tauBase = 0.99) {
  const train = pairedTask(512, 3);
  const a = withName(await vectorModality.fit({ featureDim: 16, hiddenDims: [32] }, train.a), 'a');
  const b = withName(await vectorModality.fit({ featureDim: 16, hiddenDims: [32] }, train.b), 'b');
  manualSeed(4);
  const model = new AlignModel(
    [a, b].map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { ...small, tauBase },
  );
  const batchSize = 64;
  async function* batches(): AsyncIterable<AlignBatch> {
    for (let i = 0; i + batchSize <= 512; i += batchSize) {
      yield {
        size: batchSize,
        inputs: new Map([
          ['a', { batch: await a.collate(train.a.slice(i, i + batchSize)), rows: null }],
          ['b', { batch: await b.collate(train.b.slice(i, i + batchSize)), rows: null }],
        ]),
      };
    }
  }
  const log = await trainAlignment(model, {
    modalities: [a, b],
    batches,
    stepsPerEpoch: 8,
    epochs: 12,
    batchSize,
    weights,
    baseLr: 3e-3,
    scaleLrByBatch: false,
  });
  async function* first200(m: typeof a, rows: typeof train.a): AsyncIterable<Tensor> {
    yield await m.collate(rows.slice(0, 200));
  }
  const keys = Array.from({ length: 200 }, (_, i) => i);
  const { directions } = (
    await evaluateRetrieval(model, {
      rows: [
        { modality: a, batches: first200(a, train.a), keys },
        { modality: b, batches: first200(b, train.b), keys },
      ],
    })
  )[0]!;
  assert.deepEqual(
    directions.map((d) => `${d.query}>${d.gallery}`),
    ['a>b', 'b>a'],
  );
  const [aToB, bToA] = directions as [RetrievalDirection, RetrievalDirection];
  assertClose(bToA.chance.r10, 5, 1e-9);
  // Named as image → text (a → b) and text → image (b → a) for the assertions below.
  const metrics = { i2t: aToB.metrics, t2i: bToA.metrics };
  const chance = { i2t: aToB.chance, t2i: bToA.chance };
  return { log, metrics, chance };
}

test('trainAlignment with InfoNCE aligns a synthetic paired task far above chance', async () => {
  const { log, metrics, chance } = await trainPairedTask({ intraWeight: 0, crossWeight: 0, infoNceWeight: 1 });
  assert.equal(log.length, 96);
  assert.deepEqual(Object.keys(log[0]!.terms).sort(), ['infonce/a<->b', 'logitScale', 'total']);
  assert.ok(log.at(-1)!.terms['infonce/a<->b']! < log[0]!.terms['infonce/a<->b']! * 0.6, 'InfoNCE falls');
  assert.ok(log.every((r) => r.waitMs >= 0 && Number.isFinite(r.loss)));
  assert.ok(metrics.t2i.r10 > 5 * chance.t2i.r10, `t2i R@10 ${metrics.t2i.r10}`);
  assert.ok(metrics.i2t.r10 > 5 * chance.i2t.r10, `i2t R@10 ${metrics.i2t.r10}`);
});

test('without negatives, BYOL’s cross term with VICReg’s terms aligns the synthetic task far above chance', async () => {
  const { log, metrics, chance } = await trainPairedTask(ALIGNMENT_OBJECTIVES.crossPlusVicReg);
  // The invariance term starts small (projections near 0 at initialisation) and grows as the
  // variance term spreads them; what falls is the hinge on spread and BYOL's regression.
  assert.ok(log.at(-1)!.terms['variance/a']! < log[0]!.terms['variance/a']! / 2, 'the projections spread out');
  assert.ok(log.at(-1)!.terms['cross/a->b']! < log[0]!.terms['cross/a->b']!, 'the cross term falls');
  assert.ok(metrics.t2i.r10 > 5 * chance.t2i.r10, `t2i R@10 ${metrics.t2i.r10}`);
  assert.ok(metrics.i2t.r10 > 5 * chance.i2t.r10, `i2t R@10 ${metrics.i2t.r10}`);
});

test('the default objective is BYOL-based and negative-free, and aligns the synthetic task far above chance', async () => {
  const config = resolveConfig({});
  const weights: AlignmentLossWeights = lossWeights(config);
  assert.equal(weights.infoNceWeight, 0, 'no negatives in the default loss');
  assert.ok(weights.crossWeight > 0, "the default loss has BYOL's cross term");
  const { log, metrics, chance } = await trainPairedTask(weights, config.model.tauBase);
  assert.ok(log.at(-1)!.terms['cross/a->b']! < log[0]!.terms['cross/a->b']!, 'the cross term falls');
  assert.ok(metrics.t2i.r10 > 5 * chance.t2i.r10, `t2i R@10 ${metrics.t2i.r10}`);
  assert.ok(metrics.i2t.r10 > 5 * chance.i2t.r10, `i2t R@10 ${metrics.i2t.r10}`);
});

test("lossWeights carries loss.invarianceDistance over the objective's weights, and leaves it out by default", () => {
  assert.equal('invarianceDistance' in lossWeights(resolveConfig({})), false);
  const weights = lossWeights(resolveConfig({ overrides: ['loss.invarianceDistance=cosine', 'loss.crossWeight=0'] }));
  assert.deepEqual(weights, { ...ALIGNMENT_OBJECTIVES.lightCrossPlusVicReg, crossWeight: 0, invarianceDistance: 'cosine' });
  assert.throws(() => resolveConfig({ overrides: ['loss.invarianceDistance=l1'] }), /loss\.invarianceDistance/);
});

test('trainAlignment with the cross-modal BYOL term lowers it and logs every term', async () => {
  const train = pairedTask(256, 5);
  const a = withName(await vectorModality.fit({ featureDim: 16, hiddenDims: [32] }, train.a), 'a');
  const b = withName(await vectorModality.fit({ featureDim: 16, hiddenDims: [32] }, train.b), 'b');
  manualSeed(6);
  const model = new AlignModel(
    [a, b].map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { ...small, tauBase: 0.99 },
  );
  async function* batches(): AsyncIterable<AlignBatch> {
    for (let i = 0; i + 64 <= 256; i += 64) {
      yield {
        size: 64,
        inputs: new Map([
          ['a', { batch: await a.collate(train.a.slice(i, i + 64)), rows: null }],
          ['b', { batch: await b.collate(train.b.slice(i, i + 64)), rows: null }],
        ]),
      };
    }
  }
  const log = await trainAlignment(model, {
    modalities: [a, b],
    batches,
    stepsPerEpoch: 4,
    epochs: 10,
    batchSize: 64,
    weights: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 },
    baseLr: 3e-3,
    scaleLrByBatch: false,
  });
  const keys = Object.keys(log[0]!.terms).sort();
  assert.deepEqual(keys, ['cross/a->b', 'cross/b->a', 'intra/a', 'intra/b', 'total']);
  const first = log.slice(0, 4).reduce((s, r) => s + r.terms['cross/a->b']!, 0);
  const last = log.slice(-4).reduce((s, r) => s + r.terms['cross/a->b']!, 0);
  assert.ok(last < first, `cross term ${first / 4} → ${last / 4}`);
  assert.ok(Object.values(log.at(-1)!.collapse).every((ratio) => ratio > 0.05));
  assert.ok(Math.abs(log.at(-1)!.tau - 1) < 1e-3, 'τ reaches 1 at the end of the cosine schedule');
});

test('AlignModel refuses an empty modality list', () => {
  assert.throws(() => new AlignModel([]), /at least one modality/);
});

test('the registry knows image, text and vector, restores a saved modality, and refuses unknown names', async () => {
  const names = registeredModalities();
  for (const name of ['image', 'text', 'vector']) assert.ok(names.includes(name), name);
  const vector = await modalityFactory('vector').fit({ featureDim: 8, hiddenDims: [16] }, [[1, 2, 3]]);
  const restored = restoreModality(JSON.parse(JSON.stringify(vector.toJSON())) as ModalitySpec);
  assert.equal(restored.featureDim, 8);
  assert.deepEqual((await restored.collate([[4, 5, 6]])).toFlatArray(), [4, 5, 6]);
  assert.throws(() => modalityFactory('smell'), /unknown modality 'smell'; registered modalities: image, text, vector, audio/);
  assert.throws(() => registerModality(vectorModality), /already registered/);
});

test('a first stage trains with its own weights, then the main weights take over', async () => {
  const train = pairedTask(128, 7);
  const a = withName(await vectorModality.fit({ featureDim: 8, hiddenDims: [16] }, train.a), 'a');
  const b = withName(await vectorModality.fit({ featureDim: 8, hiddenDims: [16] }, train.b), 'b');
  const model = new AlignModel(
    [a, b].map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    small,
  );
  async function* batches(): AsyncIterable<AlignBatch> {
    for (let i = 0; i + 64 <= 128; i += 64) {
      yield {
        size: 64,
        inputs: new Map([
          ['a', { batch: await a.collate(train.a.slice(i, i + 64)), rows: null }],
          ['b', { batch: await b.collate(train.b.slice(i, i + 64)), rows: null }],
        ]),
      };
    }
  }
  const options = { modalities: [a, b], batches, stepsPerEpoch: 2, epochs: 3, batchSize: 64 };
  const log = await trainAlignment(model, {
    ...options,
    weights: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0 },
    firstStageEpochs: 1,
    firstStageWeights: { intraWeight: 1, crossWeight: 0, infoNceWeight: 0 },
  });
  const sum = (terms: Record<string, number>, prefix: string): number =>
    Object.entries(terms)
      .filter(([k]) => k.startsWith(prefix))
      .reduce((s, [, v]) => s + v, 0);
  for (const r of log) {
    // Each stage logs only the terms it weights: the other stage's are not computed.
    const keys = r.epoch < 1 ? ['intra/a', 'intra/b', 'total'] : ['cross/a->b', 'cross/b->a', 'total'];
    assert.deepEqual(Object.keys(r.terms).sort(), keys, `epoch ${r.epoch}`);
    const expected = r.epoch < 1 ? sum(r.terms, 'intra/') : sum(r.terms, 'cross/');
    assertClose(r.loss, expected, 1e-5);
  }
  await assert.rejects(
    trainAlignment(model, { ...options, weights: ALIGNMENT_OBJECTIVES.byol, firstStageEpochs: 1 }),
    /needs firstStageWeights/,
  );
  await assert.rejects(
    trainAlignment(model, {
      ...options,
      weights: ALIGNMENT_OBJECTIVES.byol,
      firstStageEpochs: 4,
      firstStageWeights: ALIGNMENT_OBJECTIVES.intraOnly,
    }),
    /from 0 to epochs \(3\)/,
  );
});
