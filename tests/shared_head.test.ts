// Shared heads keep BatchNorm's running statistics per modality (src/align/shared_head.ts): each
// modality's statistics are the ones of its own batches, eval mode normalises with them, and a
// checkpoint written with one set of statistics still loads and behaves as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, noGrad, type Tensor } from '../src/index.js';
import { AlignModel, type AlignEncoderSpec } from '../src/align/model.js';
import { ModalityBatchNorm1d, SharedHead } from '../src/align/shared_head.js';
import { Identity } from '../src/nn/index.js';
import { assertClose } from './helpers.js';
import { resolveConfig } from '../src/config/load.js';
import { defaultRetrievalSpace } from '../src/run/model_setup.js';
import type { Modality } from '../src/modalities/modality.js';

const identity = (name: string): AlignEncoderSpec => ({ name, create: () => new Identity(), featureDim: 4 });
const heads = { projectionHiddenDim: 6, projectionDim: 3, predictionHiddenDim: 5 };

/** Column means and (biased, unbiased) variances of a [n, d] matrix, by hand. */
function columnStats(rows: number[][]): { mean: number[]; unbiased: number[]; biased: number[] } {
  const n = rows.length;
  const mean = rows[0]!.map((_, j) => rows.reduce((s, r) => s + r[j]!, 0) / n);
  const ss = mean.map((m, j) => rows.reduce((s, r) => s + (r[j]! - m) ** 2, 0));
  return { mean, unbiased: ss.map((v) => v / (n - 1)), biased: ss.map((v) => v / n) };
}

function matrix(t: Tensor): number[][] {
  const [n, d] = t.shape as [number, number];
  const flat = t.toFlatArray();
  return Array.from({ length: n }, (_, i) => flat.slice(i * d, (i + 1) * d));
}

test('shared projector: each modality updates only its own running statistics, from its own batch', () => {
  manualSeed(1);
  const model = new AlignModel([identity('image'), identity('text')], { ...heads, sharedHeads: true });
  const projector = model.online.projectors.get('shared') as SharedHead;
  const first = projector.stateDict();
  const linear = (x: Tensor): number[][] => matrix(noGrad(() => x.matmul(first.get('0.weight')!.t()).add(first.get('0.bias')!)));
  // Image features far from text features, as two encoders' outputs are.
  const image = randn([8, 4]).mul(3).add(5);
  const text = randn([8, 4]);
  model.train();
  model.online.project('image', image);
  model.online.project('text', text);
  const state = projector.stateDict();
  for (const [modality, x] of [
    ['image', image],
    ['text', text],
  ] as const) {
    const stats = columnStats(linear(x));
    // momentum 0.1 from mean 0 / variance 1: running = 0.9·initial + 0.1·batch (unbiased variance, as PyTorch).
    assertClose(
      state.get(`1.statistics.${modality}.running_mean`)!.toFlatArray(),
      stats.mean.map((m) => 0.1 * m),
      1e-5,
    );
    assertClose(
      state.get(`1.statistics.${modality}.running_var`)!.toFlatArray(),
      stats.unbiased.map((v) => 0.9 + 0.1 * v),
      1e-5,
    );
    assert.equal(state.get(`1.statistics.${modality}.num_batches_tracked`)!.item(), 1);
  }
  // Weight and bias are one pair for both modalities.
  assert.deepEqual(state.get('1.weight')!.shape, [6]);
  assert.ok(!state.has('1.running_mean'));
});

test('shared projector in eval mode normalises each modality with its own statistics', () => {
  manualSeed(2);
  const model = new AlignModel([identity('image'), identity('text')], { ...heads, sharedHeads: true });
  const projector = model.online.projectors.get('shared') as SharedHead;
  model.train();
  const image = randn([16, 4]).mul(4).add(-3);
  const text = randn([16, 4]);
  noGrad(() => model.online.project('image', image));
  noGrad(() => model.online.project('text', text));
  const evalImage = model.embed('image', image, 'projection');
  // By hand: Linear, BatchNorm with the image's running statistics, ReLU, Linear; the text's
  // statistics (far from the image's) would give other projections.
  const s = projector.stateDict();
  const h = matrix(noGrad(() => image.matmul(s.get('0.weight')!.t()).add(s.get('0.bias')!)));
  const byHand = (modality: string): number[] => {
    const mean = s.get(`1.statistics.${modality}.running_mean`)!.toFlatArray();
    const variance = s.get(`1.statistics.${modality}.running_var`)!.toFlatArray();
    const w = s.get('1.weight')!.toFlatArray();
    const b = s.get('1.bias')!.toFlatArray();
    const w3 = matrix(s.get('3.weight')!);
    const b3 = s.get('3.bias')!.toFlatArray();
    return h.flatMap((row) => {
      const hidden = row.map((v, j) => Math.max(0, ((v - mean[j]!) / Math.sqrt(variance[j]! + 1e-5)) * w[j]! + b[j]!));
      return w3.map((wr, k) => wr.reduce((acc, wv, j) => acc + wv * hidden[j]!, b3[k]!));
    });
  };
  assertClose(evalImage.toFlatArray(), byHand('image'), 1e-4);
  const withText = byHand('text');
  assert.ok(
    evalImage.toFlatArray().some((v, i) => Math.abs(v - withText[i]!) > 1e-2),
    'text statistics would give other projections',
  );
});

