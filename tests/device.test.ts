// Devices: a training step keeps every tensor on the trainer's device (parameters, buffers, the EMA
// target, optimizer state, the batch and its views, the loss), state dicts and checkpoints hold
// CPU tensors that load onto any device, a run resumes on another device than it trained on and
// says so, and asking for CUDA where the linked libtorch has none is a config error (exit code 2)
// naming that libtorch. Each device test runs on the CPU and on CUDA the same way; the CUDA ones
// skip, with the reason, where this process has no GPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cuda, libtorchVersion, manualSeed, randint, randn, Tensor, tensor, type Device } from '../src/index.js';
import { AlignModel } from '../src/align/model.js';
import { AlignTrainer, type AlignBatch, type AlignTrainOptions } from '../src/align/train.js';
import { embedBatches } from '../src/align/embed_batches.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { ConfigError } from '../src/config/load.js';
import { ImageModality } from '../src/modalities/image/index.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import type { Modality } from '../src/modalities/modality.js';
import { libtorchDescription, resolveDevice } from '../src/run/device.js';
import { loadCheckpoint } from '../src/run/checkpoint.js';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { forgeCheckpoint } from './checkpoint_forge.js';

const { dir, data, annotations, images } = useCliFixture();

/** Why a test on `device` cannot run here, or false when it can. */
function unavailable(device: Device): string | false {
  if (device === 'cpu') return false;
  return cuda.isAvailable() ? false : `no CUDA device: this process linked ${libtorchDescription()}`;
}

const N = 8;
const VECTOR_ROWS = [0, 2, 4, 6]; // half the items have a vector, so the rows are used

/** A tiny image + vector aligner with InfoNCE (so the trainer has a logit scale) and VICReg. */
async function stepSetup(device: Device): Promise<{ model: AlignModel; modalities: Modality[]; options: AlignTrainOptions }> {
  manualSeed(3);
  const vectors = randn([VECTOR_ROWS.length, 5]).toArray() as number[][];
  const image = new ImageModality({ size: 16 });
  const vector = await vectorModality.fit({ featureDim: 8, hiddenDims: [16] }, vectors);
  const modalities: Modality[] = [image, vector];
  const model = new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16 },
  );
  // Batches as the loader makes them: on the CPU, images as uint8.
  async function* batches(): AsyncIterable<AlignBatch> {
    yield {
      size: N,
      inputs: new Map([
        ['image', { batch: randint(0, 256, [N, 3, 16, 16], { dtype: 'uint8' }), rows: null }],
        ['vector', { batch: await vector.collate(vectors), rows: tensor(VECTOR_ROWS, { dtype: 'int64' }) }],
      ]),
    };
  }
  const options: AlignTrainOptions = {
    modalities,
    batches,
    stepsPerEpoch: 1,
    epochs: 2,
    batchSize: N,
    weights: { ...ALIGNMENT_OBJECTIVES.byolInfoNce, varianceWeight: 0.5, covarianceWeight: 0.02 },
    optimizer: 'adamw',
    baseLr: 1e-3,
    seed: 1,
    device,
  };
  return { model, modalities, options };
}

