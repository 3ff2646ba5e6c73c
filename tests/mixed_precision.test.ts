// Mixed precision: autocast switches matmuls to bfloat16 inside its scope only and restores the
// previous state even when the scope throws; a tiny image + text aligner trained in bf16 on the CPU
// stays finite and close to the same training in fp32 while its weights, BatchNorm statistics and
// losses stay float32; fp16 on the CPU is a clear config error naming train.precision; the
// trainer's gradient scaler skips and counts an overflowing step; the command trains in bf16 and
// resumes in another precision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { autocast, autocastState, cuda, manualSeed, randint, randn, setNumThreads, type Tensor } from '../src/index.js';
import { GroupNorm, LayerNorm, Linear } from '../src/nn/index.js';
import { AlignModel } from '../src/align/model.js';
import { AlignTrainer, type AlignBatch, type AlignStepRecord, type AlignTrainOptions } from '../src/align/train.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { ConfigError } from '../src/config/load.js';
import { ImageModality } from '../src/modalities/image/index.js';
import { textModality } from '../src/modalities/text/index.js';
import type { Modality } from '../src/modalities/modality.js';
import type { Precision } from '../src/align/precision.js';
import { resolvePrecision } from '../src/run/precision.js';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { pythonWithTorch } from './python_torch.js';

setNumThreads(1);
const { dir, data } = useCliFixture();

