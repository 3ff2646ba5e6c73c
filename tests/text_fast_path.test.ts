// The text tower's inference fast path (issue 14): in eval without autograd its layers run as
// PyTorch's fused encoder-layer kernel (encodeFused, src/nn/transformer.ts). It
// must give the training path's embeddings (padded batches, both poolings, padding inside a row)
// and nn.TransformerEncoder's eval output (tests/fixtures/transformer_encoder_eval.py, run here),
// and never run where autograd records, in training mode or under autocast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocast, manualSeed, noGrad, randn, setNumThreads, tensor, type Tensor } from '../src/index.js';
import { TransformerEncoderLayer, encodeFused } from '../src/nn/index.js';
import { TextTransformer, type TextPooling } from '../src/modalities/text/index.js';
import { pythonWithTorch } from './python_torch.js';
import { assertClose, idBatch } from './helpers.js';

setNumThreads(1);

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const SCRIPT = join(ROOT, 'tests', 'fixtures', 'transformer_encoder_eval.py');

/** A bool tensor [rows, columns] of these values. */
function boolMask(rows: boolean[][]): Tensor {
  return tensor(Uint8Array.from(rows.flat(), Number), { shape: [rows.length, rows[0]!.length], dtype: 'bool' });
}

function encoder(pooling: TextPooling, seed: number): TextTransformer {
  manualSeed(seed);
  return new TextTransformer({ vocabSize: 50, maxLength: 16, dModel: 32, layers: 3, heads: 4, dimFeedforward: 48, pooling }).eval();
}

/** The training path's embeddings (the layers' own forward) and the fast path's, both in eval without autograd. */
function bothPaths(model: TextTransformer, ids: Tensor): { training: Tensor; fused: Tensor } {
  model.fusedInference = false;
  const training = noGrad(() => model.forward(ids));
  model.fusedInference = true;
  const fused = noGrad(() => model.forward(ids));
  return { training, fused };
}

for (const pooling of ['mean', 'cls'] as const) {
  test(`fast path (${pooling} pooling): the training path's embeddings on padded batches`, () => {
    for (const [seed, lengths, width] of [
      [1, [16, 3, 9, 1, 12], 16],
      [2, [5, 5, 2], 7], // padded past every row's end
      [3, [8, 8], 8], // no padding
      [4, [3], 4],
    ] as const) {
      const model = encoder(pooling, seed);
      const { training, fused } = bothPaths(model, idBatch([...lengths], width));
      assert.equal(fused.shape.join(), `${lengths.length},32`);
      assertClose(fused, training, 1e-5, 0);
      // The two paths round differently: outputs equal to the last bit would mean the fast path did not run.
      assert.ok((fused.sub(training).abs().max().item() as number) > 0, 'the fast path did not run');
    }
  });
}

test('fast path: padding inside a row is masked, as the training path does', () => {
  const model = encoder('mean', 5);
  const ids = tensor(
    [
      [4, 9, 0, 7, 3, 0],
      [2, 5, 6, 0, 0, 0],
    ],
    { dtype: 'int64' },
  );
  const { training, fused } = bothPaths(model, ids);
  assertClose(fused, training, 1e-5, 0);
});

test('fast path: only in eval without autograd or autocast', () => {
  const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true, normFirst: true, activation: 'gelu' });
  const x = randn([2, 3, 8]);
  assert.equal(layer.fusedBlocker(x), 'training mode');
  layer.eval();
  assert.equal(layer.fusedBlocker(x), 'autograd is on');
  assert.equal(
    noGrad(() => layer.fusedBlocker(x)),
    null,
  );
  assert.equal(
    noGrad(() => autocast('bfloat16', 'cpu', () => layer.fusedBlocker(x))),
    'autocast is on',
  );
  assert.equal(
    noGrad(() => layer.fusedBlocker(x.double())),
    null,
  );
  assert.equal(
    noGrad(() => layer.fusedBlocker(x.to('bfloat16'))),
    'input of bfloat16',
  );
  const seqFirst = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }).eval();
  assert.equal(
    noGrad(() => seqFirst.fusedBlocker(x)),
    'not batchFirst',
  );
  const custom = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true, activation: (t) => t.tanh() }).eval();
  assert.equal(
    noGrad(() => custom.fusedBlocker(x)),
    'a custom activation',
  );
  const odd = new TransformerEncoderLayer(9, 3, { dimFeedforward: 16, batchFirst: true }).eval();
  assert.equal(
    noGrad(() => odd.fusedBlocker(randn([2, 3, 9]))),
    'an odd number of heads',
  );
  assert.equal(
    encodeFused(
      [layer],
      x,
      boolMask([
        [false, false, true],
        [false, false, false],
      ]),
    ),
    null,
  );

  // In eval with autograd on, the tower records its graph: the kernel has no backward.
  const model = encoder('mean', 6);
  const ids = idBatch([5, 2], 6);
  const out = model.forward(ids);
  assert.equal(out.requiresGrad, true);
  out.sum().backward();
  assert.ok(model.tokenEmbedding.weight.grad !== null);
  assertClose(out.detach(), bothPaths(model, ids).fused, 1e-5, 0);
});

