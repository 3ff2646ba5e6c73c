// Pretrained image towers (issue 16): the ImageNet ResNets have torchvision's state-dict keys and
// shapes, load torchvision's weights and then compute what torchvision computes on the same
// images (ImageNet normalisation included); a weights file that does not fit is refused with every
// problem listed and the file named; a run restored from its checkpoint does not need the file.
// Reference: scripts/fixtures/resnet_fixture.py, run here with Debian's python3-torch and
// python3-torchvision (tests/python_torch.ts): random weights are too large to commit.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { noGrad, randn, tensor, tidy, type Tensor } from '../src/index.js';
import { loadSafetensors, saveSafetensors } from '../src/engine/safetensors.js';
import type { Module } from '../src/nn/index.js';
import { ImageModality, imageModality } from '../src/modalities/image/index.js';
import { ImagenetResNet, type ImagenetResNetDepth } from '../src/modalities/image/resnet_imagenet.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { CifarResNet18 } from '../src/modalities/image/resnet.js';
import { loadPretrainedWeights, PretrainedWeightsError } from '../src/modalities/image/pretrained.js';
import { parseConfig } from '../src/config/load.js';
import { buildModel, fitModalities } from '../src/run/model_setup.js';
import { assertClose } from './helpers.js';
import { pythonWithTorch } from './python_torch.js';
import { scratchDir } from './scratch_dir.js';

