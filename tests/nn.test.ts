// nn modules against PyTorch: reference runs recorded by scripts/fixtures/nn_fixtures.py (run with
// Debian's /usr/bin/python3, torch 1.13) give each module's state dict keys, its initialisation from
// a seed, and its outputs and gradients in float64. The rest checks behaviour from first principles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Generator, manualSeed, ones, randn, tensor, tidy, zeros, type Tensor } from '../src/index.js';
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Embedding,
  Flatten,
  GELU,
  GroupNorm,
  Identity,
  LayerNorm,
  Linear,
  MultiheadAttention,
  ReLU,
  Sequential,
  SiLU,
  Sigmoid,
  Tanh,
  TransformerEncoderLayer,
  init,
  type AttentionWithWeights,
  type Module,
  type StateDict,
  type TensorModule,
} from '../src/nn/index.js';
import { assertClose } from './helpers.js';

// ---- fixtures ----

/** A tensor as the fixture script writes it; 'float32' data are float32 values in shortest decimal form. */
interface EncodedTensor {
  shape: number[];
  dtype: 'float32' | 'float64' | 'int64' | 'bool';
  data: number[];
}

interface ModuleFixture {
  description: string;
  seed: number;
  training: boolean;
  state_keys: string[];
  init_state: Record<string, EncodedTensor>;
  state?: Record<string, EncodedTensor>;
  inputs: Record<string, EncodedTensor>;
  output: EncodedTensor;
  w: EncodedTensor;
  grads: Record<string, EncodedTensor>;
  attn_weights?: EncodedTensor;
  state_after?: Record<string, EncodedTensor>;
}

const readFixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../tests/fixtures/nn/${name}.json`, import.meta.url), 'utf8'));

/** The fixture's tensor; floating values become `floatDtype` (float32-encoded values are exact float32 numbers). */
function decode(e: EncodedTensor, floatDtype: 'float32' | 'float64' = 'float64'): Tensor {
  switch (e.dtype) {
    case 'int64':
      return tensor(
        BigInt64Array.from(e.data, (v) => BigInt(v)),
        { shape: e.shape },
      );
    case 'bool':
      return tensor(Uint8Array.from(e.data), { shape: e.shape, dtype: 'bool' });
    case 'float32':
      return tensor(Float64Array.from(e.data, Math.fround), { shape: e.shape, dtype: floatDtype });
    case 'float64':
      return tensor(Float64Array.from(e.data), { shape: e.shape, dtype: floatDtype });
  }
}

function decodeState(encoded: Record<string, EncodedTensor>): StateDict {
  return new Map(Object.entries(encoded).map(([k, v]) => [k, decode(v)]));
}

/** Float64 agreement: the same arithmetic as PyTorch up to rounding order. */
function assertMatches(actual: Tensor, expected: EncodedTensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  try {
    assertClose(actual, expected.data, 1e-10, 1e-10);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

type Inputs = Record<string, Tensor>;
type Result = Tensor | AttentionWithWeights;

/**
 * Three tests per reference run: the state dict keys are PyTorch's, the seeded initialisation is
 * PyTorch's, and forward/backward in float64 give PyTorch's outputs, gradients and buffers.
 */
function matchesPyTorch(name: string, build: () => Module, run: (module: Module, inputs: Inputs) => Result): void {
  const fixture = readFixture(name) as ModuleFixture;

  test(`${name}: state dict keys are PyTorch's, in order`, () => {
    assert.deepEqual([...build().stateDict().keys()], fixture.state_keys);
  });

  test(`${name}: manualSeed(${fixture.seed}) gives PyTorch's initial parameters`, () => {
    manualSeed(fixture.seed);
    const state = build().stateDict();
    for (const [key, expected] of Object.entries(fixture.init_state)) {
      const actual = state.get(key)!;
      assert.equal(actual.dtype, expected.dtype, `${key}: dtype`);
      assert.deepEqual(actual.shape, expected.shape, `${key}: shape`);
      assert.deepEqual(actual.toFlatArray(), expected.data.map(expected.dtype === 'float32' ? Math.fround : Number), `${key}: values`);
    }
  });

  test(`${name}: ${fixture.description} matches PyTorch's output and gradients`, () => {
    tidy(() => {
      const module = build().to('float64');
      module.loadStateDict(decodeState(fixture.state ?? fixture.init_state));
      module.train(fixture.training);
      const inputs: Inputs = {};
      for (const [key, encoded] of Object.entries(fixture.inputs)) {
        const x = decode(encoded);
        inputs[key] = encoded.dtype === 'float32' ? x.requiresGrad_(true) : x;
      }

      const result = run(module, inputs);
      const output = 'output' in result ? result.output : result;
      assertMatches(output, fixture.output, 'output');
      if (fixture.attn_weights) {
        assert.ok('weights' in result, 'attention weights were not returned');
        assertMatches(result.weights, fixture.attn_weights, 'attention weights');
      }

      output.mul(decode(fixture.w)).sum().backward();
      const parameters = new Map(module.namedParameters());
      for (const [key, expected] of Object.entries(fixture.grads)) {
        const source = inputs[key] ?? parameters.get(key);
        assert.ok(source, `the fixture has a gradient for '${key}', which is neither an input nor a parameter`);
        assert.ok(source.grad, `no gradient reached '${key}'`);
        assertMatches(source.grad, expected, `gradient of ${key}`);
      }
      const state = module.stateDict();
      for (const [key, expected] of Object.entries(fixture.state_after ?? {}))
        assertMatches(state.get(key)!, expected, `${key} after the step`);
    });
  });
}