for (const device of ['cpu', 'cuda:0'] as const) {
  test(`every tensor of a training step is on the trainer's device: ${device}`, { skip: unavailable(device) }, async () => {
    const { model, modalities, options } = await stepSetup(device);
    const seen: { what: string; device: Device }[] = [];
    const record = (what: string, t: { device: Device }): void => void seen.push({ what, device: t.device });
    for (const m of modalities) {
      const views = m.views.bind(m);
      m.views = (batch, generator) => {
        record(`${m.name} batch`, batch);
        record(`${m.name} view generator`, generator);
        const made = views(batch, generator);
        for (const v of made) record(`${m.name} view`, v);
        return made;
      };
    }
    const forwardViews = model.forwardViews.bind(model);
    model.forwardViews = (views, batchSize) => {
      for (const [name, v] of views) if (v.rows !== null) record(`${name} rows`, v.rows);
      const outputs = forwardViews(views, batchSize);
      for (const [name, o] of outputs) for (const [key, t] of Object.entries(o)) record(`${name} ${key}`, t);
      return outputs;
    };
    // The loss is the tensor the trainer calls backward() on.
    const backward = Tensor.prototype.backward;
    Tensor.prototype.backward = function (this: Tensor, ...args: Parameters<Tensor['backward']>): void {
      record('loss', this);
      backward.apply(this, args);
    };
    const trainer = new AlignTrainer(model, options);
    try {
      assert.equal((await trainer.run()).length, 2);
    } finally {
      Tensor.prototype.backward = backward;
    }

    const kinds = new Set(seen.map((s) => s.what));
    for (const kind of [
      'image batch',
      'image view generator',
      'image view',
      'vector batch',
      'vector view',
      'vector rows',
      'image p1',
      'vector present',
      'loss',
    ])
      assert.ok(kinds.has(kind), `${kind} was seen`);
    assert.deepEqual(
      seen.filter((s) => s.device !== device),
      [],
      'batches, views, outputs and the loss',
    );
    const state = model.stateDict();
    assert.ok([...state.keys()].some((k) => k.startsWith('target.')) && [...state.keys()].some((k) => k.includes('running_mean')));
    assert.deepEqual(
      [...state].filter(([, t]) => t.device !== device).map(([k]) => k),
      [],
      'parameters and buffers, online and EMA target',
    );
    assert.equal(trainer.logitScale!.logScale.device, device);
    const gradients = model.online.parameters().flatMap((p) => (p.grad === null ? [] : [p.grad]));
    assert.ok(gradients.length > 0);
    assert.deepEqual(new Set(gradients.map((g) => g.device)), new Set([device]), 'gradients');
    const optimizerState = trainer.optimizer.stateDict().tensors;
    assert.ok(optimizerState.size > 0);
    assert.deepEqual(new Set([...optimizerState.values()].map((t) => t.device)), new Set([device]), 'optimizer state');
    for (const t of [...gradients, ...optimizerState.values()]) t.dispose();

    // Embedding follows the model: a CPU batch in, embeddings on the model's device out.
    const vector = modalities[1]!;
    const embedded = await embedBatches(model, vector, [await vector.collate([[1, 2, 3, 4, 5]])], ['projection']);
    assert.equal(embedded.get('projection')!.device, device);
  });

  test(
    `the state dict of a trainer on ${device} holds CPU copies of its tensors, equal to the live ones`,
    { skip: unavailable(device) },
    async () => {
      const { model, options } = await stepSetup(device);
      const trainer = new AlignTrainer(model, options);
      await trainer.run({ stopAfter: 1 });
      const { tensors } = trainer.stateDict();
      assert.ok([...tensors.keys()].some((k) => k.startsWith('optimizer.')) && tensors.has('logitScale.logit_scale'));
      assert.deepEqual(
        [...tensors].filter(([, t]) => t.device !== 'cpu').map(([k]) => k),
        [],
      );
      for (const [key, live] of model.stateDict()) assert.deepEqual(tensors.get(`model.${key}`)!.toFlatArray(), live.toFlatArray(), key);
    },
  );
}

for (const [from, to] of [
  ['cpu', 'cpu'],
  ['cpu', 'cuda:0'],
  ['cuda:0', 'cpu'],
] as const) {
  const skip = unavailable(from) || unavailable(to);
  test(`a trainer's state from ${from} loads onto a trainer on ${to} with every value unchanged`, { skip }, async () => {
    const first = await stepSetup(from);
    const trained = new AlignTrainer(first.model, first.options);
    await trained.run({ stopAfter: 1 });
    const saved = trained.stateDict();
    const second = await stepSetup(to);
    const resumed = new AlignTrainer(second.model, second.options);
    resumed.loadStateDict(saved);
    assert.equal(resumed.step, 1);
    assert.equal(second.model.online.parameters()[0]!.device, to);
    const flat = (m: ReadonlyMap<string, Tensor>): Record<string, number[]> =>
      Object.fromEntries([...m].map(([k, t]) => [k, t.toFlatArray()]));
    assert.deepEqual(flat(resumed.stateDict().tensors), flat(saved.tensors));
    // It trains on from there, on its own device.
    await resumed.run({ stopAfter: 1 });
    assert.equal(resumed.step, 2);
  });
}

test('resolveDevice: cpu is the CPU, auto is CUDA exactly when the linked libtorch has a GPU', () => {
  assert.equal(resolveDevice('cpu'), 'cpu');
  assert.equal(resolveDevice('auto'), cuda.isAvailable() ? 'cuda:0' : 'cpu');
  assert.throws(
    () => resolveDevice('gpu', '--device'),
    (err: Error) => err instanceof ConfigError && /^--device: expected auto, cpu/.test(err.message),
  );
});

