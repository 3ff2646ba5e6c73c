// Host-to-device copies and the single-modality BYOL trainer's device: a batch already on its
// device is not copied; a CPU batch bound for a GPU is staged in pinned memory and copied without
// blocking; the BYOL trainer takes a device as the aligner's does (on 'cpu' exactly the training
// of its default), and its example refuses CUDA where the linked libtorch has none. The CUDA
// tests skip, with the reason, where this process has no GPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cuda, libtorchVersion, manualSeed, randint, setNumThreads, Tensor, type Device } from '../src/index.js';
import { onDevice } from '../src/nn/device.js';
import { Byol } from '../src/byol/model.js';
import { trainByol, type ByolStepRecord, type ByolTrainOptions } from '../src/byol/train.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { byolView1, byolView2 } from '../src/modalities/image/augment.js';
import { libtorchDescription } from '../src/run/device.js';

setNumThreads(1);

const noCuda = cuda.isAvailable() ? false : `no CUDA device: this process linked ${libtorchDescription()}`;

test('a tensor already on the target device is used as it is; a CPU copy with nonBlocking is an ordinary copy', () => {
  const batch = randint(0, 256, [2, 3, 4, 4], { dtype: 'uint8' });
  assert.equal(onDevice(batch, 'cpu'), batch);
  const copied = batch.to({ device: 'cpu', dtype: 'float32', nonBlocking: true });
  assert.deepEqual(copied.toFlatArray(), batch.toFlatArray());
  assert.equal(batch.isPinned, false);
  if (!cuda.isAvailable()) assert.throws(() => batch.pinMemory(), /^Error: aten::pin_memory\(self=\[2, 3, 4, 4\] uint8 cpu\)/);
});

test('a CPU batch bound for CUDA is staged in pinned memory and arrives unchanged, as uint8', { skip: noCuda }, () => {
  const batch = randint(0, 256, [2, 3, 4, 4], { dtype: 'uint8' });
  const pinned: Tensor[] = [];
  const pinMemory = Tensor.prototype.pinMemory;
  Tensor.prototype.pinMemory = function (this: Tensor): Tensor {
    const staged = pinMemory.call(this);
    pinned.push(staged);
    return staged;
  };
  let onGpu: Tensor;
  try {
    onGpu = onDevice(batch, 'cuda:0');
  } finally {
    Tensor.prototype.pinMemory = pinMemory;
  }
  assert.equal(pinned.length, 1);
  assert.equal(pinned[0]!.isPinned, true);
  assert.equal(batch.isPinned, false, 'the source is left as it was');
  assert.equal(onGpu.device, 'cuda:0');
  assert.equal(onGpu.dtype, 'uint8');
  // Reading it back waits for the copy.
  assert.deepEqual(onGpu.toFlatArray(), batch.toFlatArray());
  // Back to the CPU is a plain copy, no pinning.
  assert.deepEqual(onDevice(onGpu, 'cpu').toFlatArray(), batch.toFlatArray());
});

/** A tiny BYOL on 1×28×28 images, seeded, and the trainer's options. */
function byolSetup(device?: Device): { byol: Byol; options: ByolTrainOptions } {
  manualSeed(9);
  const byol = new Byol(() => new SmallCnn({ inChannels: 1, widths: [4, 8, 8] }), {
    featureDim: 8,
    projectionHiddenDim: 16,
    projectionDim: 8,
    predictionHiddenDim: 16,
    tauBase: 0.99,
  });
  const images = randint(0, 256, [16, 1, 28, 28], { dtype: 'uint8' });
  const options: ByolTrainOptions = {
    images,
    views: [byolView1(28, 1), byolView2(28, 1)],
    batchSize: 8,
    steps: 3,
    optimizer: 'adam',
    baseLr: 1e-3,
    scaleLrByBatch: false,
    seed: 2,
    ...(device === undefined ? {} : { device }),
  };
  return { byol, options };
}

const numbers = (records: ByolStepRecord[]): number[][] => records.map((r) => [r.loss, r.tau, r.collapseStd]);

test("trainByol on device 'cpu' trains exactly as without a device (the default), record for record and weight for weight", () => {
  const before = byolSetup();
  const withoutDevice = trainByol(before.byol, before.options);
  const cpu = byolSetup('cpu');
  const onCpu = trainByol(cpu.byol, cpu.options);
  assert.equal(onCpu.length, 3);
  assert.deepEqual(numbers(onCpu), numbers(withoutDevice));
  assert.deepEqual(
    [...cpu.byol.stateDict()].map(([k, t]) => [k, t.device, t.toFlatArray()]),
    [...before.byol.stateDict()].map(([k, t]) => [k, 'cpu', t.toFlatArray()]),
  );
});

test('trainByol on CUDA keeps the online network and the EMA target there, from CPU images', { skip: noCuda }, () => {
  const { byol, options } = byolSetup('cuda:0');
  const records = trainByol(byol, options);
  assert.equal(records.length, 3);
  assert.ok(records.every((r) => Number.isFinite(r.loss)));
  assert.equal(options.images.device, 'cpu');
  assert.deepEqual(
    [...byol.stateDict()].filter(([, t]) => t.device !== 'cuda:0').map(([k]) => k),
    [],
  );
});

test(
  "the BYOL example's --device cuda where libtorch has no CUDA: exit code 2 and the libtorch named, before any data is read",
  { skip: cuda.isAvailable() && 'this libtorch has CUDA' },
  () => {
    const example = join('dist', 'examples', 'fashion_mnist.js');
    const r = spawnSync(process.execPath, [example, '--device', 'cuda', '--subset', '16'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `--device: 'cuda' asks for CUDA, but this process linked libtorch ${libtorchVersion} (CPU only: built without CUDA, or no GPU visible); use cpu or auto (--device cpu), or build the addon against a CUDA libtorch (README: Building against another libtorch)`,
    );
  },
);