// ---- against PyTorch ----

matchesPyTorch(
  'linear',
  () => new Linear(5, 3),
  (m, x) => (m as Linear).forward(x.input!),
);
matchesPyTorch(
  'linear_no_bias',
  () => new Linear(5, 3, { bias: false }),
  (m, x) => (m as Linear).forward(x.input!),
);
matchesPyTorch(
  'conv2d',
  () => new Conv2d(4, 4, 3, { stride: 2, padding: 1, groups: 2 }),
  (m, x) => (m as Conv2d).forward(x.input!),
);
matchesPyTorch(
  'conv2d_dilated',
  () => new Conv2d(2, 3, [3, 2], { stride: [1, 2], padding: [2, 1], dilation: [2, 1], bias: false }),
  (m, x) => (m as Conv2d).forward(x.input!),
);
matchesPyTorch(
  'batch_norm1d_train',
  () => new BatchNorm1d(3),
  (m, x) => (m as BatchNorm1d).forward(x.input!),
);
matchesPyTorch(
  'batch_norm1d_cumulative',
  () => new BatchNorm1d(3, { momentum: null }),
  (m, x) => (m as BatchNorm1d).forward(x.input!),
);
matchesPyTorch(
  'batch_norm2d_train',
  () => new BatchNorm2d(3, { eps: 1e-3, momentum: 0.3 }),
  (m, x) => (m as BatchNorm2d).forward(x.input!),
);
matchesPyTorch(
  'batch_norm2d_eval',
  () => new BatchNorm2d(3),
  (m, x) => (m as BatchNorm2d).forward(x.input!),
);
matchesPyTorch(
  'layer_norm',
  () => new LayerNorm([3, 4]),
  (m, x) => (m as LayerNorm).forward(x.input!),
);
matchesPyTorch(
  'layer_norm_no_affine',
  () => new LayerNorm(4, { eps: 1e-3, elementwiseAffine: false }),
  (m, x) => (m as LayerNorm).forward(x.input!),
);
matchesPyTorch(
  'group_norm',
  () => new GroupNorm(2, 4),
  (m, x) => (m as GroupNorm).forward(x.input!),
);
matchesPyTorch(
  'embedding',
  () => new Embedding(6, 3, { paddingIdx: 1 }),
  (m, x) => (m as Embedding).forward(x.input!),
);
matchesPyTorch(
  'embedding_negative_padding',
  () => new Embedding(5, 2, { paddingIdx: -2 }),
  (m, x) => (m as Embedding).forward(x.input!),
);
matchesPyTorch(
  'sequential_mlp',
  () => new Sequential(new Linear(4, 6), new BatchNorm1d(6), new ReLU(), new Linear(6, 3)),
  (m, x) => (m as Sequential).forward(x.input!),
);
matchesPyTorch(
  'mha_key_padding',
  () => new MultiheadAttention(4, 2),
  (m, x) => (m as MultiheadAttention).forward(x.query!, x.key!, x.value!, { keyPaddingMask: x.key_padding_mask!, needWeights: true }),
);
matchesPyTorch(
  'mha_self_causal',
  () => new MultiheadAttention(4, 2, { bias: false, batchFirst: true }),
  (m, x) =>
    (m as MultiheadAttention).forward(x.input!, x.input!, x.input!, {
      attnMask: x.attn_mask!,
      keyPaddingMask: x.key_padding_mask!,
      needWeights: true,
      averageAttnWeights: false,
    }),
);
matchesPyTorch(
  'mha_unbatched_float_mask',
  () => new MultiheadAttention(4, 1),
  (m, x) => (m as MultiheadAttention).forward(x.input!, x.input!, x.input!, { attnMask: x.attn_mask! }),
);
matchesPyTorch(
  'transformer_post_ln',
  () => new TransformerEncoderLayer(4, 2, { dimFeedforward: 8 }),
  (m, x) => (m as TransformerEncoderLayer).forward(x.input!, { srcKeyPaddingMask: x.src_key_padding_mask! }),
);
matchesPyTorch(
  'transformer_pre_ln',
  () => new TransformerEncoderLayer(4, 2, { dimFeedforward: 8, activation: 'gelu', layerNormEps: 1e-6, batchFirst: true, normFirst: true }),
  (m, x) => (m as TransformerEncoderLayer).forward(x.input!),
);

