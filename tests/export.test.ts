// byol-align export: weights and config that PyTorch rebuilds with identical outputs, the Python
// module python/byol_align_export.py against `byol-align embed`, and the check samples a run keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { pythonWithTorch } from './python_torch.js';
import { exportModel, savedCheckItems } from '../src/run/export_run.js';
import { CheckSamplesError, loadCheckSamples, saveCheckSamples } from '../src/run/check_samples.js';
import { loadModel } from '../src/run/model_setup.js';
import { TextTokenizer } from '../src/modalities/text/tokenizer.js';
import { ImageModality } from '../src/modalities/image/index.js';

const { dir, images, annotations, data, trainedRun } = useCliFixture();

/** Runs Python code (Debian's python3-torch) with python/ on the path; its stdout parsed as JSON. */
function python(code: string, ...args: string[]): unknown {
  const r = spawnSync(pythonWithTorch(), ['-c', `import sys; sys.path.insert(0, 'python')\n${code}`, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.error, undefined, `could not start ${pythonWithTorch()}: ${String(r.error)}`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** `byol-align embed` output as {id: embedding}. */
function embed(run: string, modality: string, input: string, ...args: string[]): Map<string, number[]> {
  const r = cli('embed', '--checkpoint', run, '--modality', modality, '--input', input, ...args);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  return new Map(
    lines.map((l) => {
      const { id, embedding } = JSON.parse(l) as { id: string; embedding: number[] };
      return [id, embedding];
    }),
  );
}

function maxAbsDifference(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  a.forEach((row, i) => {
    assert.equal(row.length, b[i]!.length);
    row.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - b[i]![j]!))));
  });
  return worst;
}

/** Exports the fixture's run, with a self-check of the fixture's first items. */
function exportTo(name: string): string {
  const out = join(dir, name);
  const r = cli('export', '--checkpoint', trainedRun(), '--out', out, '--check-data', `coco:${annotations}`, '--images', images);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

let shared = '';
/** One export for the tests that only read it. */
function sharedExport(): string {
  return (shared ||= exportTo('export-shared'));
}

const ENCODE = `
import json
from PIL import Image
from byol_align_export import load_export
model = load_export(sys.argv[1])
files = json.loads(sys.argv[2])
captions = json.loads(sys.argv[3])
other = "encoder" if model.config["space"] == "projection" else "projection"
print(json.dumps({
    "other": other,
    "textOther": model.encode_text(captions, space=other).tolist(),
    "image": model.encode_image([Image.open(f) for f in files]).tolist(),
    "text": model.encode_text(captions).tolist(),
    "one": model.encode_text(captions[0]).tolist(),
    "tokenizer": model.tokenizer.library,
}))
`;

test('export writes weights and config that PyTorch rebuilds with identical outputs (scripts/load_export.py)', async () => {
  const out = exportTo('export');
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'check.safetensors']) assert.ok(existsSync(join(out, f)), f);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(
    config.modalities.map((m: { name: string }) => m.name),
    ['image', 'text'],
  );
  const py = spawnSync(pythonWithTorch(), ['scripts/load_export.py', out], { encoding: 'utf8' }); // Debian's python3-torch
  assert.equal(py.error, undefined, `could not start ${pythonWithTorch()}: ${String(py.error)}`);
  assert.equal(py.status, 0, py.stdout + py.stderr);
  assert.match(py.stdout, /image: \(8, 16\) projections, max abs difference/);
  assert.match(py.stdout, /text: \(8, 16\) projections, max abs difference/);
  assert.match(py.stdout, /^match$/m);
  // A tampered weight makes the check fail: the comparison can fail.
  const weights = readFileSync(join(out, 'model.safetensors'));
  const headerLength = Number(weights.readBigUInt64LE(0));
  const tampered = Buffer.from(weights);
  for (let i = 8 + headerLength; i < 8 + headerLength + 4096 && i < tampered.length; i++) tampered[i] = 0;
  writeFileSync(join(out, 'model.safetensors'), tampered);
  const bad = spawnSync(pythonWithTorch(), ['scripts/load_export.py', out], { encoding: 'utf8' });
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /MISMATCH/);
});