test('the shared scale and shift apply to each modality and take gradients from both', () => {
  manualSeed(4);
  const bn = new ModalityBatchNorm1d(['image', 'text'], 3);
  const { weight, bias } = Object.fromEntries(bn.namedParameters()) as Record<string, Tensor>;
  assert.deepEqual(Object.keys(Object.fromEntries(bn.namedParameters())), ['weight', 'bias']);
  noGrad(() => {
    weight!.copy_(randn([3]));
    bias!.copy_(randn([3]));
  });
  const image = randn([5, 3]).mul(3).add(2);
  const text = randn([4, 3]);
  const c = randn([5, 3]);
  const d = randn([4, 3]);
  bn.forwardModality('image', image).mul(c).sum().add(bn.forwardModality('text', text).mul(d).sum()).backward();
  // By hand (training: each modality by its own batch, biased variance): y = x̂·w + b, so
  // ∂/∂w_j = Σ_i c_ij x̂_ij over both modalities' rows and ∂/∂b_j = Σ_i c_ij.
  const normalised = (x: Tensor): number[][] => {
    const rows = matrix(x);
    const { mean, biased } = columnStats(rows);
    return rows.map((r) => r.map((v, j) => (v - mean[j]!) / Math.sqrt(biased[j]! + 1e-5)));
  };
  const xs = [...normalised(image), ...normalised(text)];
  const cs = [...matrix(c), ...matrix(d)];
  const columns = [0, 1, 2];
  const w = weight!.toFlatArray();
  const b = bias!.toFlatArray();
  assertClose(
    noGrad(() => bn.forwardModality('text', text)).toFlatArray(),
    normalised(text).flatMap((r) => r.map((v, j) => v * w[j]! + b[j]!)),
    1e-4,
  );
  assertClose(
    weight!.grad!.toFlatArray(),
    columns.map((j) => xs.reduce((acc, r, i) => acc + cs[i]![j]! * r[j]!, 0)),
    1e-4,
  );
  assertClose(
    bias!.grad!.toFlatArray(),
    columns.map((j) => cs.reduce((acc, r) => acc + r[j]!, 0)),
    1e-4,
  );
});

test('a checkpoint with one set of shared statistics loads with that set for every modality', () => {
  manualSeed(3);
  const model = new AlignModel([identity('image'), identity('text')], { ...heads, sharedHeads: true });
  const legacy = new Map<string, Tensor>();
  for (const [k, t] of model.stateDict()) {
    const m = /^(.*\.shared\.1\.)statistics\.image\.(.*)$/.exec(k);
    if (m) legacy.set(`${m[1]}${m[2]}`, m[2] === 'num_batches_tracked' ? t.clone().add(7) : randn(t.shape).abs());
    else if (!k.includes('.statistics.text.')) legacy.set(k, t);
  }
  assert.ok(legacy.has('online.projectors.shared.1.running_mean'));
  model.loadStateDict(legacy);
  const state = model.stateDict();
  for (const branch of ['online.projectors', 'online.predictors', 'target.projectors']) {
    for (const stat of ['running_mean', 'running_var', 'num_batches_tracked']) {
      const old = legacy.get(`${branch}.shared.1.${stat}`)!.toFlatArray();
      assert.deepEqual(state.get(`${branch}.shared.1.statistics.image.${stat}`)!.toFlatArray(), old);
      assert.deepEqual(state.get(`${branch}.shared.1.statistics.text.${stat}`)!.toFlatArray(), old);
    }
  }
});

test('a run without validation retrieves in its projections, one written with mixed statistics in its encoder space', () => {
  const config = resolveConfig({ preset: 'cpu-small' });
  const modalities = [{ featureDim: 128 }, { featureDim: 128 }] as unknown as Modality[];
  assert.equal(defaultRetrievalSpace(config, modalities), 'projection');
  assert.equal(defaultRetrievalSpace(config, modalities, true), 'encoder');
  // Separate heads of different widths: the encoder space cannot compare them, so projections.
  const separate = resolveConfig({ preset: 'cpu-small', overrides: ['model.sharedHeads=false'] });
  assert.equal(defaultRetrievalSpace(separate, [{ featureDim: 128 }, { featureDim: 64 }] as unknown as Modality[], true), 'projection');
});