test('activation modules match PyTorch and their gradients', () => {
  const fixture = readFixture('activations') as {
    input: EncodedTensor;
    results: Record<string, { output: EncodedTensor; grad: EncodedTensor }>;
  };
  const modules: Record<string, TensorModule> = {
    relu: new ReLU(),
    gelu: new GELU(),
    gelu_tanh: new GELU({ approximate: 'tanh' }),
    silu: new SiLU(),
    tanh: new Tanh(),
    sigmoid: new Sigmoid(),
  };
  assert.deepEqual(Object.keys(modules).sort(), Object.keys(fixture.results).sort());
  for (const [name, module] of Object.entries(modules)) {
    tidy(() => {
      const x = decode(fixture.input).requiresGrad_(true);
      const y = module.forward(x);
      assertMatches(y, fixture.results[name]!.output, `${name} output`);
      y.sum().backward();
      assertMatches(x.grad!, fixture.results[name]!.grad, `${name} gradient`);
    });
  }
});

// ---- initialisation ----

test('init functions reproduce torch.nn.init draw for draw after the same seed', () => {
  const fixture = readFixture('init') as {
    runs: { fn: string; seed: number; args: Record<string, number | string>; result: EncodedTensor }[];
  };
  const apply: Record<string, (t: Tensor, a: Record<string, number | string>) => Tensor> = {
    uniform_: (t, a) => init.uniform_(t, a.a as number, a.b as number),
    normal_: (t, a) => init.normal_(t, a.mean as number, a.std as number),
    xavier_uniform_: (t, a) => init.xavierUniform_(t, { gain: a.gain as number }),
    xavier_normal_: (t) => init.xavierNormal_(t),
    kaiming_uniform_: (t, a) =>
      init.kaimingUniform_(t, { a: a.a as number, mode: a.mode as init.FanMode, nonlinearity: a.nonlinearity as init.Nonlinearity }),
    kaiming_normal_: (t, a) =>
      init.kaimingNormal_(t, { a: a.a as number, mode: a.mode as init.FanMode, nonlinearity: a.nonlinearity as init.Nonlinearity }),
    trunc_normal_: (t, a) => init.truncNormal_(t, { mean: a.mean as number, std: a.std as number, a: a.a as number, b: a.b as number }),
  };
  assert.equal(fixture.runs.length, Object.keys(apply).length);
  for (const run of fixture.runs) {
    manualSeed(run.seed);
    const t = apply[run.fn]!(zeros(run.result.shape), run.args);
    assert.deepEqual(t.toFlatArray(), run.result.data.map(Math.fround), run.fn);
  }
});

test('calculateGain gives PyTorch gains', () => {
  const { gains } = readFixture('init') as { gains: Record<string, number> };
  assert.equal(init.calculateGain('linear'), gains.linear);
  assert.equal(init.calculateGain('conv2d'), gains.conv2d);
  assert.equal(init.calculateGain('sigmoid'), gains.sigmoid);
  assert.equal(init.calculateGain('tanh'), gains.tanh);
  assert.equal(init.calculateGain('relu'), gains.relu);
  assert.equal(init.calculateGain('leaky_relu'), gains.leaky_relu);
  assert.equal(init.calculateGain('selu'), gains.selu);
  assert.equal(init.calculateGain('leaky_relu', 0.2), gains['leaky_relu(0.2)']);
});