test("the export's config records the image preprocessing, the tokenizer and the space", () => {
  const config = JSON.parse(readFileSync(join(sharedExport(), 'config.json'), 'utf8'));
  assert.deepEqual(config.image, {
    size: 16,
    channels: 3,
    fit: 'cover',
    background: '#ffffff',
    resizeKernel: 'lanczos3',
    mean: [0.485, 0.456, 0.406], // byolView1's ImageNet statistics
    std: [0.229, 0.224, 0.225],
  });
  assert.deepEqual(config.text, { tokenizer: 'tokenizer.json', maxLength: 8, padding: 'longest', padId: 0 });
  // The space `embed` defaults to (the one the run retrieves best in); the next test checks they agree.
  assert.ok(['projection', 'encoder'].includes(config.space), `space ${config.space}`);
});

test('encode_image on PIL images and encode_text on captions match byol-align embed to 1e-4', () => {
  const run = trainedRun();
  const out = sharedExport();
  const files = readdirSync(images).sort();
  const fromCli = embed(run, 'image', images);
  const captions = ['a red square', 'stripe in blue', 'A GREEN dot!', 'purple, frame', 'an unseen caption about zebras'];
  writeFileSync(join(dir, 'captions.txt'), captions.join('\n'));
  const textFromCli = embed(run, 'text', join(dir, 'captions.txt'));
  const py = python(ENCODE, out, JSON.stringify(files.map((f) => join(images, f))), JSON.stringify(captions)) as {
    image: number[][];
    text: number[][];
    one: number[];
    other: string;
    textOther: number[][];
    tokenizer: string;
  };
  const expectedImages = files.map((f) => fromCli.get(f)!);
  assert.equal(py.image.length, 24);
  assert.ok(maxAbsDifference(py.image, expectedImages) < 1e-4, `images differ by ${maxAbsDifference(py.image, expectedImages)}`);
  const expectedText = captions.map((_, i) => textFromCli.get(String(i + 1))!);
  assert.ok(maxAbsDifference(py.text, expectedText) < 1e-4, `texts differ by ${maxAbsDifference(py.text, expectedText)}`);
  const textOtherFromCli = embed(run, 'text', join(dir, 'captions.txt'), '--space', py.other);
  const expectedOther = captions.map((_, i) => textOtherFromCli.get(String(i + 1))!);
  assert.ok(
    maxAbsDifference(py.textOther, expectedOther) < 1e-4,
    `${py.other} space: texts differ by ${maxAbsDifference(py.textOther, expectedOther)}`,
  );
  // One text in gives one vector out, the same as in a batch (other rows' padding does not leak in).
  assert.ok(maxAbsDifference([py.one], [expectedText[0]!]) < 1e-4);
  // Without the `tokenizers` package (as on Debian), the module's own WordPiece encoder ran.
  assert.match(py.tokenizer, /^(tokenizers|byol_align_export\.WordPieceTokenizer)$/);
  // The comparison can fail: different images embed differently.
  assert.ok(maxAbsDifference([py.image[0]!], [py.image[1]!]) > 1e-3);
});