/** nn.TransformerEncoder (batch-first, eval, no grad) of these layers on src with this padding, from PyTorch. */
function pytorchEncoder(layers: TransformerEncoderLayer[], spec: Record<string, unknown>, src: Tensor, padding: boolean[][]): Tensor {
  const state: Record<string, { shape: number[]; data: number[] }> = {};
  layers.forEach((layer, i) => {
    for (const [name, t] of layer.stateDict()) state[`layers.${i}.${name}`] = { shape: t.shape, data: t.toFlatArray() };
  });
  const input = JSON.stringify({ layer: spec, layers: layers.length, state, src: { shape: src.shape, data: src.toFlatArray() }, padding });
  const run = spawnSync(pythonWithTorch(), [SCRIPT], { input, encoding: 'utf8' });
  assert.equal(run.error, undefined, `could not start ${pythonWithTorch()}: ${String(run.error)}`);
  assert.equal(run.status, 0, `${SCRIPT} failed:\n${run.stderr}`);
  const { output } = JSON.parse(run.stdout) as { output: { shape: number[]; data: number[] } };
  return tensor(output.data, { shape: output.shape });
}

for (const normFirst of [true, false]) {
  test(`encodeFused equals PyTorch's nn.TransformerEncoder in eval (${normFirst ? 'pre-LN, gelu' : 'post-LN, relu'}) at every token`, () => {
    manualSeed(normFirst ? 11 : 12);
    const activation = normFirst ? 'gelu' : 'relu';
    const layers = [0, 1].map(() =>
      new TransformerEncoderLayer(16, 4, { dimFeedforward: 24, batchFirst: true, normFirst, activation }).eval(),
    );
    // Nonzero LayerNorm shifts and scales, so that each parameter matters.
    noGrad(() => {
      for (const norm of layers.flatMap((layer) => [layer.norm1, layer.norm2])) {
        norm.bias!.copy_(randn([16]).mul(0.3));
        norm.weight!.add_(randn([16]).mul(0.3));
      }
    });
    const lengths = [6, 2, 4, 1, 5];
    const padding = lengths.map((n) => Array.from({ length: 6 }, (_, j) => j >= n));
    const src = randn([5, 6, 16]);
    const mask = boolMask(padding);
    const ours = noGrad(() => encodeFused(layers, src, mask));
    assert.ok(ours !== null, 'the fast path refused');
    const theirs = pytorchEncoder(
      layers,
      { d_model: 16, nhead: 4, dim_feedforward: 24, activation, norm_first: normFirst, layer_norm_eps: 1e-5 },
      src,
      padding,
    );
    const training = noGrad(() => layers.reduce((x, layer) => layer.forward(x, { srcKeyPaddingMask: mask }), src));
    // Padding positions hold values of no meaning on every side: compare the tokens.
    const real = mask.logicalNot().unsqueeze(2).to('float32');
    assertClose(ours.mul(real), theirs.mul(real), 1e-5, 0);
    assertClose(ours.mul(real), training.mul(real), 1e-5, 0);
  });
}

test('the fast path writes nothing to stderr (no nested tensors: libtorch 1.13 warns at the first one)', () => {
  const encoderModule = new URL('../src/modalities/text/encoder.js', import.meta.url).href;
  const engine = new URL('../src/engine/index.js', import.meta.url).href;
  const code = `
    const { TextTransformer } = await import(${JSON.stringify(encoderModule)});
    const { noGrad, tensor } = await import(${JSON.stringify(engine)});
    const model = new TextTransformer({ vocabSize: 20, maxLength: 8, dModel: 8, layers: 1, heads: 2 }).eval();
    const out = noGrad(() => model.forward(tensor([[3, 4, 0], [5, 0, 0]], { dtype: 'int64' })));
    process.stdout.write(String(out.shape));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, '2,8');
  assert.equal(run.stderr, '');
});