test('fanInAndFanOut counts the receptive field and rejects vectors', () => {
  assert.deepEqual(init.fanInAndFanOut(zeros([16, 3, 5, 5])), { fanIn: 75, fanOut: 400 });
  assert.deepEqual(init.fanInAndFanOut(zeros([10, 4])), { fanIn: 4, fanOut: 10 });
  assert.throws(() => init.fanInAndFanOut(zeros([5])), /at least 2 dims.*\[5\]/);
});

/** max |x| and the population standard deviation. */
function spread(t: Tensor): { maxAbs: number; std: number; mean: number } {
  return tidy(() => ({ maxAbs: t.abs().max().item(), std: t.std(undefined, { correction: 0 }).item(), mean: t.mean().item() }));
}

test('Linear starts U(−1/√in, 1/√in) for weight and bias', () => {
  const layer = new Linear(512, 256);
  const bound = 1 / Math.sqrt(512);
  const w = spread(layer.weight);
  assert.ok(w.maxAbs <= bound, `max |w| ${w.maxAbs} exceeds ${bound}`);
  assert.ok(w.maxAbs > 0.99 * bound, `max |w| ${w.maxAbs} is far inside ${bound}: wrong bound`);
  // A uniform on (−b, b) has standard deviation b/√3; 131072 draws pin it within 1%.
  assert.ok(Math.abs(w.std / (bound / Math.sqrt(3)) - 1) < 0.01, `std ${w.std}, expected ${bound / Math.sqrt(3)}`);
  const b = spread(layer.bias!);
  assert.ok(b.maxAbs <= bound && b.maxAbs > 0.9 * bound, `bias max |b| ${b.maxAbs}, bound ${bound}`);
});

test('Conv2d bounds its init by 1/√(in/groups · kh · kw)', () => {
  const conv = new Conv2d(16, 64, 3, { groups: 4 });
  assert.deepEqual(conv.weight.shape, [64, 4, 3, 3]);
  const bound = 1 / Math.sqrt(4 * 3 * 3);
  const w = spread(conv.weight);
  assert.ok(w.maxAbs <= bound && w.maxAbs > 0.99 * bound, `max |w| ${w.maxAbs}, bound ${bound}`);
  assert.ok(Math.abs(w.std / (bound / Math.sqrt(3)) - 1) < 0.05, `std ${w.std}, expected ${bound / Math.sqrt(3)}`);
});

test('MultiheadAttention starts with Xavier in_proj_weight and zero biases', () => {
  const attention = new MultiheadAttention(64, 4);
  const bound = Math.sqrt(6 / (64 + 192));
  const w = spread(attention.inProjWeight);
  assert.ok(w.maxAbs <= bound && w.maxAbs > 0.99 * bound, `max |w| ${w.maxAbs}, bound ${bound}`);
  assert.ok(Math.abs(w.std / (bound / Math.sqrt(3)) - 1) < 0.02, `std ${w.std}, expected ${bound / Math.sqrt(3)}`);
  assert.equal(spread(attention.inProjBias!).maxAbs, 0);
  assert.equal(spread(attention.outProj.bias!).maxAbs, 0);
  assert.ok(spread(attention.outProj.weight).maxAbs <= 1 / 8, 'out_proj.weight keeps Linear init, bound 1/√64');
});

test('Embedding rows start N(0, 1) and the padding row at zero', () => {
  const table = new Embedding(1000, 64, { paddingIdx: 3 });
  const s = spread(table.weight);
  assert.ok(Math.abs(s.mean) < 0.02, `mean ${s.mean}`);
  assert.ok(Math.abs(s.std - 1) < 0.02, `std ${s.std}`);
  assert.deepEqual(table.weight.select(0, 3).toFlatArray(), new Array(64).fill(0));
});