/** x @ w in PyTorch (Debian's python3-torch) under torch.autocast('cpu', dtype=torch.bfloat16), as float32 values. */
function pytorchAutocastMatmul(x: Tensor, w: Tensor): number[] {
  const code = [
    'import json, sys, torch',
    'x, w = (torch.tensor(v, dtype=torch.float32) for v in json.load(sys.stdin))',
    "with torch.autocast('cpu', dtype=torch.bfloat16):",
    '    y = x @ w',
    'assert y.dtype == torch.bfloat16',
    'print(json.dumps(y.float().flatten().tolist()))',
  ].join('\n');
  const r = spawnSync(pythonWithTorch(), ['-c', code], { input: JSON.stringify([x.toArray(), w.toArray()]), encoding: 'utf8' });
  assert.equal(r.error, undefined, `could not start ${pythonWithTorch()}: ${String(r.error)}`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as number[];
}

test('autocast runs a matmul in bfloat16 inside its scope, as PyTorch does, and in float32 outside it', () => {
  manualSeed(2);
  const x = randn([4, 8]);
  const w = randn([8, 3]);
  assert.deepEqual(autocastState('cpu'), { enabled: false, dtype: 'bfloat16' });
  const inside = autocast('bfloat16', 'cpu', () => {
    assert.equal(autocastState('cpu').enabled, true);
    return x.matmul(w);
  });
  assert.equal(inside.dtype, 'bfloat16');
  assert.equal(x.matmul(w).dtype, 'float32');
  assert.equal(autocastState('cpu').enabled, false);
  // The values are PyTorch's under torch.autocast('cpu', dtype=torch.bfloat16), to the bit.
  assert.deepEqual(inside.float().toFlatArray(), pytorchAutocastMatmul(x, w));
});

test('autocast restores the previous state when its function throws, and nested scopes restore theirs', () => {
  const x = randn([2, 2]);
  assert.throws(
    () =>
      autocast('bfloat16', 'cpu', () => {
        throw new Error('inside');
      }),
    /inside/,
  );
  assert.equal(autocastState('cpu').enabled, false);
  assert.equal(x.matmul(x).dtype, 'float32');
  autocast('bfloat16', 'cpu', () => {
    assert.throws(
      () =>
        autocast('bfloat16', 'cpu', () => {
          throw new Error('inner');
        }),
      /inner/,
    );
    assert.equal(autocastState('cpu').enabled, true, 'the outer scope is still on');
    assert.equal(x.matmul(x).dtype, 'bfloat16');
  });
  assert.equal(autocastState('cpu').enabled, false);
  // A layer's weights are cast inside and untouched: they stay float32 parameters.
  const layer = new Linear(2, 2);
  assert.equal(autocast('bfloat16', 'cpu', () => layer.forward(x)).dtype, 'bfloat16');
  assert.equal(layer.weight.dtype, 'float32');
});

test('under autocast, LayerNorm and GroupNorm take their statistics in float32 (as CUDA autocast runs them)', () => {
  manualSeed(3);
  const x = randn([4, 8]);
  const layer = new Linear(8, 8);
  const norm = new LayerNorm(8);
  const groups = new GroupNorm(2, 8);
  const [hidden, normed, grouped] = autocast('bfloat16', 'cpu', () => {
    const h = layer.forward(x);
    return [h, norm.forward(h), groups.forward(h)];
  });
  assert.equal(hidden!.dtype, 'bfloat16');
  assert.equal(normed!.dtype, 'float32');
  assert.equal(grouped!.dtype, 'float32');
  // The bfloat16 activation, normalised in float32: libtorch 1.13's CPU kernels would refuse it.
  assert.deepEqual(normed!.toFlatArray(), norm.forward(hidden!.float()).toFlatArray());
  assert.deepEqual(grouped!.toFlatArray(), groups.forward(hidden!.float()).toFlatArray());
});

test('autocast refuses float16 on the CPU, CUDA without CUDA and an asynchronous function, by name', async () => {
  assert.throws(
    () => autocast('float16', 'cpu', () => 0),
    /float16 is not available on the CPU \(libtorch's CPU autocast has bfloat16 only\)/,
  );
  if (!cuda.isAvailable()) assert.throws(() => autocast('bfloat16', 'cuda', () => 0), /'cuda' asks for CUDA, but the linked libtorch/);
  assert.throws(() => autocast('bfloat16', 'cpu', async () => 0), /autocast: fn returned a promise; autocast is a synchronous scope/);
  assert.equal(autocastState('cpu').enabled, false);
});

const CAPTIONS = [
  'a red car',
  'two dogs on a beach',
  'a camera icon',
  'an outline camera',
  'a dog and a ball',
  'a blue house',
  'a small cat',
  'a green tree',
];

/** A tiny image (small CNN, BatchNorm) + text (one Transformer layer, LayerNorm) aligner, seeded. */
async function tinyAligner(
  precision: Precision,
  extra: Partial<AlignTrainOptions> = {},
): Promise<{ model: AlignModel; trainer: AlignTrainer }> {
  manualSeed(5);
  const text = await textModality.fit({ vocabSize: 60, maxLength: 8, dModel: 16, layers: 1, heads: 2 }, CAPTIONS);
  const image = new ImageModality({ size: 16 });
  const modalities: Modality[] = [image, text];
  const model = new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { projectionHiddenDim: 32, projectionDim: 16, predictionHiddenDim: 32 },
  );
  manualSeed(6);
  const images = randint(0, 256, [8, 3, 16, 16], { dtype: 'uint8' });
  async function* batches(): AsyncIterable<AlignBatch> {
    yield {
      size: 8,
      inputs: new Map([
        ['image', { batch: images.clone(), rows: null }],
        ['text', { batch: await text.collate(CAPTIONS), rows: null }],
      ]),
    };
  }
  const trainer = new AlignTrainer(model, {
    modalities,
    batches,
    stepsPerEpoch: 1,
    epochs: 4,
    batchSize: 8,
    // The default objective: BYOL's cross term beside VICReg's three.
    weights: ALIGNMENT_OBJECTIVES.lightCrossPlusVicReg,
    optimizer: 'adamw',
    baseLr: 1e-3,
    seed: 1,
    precision,
    ...extra,
  });
  return { model, trainer };
}

test('bf16 training of a tiny aligner on the CPU stays finite and within 1% of fp32 at every one of 4 steps', async () => {
  const fp32 = await (await tinyAligner('fp32')).trainer.run();
  const { model, trainer } = await tinyAligner('bf16');
  const bf16 = await trainer.run();
  assert.equal(bf16.length, 4);
  for (const [i, r] of bf16.entries()) {
    for (const [term, v] of Object.entries(r.terms)) assert.ok(Number.isFinite(v), `step ${i} ${term} = ${v}`);
    // Measured: at most 0.2% apart over 8 steps for this objective (bfloat16 rounds at 2^-9).
    const relative = Math.abs(r.loss - fp32[i]!.loss) / Math.abs(fp32[i]!.loss);
    assert.ok(relative <= 0.01, `step ${i}: bf16 loss ${r.loss} vs fp32 ${fp32[i]!.loss} (${(relative * 100).toFixed(3)}% apart)`);
  }
  // Autocast was really on: bfloat16 rounding moved the losses.
  assert.notDeepEqual(
    bf16.map((r) => r.loss),
    fp32.map((r) => r.loss),
  );
  // Weights, the EMA target and BatchNorm's running statistics stay float32, and so does the optimizer state.
  const state = model.stateDict();
  assert.ok([...state.keys()].some((k) => k.startsWith('target.') && k.endsWith('running_var')));
  assert.deepEqual(
    [...state].filter(([, t]) => t.dtype !== 'float32' && t.dtype !== 'int64').map(([k, t]) => `${k}: ${t.dtype}`),
    [],
  );
  const optimizerState = trainer.optimizer.stateDict().tensors;
  assert.deepEqual(new Set([...optimizerState.values()].filter((t) => t.size > 1).map((t) => t.dtype)), new Set(['float32']));
  assert.equal(autocastState('cpu').enabled, false, 'training left autocast off');
});

test('the losses see float32 embeddings under bf16: the outputs are cast after the autocast forward', async () => {
  const { model, trainer } = await tinyAligner('bf16');
  const dtypes = new Set<string>();
  const forwardViews = model.forwardViews.bind(model);
  model.forwardViews = (views, batchSize) => {
    const outputs = forwardViews(views, batchSize);
    for (const o of outputs.values()) dtypes.add(`forward ${o.p1.dtype}`);
    return outputs;
  };
  const records: AlignStepRecord[] = await trainer.run({ stopAfter: 1 });
  assert.equal(records.length, 1);
  // Inside the scope the projections came out in bfloat16; the loss is a float32 number either way,
  // and the trainer's record carries no scaler fields without fp16.
  assert.deepEqual(dtypes, new Set(['forward bfloat16']));
  assert.equal(records[0]!.lossScale, undefined);
});

test('fp16 on the CPU is refused: a ConfigError naming train.precision, and a RangeError from the trainer', async () => {
  assert.throws(
    () => resolvePrecision('fp16', 'cpu'),
    (err: Error) =>
      err instanceof ConfigError &&
      err.message ===
        "train.precision: 'fp16' needs a CUDA device, but training runs on cpu: libtorch's CPU autocast has bfloat16 only; use bf16 or fp32 there",
  );
  assert.throws(() => resolvePrecision('fp8', 'cpu', '--precision'), /^ConfigError: --precision: expected fp32, bf16 or fp16, got 'fp8'/);
  assert.equal(resolvePrecision('bf16', 'cpu'), 'bf16');
  if (cuda.isAvailable()) assert.equal(resolvePrecision('fp16', 'cuda:0'), 'fp16');
  await assert.rejects(
    tinyAligner('fp16'),
    /^RangeError: trainAlignment: precision 'fp16' needs a CUDA device, .*\(train\.precision in a config\)$/,
  );
});

test('with a gradient scaler, a step whose gradients overflow is skipped (weights kept), counted, and retried at half the scale', async () => {
  // 2^122 as the first scale: loss × scale overflows float32 in backward(), as fp16's narrow
  // range would, until the scale has backed off far enough (to 2^120 here, measured).
  const { model, trainer } = await tinyAligner('fp32', { epochs: 6, gradScaler: { initScale: 2 ** 122 } });
  const weights = (): number[][] => model.online.parameters().map((p) => p.toFlatArray());
  const before = weights();
  const [first] = await trainer.run({ stopAfter: 1 });
  assert.equal(first!.lossScale, 2 ** 122);
  assert.equal(first!.skippedSteps, 1);
  assert.ok(Number.isFinite(first!.loss), 'the loss itself was finite: the run goes on');
  assert.deepEqual(weights(), before, 'the skipped step changed no weight');
  // Each later step used the scale the previous one left: halved after every skip, else kept.
  let scale = 2 ** 121;
  let skipped = 1;
  for (const r of await trainer.run()) {
    assert.equal(r.lossScale, scale);
    assert.ok(r.skippedSteps === skipped || r.skippedSteps === skipped + 1, `skipped ${r.skippedSteps} after ${skipped}`);
    if (r.skippedSteps === skipped + 1) scale /= 2;
    skipped = r.skippedSteps!;
  }
  assert.notDeepEqual(weights(), before, 'once the scale fits, steps go ahead');
  const { meta } = trainer.stateDict();
  assert.deepEqual(meta.scaler, trainer.gradScaler!.stateDict());
  assert.equal(meta.scaler!.skippedSteps, skipped);
  assert.equal(meta.scaler!.scale, scale);
});

test('the command trains in bf16 (--precision), records it, and resumes in fp32; fp16 on the CPU exits 2 naming the setting', () => {
  const out = join(dir, 'bf16-run');
  const first = cli('train', ...data, '--steps', '3', '--stop-after', '2', '--precision', 'bf16', '--out', out, ...TINY);
  assert.equal(first.status, 0, first.stderr);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { train: { precision: string } };
  assert.equal(config.train.precision, 'bf16');
  const resumed = cli('train', '--out', out, '--resume', '--precision', 'fp32');
  assert.equal(resumed.status, 0, resumed.stderr);
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step?: number; loss?: number })
    .filter((l) => l.step !== undefined);
  assert.deepEqual(
    steps.map((s) => s.step),
    [1, 2, 3],
  );
  assert.ok(steps.every((s) => Number.isFinite(s.loss)));

  if (cuda.isAvailable()) return;
  for (const [args, named] of [
    [['--precision', 'fp16'], '--precision'],
    [['train.precision=fp16'], 'train.precision'],
  ] as const) {
    const r = cli('train', ...data, '--out', join(dir, 'fp16-run'), ...TINY, '--device', 'auto', ...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${named.replace('.', '\\.')}: 'fp16' needs a CUDA device, but training runs on cpu`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});