test('encode_image flattens transparent, greyscale and palette images as byol-align decodes them', async () => {
  const run = trainedRun();
  const out = sharedExport();
  const odd = join(dir, 'odd-images');
  mkdirSync(odd);
  const rgba = Buffer.alloc(16 * 16 * 4);
  for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 37 + (i >> 4) * 11) % 256; // every alpha from 0 to 255
  await sharp(rgba, { raw: { width: 16, height: 16, channels: 4 } })
    .png()
    .toFile(join(odd, 'alpha.png'));
  const grey = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7) % 256));
  await sharp(grey, { raw: { width: 16, height: 16, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(join(odd, 'grey.png'));
  await sharp(rgba, { raw: { width: 16, height: 16, channels: 4 } })
    .png({ palette: true })
    .toFile(join(odd, 'palette.png'));
  const files = ['alpha.png', 'grey.png', 'palette.png'];
  const fromCli = embed(run, 'image', odd);
  const code = `
import json
from PIL import Image
from byol_align_export import load_export
images = [Image.open(f) for f in json.loads(sys.argv[2])]
print(json.dumps({"modes": [i.mode for i in images], "image": load_export(sys.argv[1]).encode_image(images).tolist()}))
`;
  const py = python(code, out, JSON.stringify(files.map((f) => join(odd, f)))) as { modes: string[]; image: number[][] };
  assert.deepEqual(py.modes, ['RGBA', 'L', 'P']);
  const expected = files.map((f) => fromCli.get(f)!);
  assert.ok(maxAbsDifference(py.image, expected) < 1e-4, `images differ by ${maxAbsDifference(py.image, expected)}`);
});

test("the module's WordPiece encoder gives the ids byol-align's tokenizer gives", async () => {
  const out = sharedExport();
  const texts = [
    'a red square',
    'Café RÉSUMÉ naïve', // accents stripped, lowercased
    'red,blue!green?(dot)', // punctuation split off
    '猫 and 犬在', // CJK characters become words
    'tab\tnew\nline  spaces \u00a0nbsp',
    'control\u0007char\u200bzero-width',
    'literal [MASK] and [CLS] tokens',
    'x'.repeat(101), // longer than max_input_chars_per_word
    'zzqqj', // pieces from ##-prefixed characters
    '',
  ];
  const tokenizer = TextTokenizer.load(join(out, 'tokenizer.json'));
  const expected = await Promise.all(texts.map((t) => tokenizer.encode(t)));
  const code = `
import json
from byol_align_export import WordPieceTokenizer
with open(sys.argv[1], encoding="utf-8") as f:
    tokenizer = WordPieceTokenizer(json.load(f))
print(json.dumps([tokenizer.encode(t) for t in json.loads(sys.argv[2])]))
`;
  const got = python(code, join(out, 'tokenizer.json'), JSON.stringify(texts)) as number[][];
  got.forEach((ids, i) => assert.deepEqual(ids, expected[i], `text ${JSON.stringify(texts[i])}`));
  assert.ok(new Set(expected.flat()).size > 8, 'the texts exercise more than a few tokens');
});

test('saveCheckSamples keeps 8 items per modality that loadCheckSamples reads back as the same model inputs', async () => {
  const runDir = join(dir, 'samples-run');
  mkdirSync(runDir);
  const files = readdirSync(images)
    .sort()
    .map((f) => join(images, f));
  const captions = Array.from({ length: 10 }, (_, i) => `caption ${i}`);
  const vectors = [new Float32Array([1, 2.5]), [3, -4]];
  await saveCheckSamples(runDir, { image: files, text: captions, vector: vectors });
  const loaded = loadCheckSamples(runDir)!;
  assert.deepEqual(loaded.text, captions.slice(0, 8));
  assert.deepEqual(loaded.vector, [
    [1, 2.5],
    [3, -4],
  ]);
  assert.equal(loaded.image!.length, 8);
  assert.deepEqual(
    readdirSync(join(runDir, 'check-samples')).sort(),
    [...Array.from({ length: 8 }, (_, i) => `image-${i}.png`), 'samples.json'].sort(),
  );
  const image = new ImageModality({ size: 16 }, { poolSize: 1 });
  try {
    const original = await image.collate(files.slice(0, 8));
    const saved = await image.collate(loaded.image as string[]);
    assert.deepEqual(saved.toFlatArray(), original.toFlatArray());
  } finally {
    await image.close();
  }
});

test('loadCheckSamples: undefined for a run without samples, an error naming the field for a damaged file', () => {
  const runDir = join(dir, 'no-samples-run');
  mkdirSync(runDir);
  assert.equal(loadCheckSamples(runDir), undefined);
  mkdirSync(join(runDir, 'check-samples'));
  writeFileSync(join(runDir, 'check-samples', 'samples.json'), JSON.stringify({ format: 'byol-align-check-samples/1', text: [1] }));
  assert.throws(() => loadCheckSamples(runDir), CheckSamplesError);
  assert.throws(() => loadCheckSamples(runDir), /samples\.json: "text" must be a list of strings/);
});

test("exportModel checks with the run's saved samples (training saves them), and without any writes no check file and says so", async () => {
  const run = trainedRun();
  const loaded = loadModel(run);
  try {
    const bare = join(dir, 'export-unchecked');
    // Training saved samples from its data (the first items with an image, a caption and no vector).
    const saved = savedCheckItems(loaded)!;
    assert.equal(saved.image!.length, 8);
    assert.equal(saved.text!.length, 8);
    const unchecked = await exportModel(loaded, bare, undefined);
    assert.equal(unchecked.checked, false);
    assert.match(unchecked.message, /has no check\.safetensors/);
    assert.ok(existsSync(join(bare, 'model.safetensors')));
    assert.ok(!existsSync(join(bare, 'check.safetensors')));

    await saveCheckSamples(run, { image: readdirSync(images).map((f) => join(images, f)), text: ['a red square', 'dot in blue'] });
    const out = join(dir, 'export-samples');
    const result = await exportModel(loaded, out, savedCheckItems(loaded));
    assert.equal(result.checked, true);
    assert.equal(result.message, 'check.safetensors holds the projections of 8 image, 2 text samples');
    const py = spawnSync(pythonWithTorch(), ['scripts/load_export.py', out], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stdout + py.stderr);
    assert.match(py.stdout, /image: \(8, 16\) projections/);
    assert.match(py.stdout, /text: \(2, 16\) projections/);
  } finally {
    await Promise.all(loaded.modalities.map((m) => (m as { close?: () => Promise<void> }).close?.()));
  }
});

test('runs on the ImageNet ResNets export to PyTorch: the check passes and encode_image equals embed to 1e-4 (basic blocks and bottlenecks)', () => {
  const files = readdirSync(images).sort().slice(0, 6);
  for (const encoder of ['resnet18-imagenet', 'resnet50']) {
    const run = join(dir, `run-${encoder}`);
    const trained = cli('train', ...data, '--steps', '1', '--out', run, ...TINY, `image.encoder=${encoder}`); // TINY's 16-px images: no resizing, so the pixels are identical
    assert.equal(trained.status, 0, trained.stderr);
    const out = join(dir, `export-${encoder}`);
    const exported = cli('export', '--checkpoint', run, '--out', out);
    assert.equal(exported.status, 0, exported.stderr);
    const check = spawnSync(pythonWithTorch(), ['scripts/load_export.py', out], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /^image: /m);
    const fromCli = embed(run, 'image', images);
    const py = python(ENCODE, out, JSON.stringify(files.map((f) => join(images, f))), JSON.stringify(['a red square'])) as {
      image: number[][];
    };
    const expected = files.map((f) => fromCli.get(f)!);
    assert.ok(maxAbsDifference(py.image, expected) < 1e-4, `${encoder}: images differ by ${maxAbsDifference(py.image, expected)}`);
    assert.ok(maxAbsDifference([py.image[0]!], [py.image[1]!]) > 1e-4, `${encoder}: different images embed apart`);
  }
});

test('a run with model.headInputDim exports to PyTorch with its necks: the check passes', () => {
  // Width 8 is below both towers' (text.dModel 16, the small CNN's 128): each gets a Linear neck to 8.
  const run = join(dir, 'run-head-input');
  const trained = cli('train', ...data, '--steps', '1', '--out', run, ...TINY, 'model.headInputDim=8');
  assert.equal(trained.status, 0, trained.stderr);
  const out = join(dir, 'export-head-input');
  const exported = cli('export', '--checkpoint', run, '--out', out);
  assert.equal(exported.status, 0, exported.stderr);
  const check = spawnSync(pythonWithTorch(), ['scripts/load_export.py', out], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^match$/m);
});