test('norm layers start at weight 1, bias 0, running mean 0 and variance 1', () => {
  const bn = new BatchNorm2d(3);
  assert.deepEqual(bn.weight!.toFlatArray(), [1, 1, 1]);
  assert.deepEqual(bn.bias!.toFlatArray(), [0, 0, 0]);
  assert.deepEqual(bn.runningMean!.toFlatArray(), [0, 0, 0]);
  assert.deepEqual(bn.runningVar!.toFlatArray(), [1, 1, 1]);
  assert.equal(bn.numBatchesTracked!.dtype, 'int64');
  assert.deepEqual(new LayerNorm([2, 2]).weight!.toArray(), [
    [1, 1],
    [1, 1],
  ]);
  assert.deepEqual(new GroupNorm(1, 2).bias!.toFlatArray(), [0, 0]);
});

test('a generator makes initialisation reproducible without touching the global stream', () => {
  const a = new Linear(8, 4, { generator: new Generator(7) });
  const b = new Linear(8, 4, { generator: new Generator(7) });
  const c = new Linear(8, 4, { generator: new Generator(8) });
  assert.deepEqual(a.weight.toFlatArray(), b.weight.toFlatArray());
  assert.deepEqual(a.bias!.toFlatArray(), b.bias!.toFlatArray());
  assert.notDeepEqual(a.weight.toFlatArray(), c.weight.toFlatArray());
  manualSeed(3);
  const expected = randn([4]).toFlatArray();
  manualSeed(3);
  new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, generator: new Generator(1) });
  assert.deepEqual(randn([4]).toFlatArray(), expected);
});

// ---- modes ----

test('Dropout zeroes about p of the elements and rescales the rest in training, and is the identity in eval', () => {
  const drop = new Dropout(0.25);
  const x = ones([20000]);
  const y = drop.forward(x).toFlatArray();
  const zeroed = y.filter((v) => v === 0).length / y.length;
  assert.ok(Math.abs(zeroed - 0.25) < 0.02, `zeroed fraction ${zeroed}`);
  assert.ok(
    y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6),
    'survivors are scaled by 1/(1 − p)',
  );
  drop.eval();
  assert.deepEqual(drop.forward(x).toFlatArray(), x.toFlatArray());
  assert.throws(() => new Dropout(1.5), /p must be a probability in \[0, 1\], got 1.5/);
});

test('BatchNorm normalises with batch statistics and updates running ones in training', () => {
  const bn = new BatchNorm1d(2, { momentum: 0.5 });
  const x = tensor([
    [1, 10],
    [3, 20],
    [5, 60],
  ]);
  const y = bn.forward(x);
  // Column 0: mean 3, biased variance 8/3.
  assertClose(
    y.select(1, 0),
    [-2, 0, 2].map((d) => d / Math.sqrt(8 / 3 + 1e-5)),
    1e-5,
  );
  // Running statistics move halfway to the batch's, with the unbiased variance (4 and 700).
  assertClose(bn.runningMean!, [1.5, 15], 1e-5);
  assertClose(bn.runningVar!, [0.5 + 0.5 * 4, 0.5 + 0.5 * 700], 1e-4);
  assert.equal(bn.numBatchesTracked!.item(), 1);
});

test('BatchNorm in eval normalises with the running statistics and leaves them alone', () => {
  const bn = new BatchNorm1d(2);
  bn.loadStateDict(
    new Map([
      ['weight', tensor([2, 1])],
      ['bias', tensor([0, 1])],
      ['running_mean', tensor([1, -1])],
      ['running_var', tensor([4, 1])],
      ['num_batches_tracked', tensor(new BigInt64Array([5n]), { shape: [] })],
    ]),
  );
  bn.eval();
  const y = bn.forward(tensor([[3, 0]]));
  assertClose(y, [(2 * (3 - 1)) / Math.sqrt(4 + 1e-5), (0 + 1) / Math.sqrt(1 + 1e-5) + 1], 1e-6);
  assert.deepEqual(bn.runningMean!.toFlatArray(), [1, -1]);
  assert.deepEqual(bn.runningVar!.toFlatArray(), [4, 1]);
  assert.equal(bn.numBatchesTracked!.item(), 5);
});

test('BatchNorm without running statistics uses batch statistics in eval and has no buffers', () => {
  const bn = new BatchNorm1d(1, { trackRunningStats: false, affine: false }).eval();
  assert.deepEqual([...bn.stateDict().keys()], []);
  assertClose(bn.forward(tensor([[1], [3]])), [-1, 1], 1e-4);
});