function repoRoot(): string {
  // This file runs as dist/tests/*.js; the script stays in scripts/ beside the sources.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}
const SCRIPT = path.join(repoRoot(), 'scripts', 'fixtures', 'resnet_fixture.py');
const work = scratchDir('byol-pretrained-image-');
const fixture = (name: string): string => path.join(work, name);

before(() => {
  const run = spawnSync(pythonWithTorch(), [SCRIPT, work], { encoding: 'utf8' });
  assert.equal(run.error, undefined, `could not start ${pythonWithTorch()}: ${String(run.error)}`);
  assert.equal(run.status, 0, `resnet_fixture.py failed (needs python3-torch and python3-torchvision):\n${run.stderr}`);
});

const ENCODER_OF: Record<ImagenetResNetDepth, 'resnet18-imagenet' | 'resnet34' | 'resnet50'> = {
  18: 'resnet18-imagenet',
  34: 'resnet34',
  50: 'resnet50',
};

/** The keys and shapes of torchvision's state dict, in its order, as the fixture listed them. */
function torchvisionKeys(depth: ImagenetResNetDepth): [string, number[]][] {
  return JSON.parse(readFileSync(fixture(`resnet${depth}.keys.json`), 'utf8')) as [string, number[]][];
}

/** A file holding `state`, for the tests that break a state dict on purpose. */
let written = 0;
function stateFile(state: Map<string, Tensor>): string {
  const file = fixture(`state-${written++}.safetensors`);
  saveSafetensors(file, state);
  return file;
}

/** The error loadPretrainedWeights throws for `file` into `encoder`. */
function loadError(encoder: Module, file: string): PretrainedWeightsError {
  try {
    loadPretrainedWeights(encoder, file);
  } catch (err) {
    assert.ok(err instanceof PretrainedWeightsError, `expected a PretrainedWeightsError, got ${String(err)}`);
    return err;
  }
  assert.fail(`loading ${file} succeeded`);
}

for (const depth of [18, 34, 50] as const) {
  test(`ResNet-${depth}'s state dict has torchvision's keys and shapes in torchvision's order, less fc`, () => {
    const ours = [...new ImagenetResNet({ depth }).stateDict()].map(([key, t]) => [key, t.shape]);
    const theirs = torchvisionKeys(depth).filter(([key]) => !key.startsWith('fc.'));
    assert.deepEqual(ours, theirs);
  });
}

for (const depth of [18, 50] as const) {
  test(`ResNet-${depth} with torchvision's weights computes torchvision's features on the same images (eval, within 1e-4)`, () => {
    const weights = fixture(`resnet${depth}.safetensors`);
    const image = new ImageModality({ size: 224, encoder: ENCODER_OF[depth], weights });
    const encoder = image.createEncoder().eval();
    assert.deepEqual(image.pretrained?.ignored.sort(), ['fc.bias', 'fc.weight']);
    assert.equal(image.pretrained?.loaded, encoder.stateDict().size);
    const { tensors } = loadSafetensors(fixture(`resnet${depth}.io.safetensors`));
    const features = noGrad(() => encoder.forward(image.evalInput(tensors.get('pixels')!)));
    assert.deepEqual(features.shape, [2, depth === 50 ? 2048 : 512]);
    assertClose(features, tensors.get('features')!, 1e-4, 1e-5);
  });
}

test('the weights arrive through the config: image.encoder and image.weights', async () => {
  const weights = fixture('resnet18.safetensors');
  const config = parseConfig({ image: { size: 224, encoder: 'resnet18-imagenet', weights } });
  const [image] = (await fitModalities(config, [{ id: 'a', image: 'a.png', captions: [] }])) as [ImageModality];
  const encoder = image.createEncoder().eval();
  const { tensors } = loadSafetensors(fixture('resnet18.io.safetensors'));
  const features = noGrad(() => encoder.forward(image.evalInput(tensors.get('pixels')!)));
  assertClose(features, tensors.get('features')!, 1e-4, 1e-5);
});

test('the config refuses an unknown encoder and an empty weights path, naming the key', () => {
  assert.throws(() => parseConfig({ image: { encoder: 'resnet101' } }), /image\.encoder/);
  assert.throws(() => parseConfig({ image: { weights: '' } }), /image\.weights/);
});

test("a width multiplier is refused for encoders that have none (only the CIFAR 'resnet18' has one)", () => {
  assert.throws(() => new ImageModality({ encoder: 'resnet50', widthMultiplier: 2 }), /widthMultiplier/);
});

test('a renamed key is listed as missing and unexpected, in an error naming the file', () => {
  const state = new ImagenetResNet({ depth: 18 }).stateDict();
  state.set('layer1.0.conv_1.weight', state.get('layer1.0.conv1.weight')!);
  state.delete('layer1.0.conv1.weight');
  const file = stateFile(state);
  const err = loadError(new ImagenetResNet({ depth: 18 }), file);
  assert.equal(err.file, file);
  assert.ok(err.message.includes(file), err.message);
  assert.match(err.message, /missing keys \(1\): layer1\.0\.conv1\.weight;/);
  assert.match(err.message, /unexpected keys \(1\): layer1\.0\.conv_1\.weight\b/);
});

test('a wrong shape names the key and both shapes, beside the other problems, in one error', () => {
  const state = new ImagenetResNet({ depth: 18 }).stateDict();
  state.set('conv1.weight', randn([64, 1, 7, 7]));
  state.delete('bn1.running_var');
  const err = loadError(new ImagenetResNet({ depth: 18 }), stateFile(state));
  assert.match(err.message, /wrong shapes \(1\): conv1\.weight is \[64, 1, 7, 7\] in the file, \[64, 3, 7, 7\] in the encoder/);
  assert.match(err.message, /missing keys \(1\): bn1\.running_var/);
});

test("another architecture's weights are refused with counted lists (ResNet-50's file into ResNet-18)", () => {
  const err = loadError(new ImagenetResNet({ depth: 18 }), fixture('resnet50.safetensors'));
  assert.match(err.message, /unexpected keys \(\d+\): .*, and \d+ more/);
  assert.match(err.message, /wrong shapes \(\d+\): /);
});

test('nothing is copied when a file does not fit', () => {
  const encoder = new ImagenetResNet({ depth: 18 });
  const before = encoder.stateDict().get('conv1.weight')!.clone();
  const state = new ImagenetResNet({ depth: 18 }).stateDict();
  state.delete('fc.weight');
  state.set('extra', tensor([1]));
  loadError(encoder, stateFile(state));
  assertClose(encoder.stateDict().get('conv1.weight')!, before, 0, 0);
});

test('a missing file is an error naming it, at the first encoder built', () => {
  const missing = fixture('no-such-weights.safetensors');
  const image = new ImageModality({ encoder: 'small-cnn', weights: missing });
  assert.throws(
    () => image.createEncoder(),
    (err: unknown) => err instanceof PretrainedWeightsError && err.file === missing && err.message.includes(missing),
  );
});

test('a file that is not safetensors is an error naming it', () => {
  const err = loadError(new SmallCnn(), SCRIPT);
  assert.ok(err.message.includes(SCRIPT), err.message);
});

test('every image encoder loads weights: small-cnn and the CIFAR resnet18 from their own state dicts', () => {
  for (const [encoderName, make] of [
    ['small-cnn', () => new SmallCnn()],
    ['resnet18', () => new CifarResNet18({ widthMultiplier: 0.25 })],
  ] as const) {
    const source = make();
    const file = stateFile(source.stateDict());
    const image = new ImageModality({ encoder: encoderName, widthMultiplier: encoderName === 'resnet18' ? 0.25 : 1, weights: file });
    const loaded = image.createEncoder();
    assert.deepEqual(image.pretrained?.ignored, []);
    for (const [key, t] of source.stateDict()) assertClose(loaded.stateDict().get(key)!, t, 0, 0);
  }
});

test("a file without BatchNorm's num_batches_tracked loads (as in PyTorch), and fc of the file is skipped", () => {
  const source = new ImagenetResNet({ depth: 18 });
  const state = new Map([...source.stateDict()].filter(([key]) => !key.endsWith('num_batches_tracked')));
  state.set('fc.weight', randn([1000, 512]));
  state.set('fc.bias', randn([1000]));
  const target = new ImagenetResNet({ depth: 18 });
  const report = loadPretrainedWeights(target, stateFile(state));
  assert.deepEqual(report.ignored.sort(), ['fc.bias', 'fc.weight']);
  assert.equal(report.loaded, state.size - 2);
  assertClose(target.stateDict().get('layer4.1.bn2.running_var')!, source.stateDict().get('layer4.1.bn2.running_var')!, 0, 0);
});

test('a float16 file loads into the float32 encoder', () => {
  const source = new SmallCnn();
  const halves = new Map([...source.stateDict()].map(([key, t]) => [key, t.dtype === 'float32' ? t.to('float16') : t]));
  const target = new SmallCnn();
  loadPretrainedWeights(target, stateFile(halves));
  const weight = target.stateDict().get('block1.0.weight')!;
  assert.equal(weight.dtype, 'float32');
  assertClose(weight, source.stateDict().get('block1.0.weight')!.to('float16').to('float32'), 0, 0);
});

test('a run restored from its checkpoint does not read image.weights: the checkpoint holds the weights', async () => {
  const source = new SmallCnn();
  const file = stateFile(source.stateDict());
  const config = parseConfig({
    image: { encoder: 'small-cnn', size: 32, weights: file },
    model: { projectionHiddenDim: 32, projectionDim: 16, predictionHiddenDim: 32 },
  });
  const [image] = (await fitModalities(config, [{ id: 'a', image: 'a.png', captions: [] }])) as [ImageModality];
  const model = buildModel(config, [image]);
  const saved = new Map([...model.stateDict()].map(([key, t]) => [key, t.clone()]));
  // Both the online encoder and its EMA target start from the file.
  for (const branch of ['online', 'target'])
    assertClose(saved.get(`${branch}.encoders.image.0.block2.0.weight`)!, source.stateDict().get('block2.0.weight')!, 0, 0);
  assert.equal((image.toJSON().settings as { weights?: string }).weights, file);

  rmSync(file);
  const restored = imageModality.restore(JSON.parse(JSON.stringify(image.toJSON())) as ReturnType<typeof image.toJSON>);
  const again = buildModel(config, [restored]);
  again.loadStateDict(saved);
  for (const [key, t] of again.stateDict()) assertClose(t, saved.get(key)!, 0, 0);
});

test('blocks(): the stem, then every residual block in order, covering each parameter once', () => {
  const expected: [Module & { blocks(): Module[]; parameters(): Tensor[] }, number][] = [
    [new ImagenetResNet({ depth: 18 }), 1 + 8],
    [new ImagenetResNet({ depth: 34 }), 1 + 16],
    [new ImagenetResNet({ depth: 50 }), 1 + 16],
    [new CifarResNet18({ widthMultiplier: 0.25 }), 1 + 8],
    [new SmallCnn(), 3],
  ];
  for (const [encoder, count] of expected) {
    const blocks = encoder.blocks();
    assert.equal(blocks.length, count, encoder.constructor.name);
    const fromBlocks = blocks.flatMap((b) => b.parameters());
    assert.equal(new Set(fromBlocks).size, fromBlocks.length, `${encoder.constructor.name}: a parameter in two blocks`);
    assert.deepEqual(new Set(fromBlocks), new Set(encoder.parameters()), encoder.constructor.name);
  }
  const resnet = new ImagenetResNet({ depth: 50 });
  const [stem, first, , , fourth] = resnet.blocks();
  assert.deepEqual(
    stem!.parameters(),
    ['conv1.weight', 'bn1.weight', 'bn1.bias'].map((k) => resnet.stateDict().get(k)),
  );
  assert.equal(first!.parameters()[0], resnet.stateDict().get('layer1.0.conv1.weight'));
  assert.equal(fourth!.parameters()[0], resnet.stateDict().get('layer2.0.conv1.weight'));
});

test('the ImageNet ResNets train: gradients reach the stem, and train-mode BatchNorm updates its statistics', () => {
  const encoder = new ImagenetResNet({ depth: 18 });
  const runningMean = encoder.stateDict().get('layer4.1.bn2.running_mean')!;
  const before = runningMean.clone();
  tidy(() =>
    encoder
      .forward(randn([4, 3, 64, 64]))
      .square()
      .mean()
      .backward(),
  );
  const grad = encoder.stateDict().get('conv1.weight')!.grad;
  assert.ok(grad !== null && grad.abs().sum().item() > 0);
  assert.ok(runningMean.sub(before).abs().sum().item() > 0);
});