test(
  'resolveDevice: CUDA on a libtorch without it is a ConfigError naming the libtorch and its version',
  { skip: cuda.isAvailable() && 'this libtorch has CUDA' },
  () => {
    for (const setting of ['cuda', 'cuda:0', 'cuda:1']) {
      assert.throws(
        () => resolveDevice(setting, 'train.device'),
        (err: Error) =>
          err instanceof ConfigError &&
          err.message.startsWith(`train.device: '${setting}' asks for CUDA, but this process linked libtorch ${libtorchVersion} (CPU only`),
        setting,
      );
    }
  },
);

test(
  '--device cuda where libtorch has no CUDA: exit code 2 and the libtorch named, before any data or checkpoint is read',
  { skip: cuda.isAvailable() && 'this libtorch has CUDA' },
  () => {
    const named = new RegExp(
      `config error:\\n--device: 'cuda' asks for CUDA, but this process linked libtorch ${libtorchVersion.replace(/\./g, '\\.')} \\(CPU only`,
    );
    const nowhere = join(dir, 'nowhere');
    const out = join(dir, 'cuda-run');
    const commands: string[][] = [
      ['train', ...data, '--out', out, ...TINY],
      ['eval', '--checkpoint', nowhere, '--data', `coco:${annotations}`],
      ['embed', '--checkpoint', nowhere, '--modality', 'text', '--input', nowhere],
      ['export', '--checkpoint', nowhere, '--out', join(dir, 'cuda-export')],
      ['report', '--run', nowhere],
      ['index', '--checkpoint', nowhere, '--data', `coco:${annotations}`, '--db', nowhere],
      ['search', '--db', nowhere, '--text', 'a red dot'],
      ['serve', '--db', nowhere],
    ];
    for (const args of commands) {
      const r = cli(...args, '--device', 'cuda');
      assert.equal(r.status, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, named, args[0]);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${args[0]}: no stack trace`);
    }
    assert.ok(!existsSync(join(out, 'checkpoints')), 'train wrote nothing');
    // The config's train.device is checked the same way, and names itself.
    const fromConfig = cli('train', ...data, '--out', out, ...TINY, 'train.device=cuda:1');
    assert.equal(fromConfig.status, 2);
    assert.match(fromConfig.stderr, /train\.device: 'cuda:1' asks for CUDA, but this process linked libtorch/);
    // A malformed --device is a usage error.
    const malformed = cli('eval', '--checkpoint', nowhere, '--data', `coco:${annotations}`, '--device', 'gpu');
    assert.equal(malformed.status, 2);
    assert.match(malformed.stderr, /--device must be auto, cpu, cuda or cuda:N, got 'gpu'/);
  },
);

test('a checkpoint holds CPU tensors and the device that trained it; a run configured auto resumes with --device cpu after another device and says so', () => {
  const out = join(dir, 'moved-run');
  const first = cli('train', ...data, '--steps', '6', '--stop-after', '2', '--out', out, ...TINY);
  assert.equal(first.status, 0, first.stderr);
  const config = (): { train: { device: string } } => JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config().train.device, 'auto');
  const second = join(out, 'checkpoints', 'step-000000002.safetensors');
  const checkpoint = loadCheckpoint(second);
  assert.equal(checkpoint.device, resolveDevice('auto'));
  assert.deepEqual(new Set([...checkpoint.tensors.values()].map((t) => t.device)), new Set(['cpu']));

  // What a GPU run's checkpoint is: the same CPU tensors, recorded as trained on cuda:0.
  forgeCheckpoint(second, second, (_, metadata) => (metadata.device = 'cuda:0'));
  const moved = cli('train', '--out', out, '--resume', '--device', 'cpu', '--stop-after', '2');
  assert.equal(moved.status, 0, moved.stderr);
  assert.match(moved.stderr, /resuming .*step-000000002\.safetensors at step 2 of 6 on cpu; trained on cuda:0 so far/);
  assert.equal(loadCheckpoint(join(out, 'checkpoints', 'step-000000004.safetensors')).device, 'cpu');
  assert.equal(config().train.device, 'auto', 'the run keeps its config');

  // train.device given as an override on resume may differ from the saved one too; no move, no note.
  const again = cli('train', '--out', out, '--resume', 'train.device=cpu');
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /at step 4 of 6 on cpu\n/);
  const evaluated = cli('eval', '--checkpoint', out, '--data', `coco:${annotations}`, '--images', images, '--device', 'cpu', '--json');
  assert.equal(evaluated.status, 0, evaluated.stderr);
  assert.ok(JSON.parse(evaluated.stdout).rsum >= 0);
});