test('BatchNorm refuses a single value per channel in training and wrong ranks', () => {
  assert.throws(() => new BatchNorm1d(3).forward(zeros([1, 3])), /more than 1 value per channel.*\[1, 3\]/);
  assert.throws(() => new BatchNorm2d(3).forward(zeros([2, 3])), /BatchNorm2d: expected \[N, C, H, W\] input, got shape \[2, 3\]/);
  assert.throws(() => new BatchNorm1d(3).forward(zeros([4, 2])), /dim 1 must be 3/);
});

test('train() and eval() reach every child', () => {
  const bn = new BatchNorm1d(4);
  const drop = new Dropout(0.5);
  const net = new Sequential(new Linear(4, 4), bn, drop);
  net.eval();
  assert.equal(bn.training, false);
  assert.equal(drop.training, false);
  net.train();
  assert.equal(bn.training, true);
  assert.equal(drop.training, true);
});

test('a TransformerEncoderLayer is deterministic in eval and stochastic in training', () => {
  manualSeed(0);
  const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0.5 });
  const x = randn([5, 2, 8]);
  const train1 = layer.forward(x).toFlatArray();
  const train2 = layer.forward(x).toFlatArray();
  assert.notDeepEqual(train1, train2);
  layer.eval();
  assert.deepEqual(layer.forward(x).toFlatArray(), layer.forward(x).toFlatArray());
});

// ---- state dicts and conversion ----

test('loadStateDict names a missing key, an unexpected key and a wrong shape', () => {
  const layer = new Linear(5, 3);
  assert.throws(() => layer.loadStateDict(new Map([['weight', zeros([3, 5])]])), /missing keys: bias/);
  assert.throws(
    () =>
      layer.loadStateDict(
        new Map([
          ['weight', zeros([3, 5])],
          ['bias', zeros([3])],
          ['scale', zeros([3])],
        ]),
      ),
    /unexpected keys: scale/,
  );
  assert.throws(
    () =>
      layer.loadStateDict(
        new Map([
          ['weight', zeros([3, 4])],
          ['bias', zeros([3])],
        ]),
      ),
    /'weight' has shape \[3, 4\], the module expects \[3, 5\]/,
  );
});

test('loadStateDict copies values into the live parameters', () => {
  const layer = new Linear(2, 1);
  const weightBefore = layer.weight;
  layer.loadStateDict(
    new Map([
      ['weight', tensor([[2, -1]])],
      ['bias', tensor([0.5])],
    ]),
  );
  assert.deepEqual(weightBefore.toFlatArray(), [2, -1]);
  assert.deepEqual(layer.forward(tensor([[1, 1]])).toFlatArray(), [1.5]);
});

test("to('float64') converts floating parameters and buffers, keeps integer buffers, and getters see the new tensors", () => {
  const bn = new BatchNorm1d(3).to('float64');
  assert.equal(bn.weight!.dtype, 'float64');
  assert.equal(bn.runningVar!.dtype, 'float64');
  assert.equal(bn.numBatchesTracked!.dtype, 'int64');
  const layer = new Linear(3, 2).to('float64');
  assert.equal(layer.weight.dtype, 'float64');
  assert.equal(layer.weight.requiresGrad, true);
  assert.equal(layer.forward(zeros([1, 3], { dtype: 'float64' })).dtype, 'float64');
});

// ---- shapes, containers and argument checks ----

test('Sequential names children 0, 1, ... and chains them', () => {
  const net = new Sequential(new Linear(3, 2), new ReLU(), new Flatten(0));
  assert.deepEqual(
    net.namedChildren().map(([name]) => name),
    ['0', '1', '2'],
  );
  assert.equal(net.length, 3);
  assert.ok(net.at(-1) instanceof Flatten);
  assert.throws(() => net.at(3), /no module at index 3; it has 3/);
  const layer = net.at(0) as Linear;
  setLinear(
    layer,
    [
      [1, 0, 0],
      [0, -1, 0],
    ],
    [0, 0],
  );
  assert.deepEqual(net.forward(tensor([[2, 3, 4]])).toFlatArray(), [2, 0]);
});

test('Sequential frees each intermediate once the next module has it, never its input, output or a kept tensor', () => {
  const seen: Tensor[] = [];
  // Records what it returns; the third returns a tensor it keeps, which no one may dispose.
  const spy = (fn: (x: Tensor) => Tensor): TensorModule =>
    Object.assign(new Identity(), {
      forward: (x: Tensor): Tensor => {
        const y = fn(x);
        seen.push(y);
        return y;
      },
    });
  const constant = tensor([5, 5]).keep();
  const input = tensor([1, 2]);
  const net = new Sequential(
    spy((x) => x.add(1)),
    new Identity(),
    spy((x) => x.mul(2)),
    spy(() => constant),
    spy((x) => x.add(1)),
  );
  const out = tidy(() => net.forward(input));
  assert.deepEqual(out.toFlatArray(), [6, 6]);
  assert.deepEqual(
    seen.map((t) => t.isDisposed),
    [true, true, false, false],
  );
  assert.equal(input.isDisposed, false);
  assert.equal(seen[3], out);
  // With autograd, what backward needs lives on after its handle is freed.
  const w = tensor([3]).requiresGrad_(true);
  const chain = new Sequential(
    spy((x) => x.mul(w)),
    spy((x) => x.square()),
  );
  chain
    .forward(tensor([2]))
    .sum()
    .backward();
  assert.deepEqual(w.grad!.toFlatArray(), [2 * 3 * 2 * 2]); // d(3·2)²/dw = 2·(w·2)·2
});

function setLinear(layer: Linear, weight: number[][], bias: number[]): void {
  layer.loadStateDict(
    new Map([
      ['weight', tensor(weight)],
      ['bias', tensor(bias)],
    ]),
  );
}

test('Flatten keeps the batch dim by default and Identity returns its input', () => {
  assert.deepEqual(new Flatten().forward(zeros([8, 4, 2, 2])).shape, [8, 16]);
  assert.deepEqual(new Flatten(0, 1).forward(zeros([2, 3, 4])).shape, [6, 4]);
  const x = tensor([1, 2]);
  assert.equal(new Identity().forward(x), x);
});

test('MultiheadAttention returns only the output unless weights are asked for, and weights rows sum to 1', () => {
  const attention = new MultiheadAttention(8, 2, { batchFirst: true });
  const x = randn([3, 5, 8]);
  const output = attention.forward(x, x, x);
  assert.deepEqual(output.shape, [3, 5, 8]);
  const { weights } = attention.forward(x, x, x, { needWeights: true });
  assert.deepEqual(weights.shape, [3, 5, 5]);
  assertClose(weights.sum(-1), new Array(15).fill(1), 1e-6);
});

test('modules name the argument and shape when inputs are wrong', () => {
  assert.throws(() => new Linear(5, 3).forward(zeros([2, 4])), /Linear\(5, 3\): input has shape \[2, 4\], its last dim must be 5/);
  assert.throws(() => new Conv2d(3, 8, 3).forward(zeros([1, 4, 8, 8])), /Conv2d\(3, 8\): input has shape \[1, 4, 8, 8\]/);
  assert.throws(() => new Conv2d(3, 8, 3, { groups: 2 }), /divisible by groups \(2\)/);
  assert.throws(() => new LayerNorm(4).forward(zeros([2, 5])), /its last dims must be \[4\]/);
  assert.throws(() => new GroupNorm(3, 4), /numChannels \(4\) must be divisible by numGroups \(3\)/);
  assert.throws(() => new Embedding(4, 2).forward(zeros([3])), /ids must be an int64 or int32 tensor, got float32/);
  assert.throws(() => new Embedding(4, 2, { paddingIdx: 4 }), /paddingIdx must be an integer in \[-4, 4\), got 4/);
  assert.throws(() => new MultiheadAttention(6, 4), /embedDim \(6\) must be divisible by numHeads \(4\)/);
  const attention = new MultiheadAttention(4, 2);
  const q = zeros([3, 2, 4]);
  assert.throws(
    () => attention.forward(q, q, q, { keyPaddingMask: zeros([2, 4], { dtype: 'bool' }) }),
    /keyPaddingMask has shape \[2, 4\], expected \[2, 3\]/,
  );
  assert.throws(
    () => attention.forward(q, q, q, { attnMask: zeros([3, 4]) }),
    /attnMask has shape \[3, 4\], expected \[3, 3\] or \[4, 3, 3\]/,
  );
  assert.throws(() => attention.forward(q, zeros([3, 1, 4]), zeros([3, 1, 4])), /must share the batch size/);
  assert.throws(() => new Linear(0, 3), /inFeatures must be a positive integer, got 0/);
});
