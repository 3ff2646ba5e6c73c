// A modality that lives only in this test — "tone", a short vector per item with its own encoder,
// views and config section — registered by a module the test writes, and run through the command:
// train (--plugin, or `plugins` in a config file), eval, embed and --resume, with no change to the
// library. Its schema validates its section; the run records the plug-in so later commands load it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { loadModelWithPlugins } from '../src/run/model_setup.js';
import { embedInputs, readEmbedInputs } from '../src/run/embed_run.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { DatasetError, type PairedItem } from '../src/data/paired.js';

const { dir, annotations } = useCliFixture();
const pluginDir = join(dir, 'plugins');
const pluginFile = join(pluginDir, 'tone.mjs');
const manifest = join(dir, 'tones.jsonl');
const runA = join(dir, 'run-tone');
const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];
const SHAPES = ['square', 'stripe', 'dot', 'frame'];
const TONE_DIM = COLOURS.length + SHAPES.length;

/** The tone of an image of the fixture: its colour and shape, one-hot. */
function toneOf(file: string): number[] {
  const [colour, shape] = file.replace(/\.png$/, '').split('-');
  return [...COLOURS.map((c) => (c === colour ? 1 : 0)), ...SHAPES.map((s) => (s === shape ? 1 : 0))];
}

// The plug-in module, as a user would write it against the package (here: the built dist/).
const PLUGIN = (library: string, zod: string): string => `
import { nn, randn, registerModality, tensor, tidy } from '${library}';
import { z } from '${zod}';

const toneSchema = z.strictObject({
  hidden: z.number().int().positive().default(8),
  featureDim: z.number().int().positive().default(8),
  noiseStd: z.number().min(0).default(0.1),
});

class ToneModality {
  name = 'tone';
  constructor(settings, dim) {
    this.settings = settings;
    this.dim = dim;
  }
  get featureDim() {
    return this.settings.featureDim;
  }
  async collate(items) {
    items.forEach((t, i) => {
      if (!Array.isArray(t) || t.length !== this.dim) throw new RangeError('tone item ' + i + ': expected ' + this.dim + ' numbers');
    });
    return tensor(new Float32Array(items.flat()), { shape: [items.length, this.dim] });
  }
  views(batch, generator) {
    const noisy = () => tidy(() => batch.add(randn(batch.shape, { generator }).mul(this.settings.noiseStd)));
    return [noisy(), noisy()];
  }
  evalInput(batch) {
    return batch;
  }
  createEncoder() {
    const { hidden, featureDim } = this.settings;
    return new nn.Sequential(new nn.Linear(this.dim, hidden), new nn.ReLU(), new nn.Linear(hidden, featureDim));
  }
  toJSON() {
    return { name: 'tone', settings: { ...this.settings, dim: this.dim } };
  }
  async close() {}
}

registerModality({
  name: 'tone',
  configSchema: toneSchema,
  rawItems: (item) => (item.extra?.tone === undefined ? [] : [item.extra.tone]),
  async fit(settings, items) {
    return new ToneModality(toneSchema.parse(settings), items[0].length);
  },
  restore(spec) {
    const { dim, ...settings } = spec.settings;
    return new ToneModality(toneSchema.parse(settings), dim);
  },
});
`;

/** The plug-in, a config naming it and the manifest, written once the fixture's data set is there (on first use). */
let written = false;
function setUp(): void {
  if (written) return;
  written = true;
  mkdirSync(pluginDir);
  const library = pathToFileURL(resolve('dist', 'src', 'index.js')).href;
  writeFileSync(pluginFile, PLUGIN(library, import.meta.resolve('zod')));
  // A config beside the plug-in that names it relative to itself.
  writeFileSync(join(pluginDir, 'run.yaml'), 'plugins: [./tone.mjs]\ntone:\n  featureDim: 6\n');
  const coco = JSON.parse(readFileSync(annotations, 'utf8')) as {
    images: { id: number; file_name: string }[];
    annotations: { image_id: number; caption: string }[];
  };
  const lines = coco.images.map((image) =>
    JSON.stringify({
      id: image.file_name,
      image: `images/${image.file_name}`,
      text: coco.annotations.filter((a) => a.image_id === image.id).map((a) => a.caption),
      tone: toneOf(image.file_name),
    }),
  );
  // Items with only the plug-in's field: they train the tone's own terms and are kept by the parser
  // and the loader because the tone is a registered modality.
  const toneOnly = ['red-square', 'blue-dot', 'green-frame', 'purple-stripe'].map((name) =>
    JSON.stringify({ id: `tone-only-${name}`, tone: toneOf(`${name}.png`) }),
  );
  writeFileSync(manifest, `${[...lines, ...toneOnly].join('\n')}\n`);
}

const data = (): string[] => {
  setUp();
  return ['--data', `jsonl:${manifest}`];
};
const json = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));
const losses = (run: string): number[] =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);

test('a modality from a --plugin module trains, with its own config section and the plug-in recorded in the run', () => {
  // Relative to the working folder, as a user types it.
  const plugin = relative(process.cwd(), pluginFile);
  const r = cli('train', ...data(), '--plugin', plugin, '--steps', '4', '--stop-after', '2', '--out', runA, ...TINY, 'tone.featureDim=6');
  assert.equal(r.status, 0, r.stderr);
  const config = json(join(runA, 'config.json')) as { plugins: string[]; tone: unknown };
  assert.deepEqual(config.plugins, [pluginFile]);
  assert.deepEqual(config.tone, { hidden: 8, featureDim: 6, noiseStd: 0.1, freeze: false, views: true });
  const specs = json(join(runA, 'modalities.json')) as { name: string; settings: Record<string, unknown> }[];
  assert.deepEqual(
    specs.map((s) => s.name),
    ['image', 'text', 'tone'],
  );
  assert.deepEqual(specs[2]!.settings, { hidden: 8, featureDim: 6, noiseStd: 0.1, dim: TONE_DIM });
  assert.equal(losses(runA).length, 2);
  // The tone rows train: its own BYOL term and its cross terms with the other two are in the loss.
  const first = JSON.parse(readFileSync(join(runA, 'metrics.jsonl'), 'utf8').split('\n')[0]!) as { terms: Record<string, number> };
  for (const term of ['cross/tone->image', 'cross/text->tone']) assert.ok(first.terms[term]! > 0, `${term}: ${first.terms[term]}`);
});

test('items with only a plug-in modality are kept by the JSONL parser and the loader, and refused naming the fields without it', async () => {
  setUp();
  const kept = loadJsonlManifest(manifest, { modalityFields: ['image', 'text', 'vector', 'tone'] });
  const toneOnly = kept.items.filter((i) => i.id.startsWith('tone-only-'));
  assert.equal(toneOnly.length, 4);
  assert.deepEqual(toneOnly[0]!.extra, { tone: toneOf('red-square.png') });
  assert.equal(toneOnly[0]!.image, undefined);
  assert.throws(
    () => loadJsonlManifest(manifest),
    (err: Error) =>
      err instanceof DatasetError && /:25 \(id "tone-only-red-square"\): has none of "image", "text" and "vector"/.test(err.message),
  );
  // The loader asks the run's modalities: with the tone among them the tone-only items are batched.
  const hasTone = (item: PairedItem): boolean => item.captions.length > 0 || item.extra?.tone !== undefined;
  const loader = new ManifestLoader(kept, {
    batchSize: 28,
    size: 8,
    shuffle: false,
    dropLast: false,
    poolSize: 1,
    hasOtherModality: hasTone,
  });
  const seen: string[] = [];
  for await (const batch of loader.epoch(0)) {
    seen.push(...batch.indices.map((i) => kept.items[i]!.id));
    batch.image?.data.dispose();
  }
  await loader.close();
  assert.deepEqual(
    seen,
    kept.items.map((i) => i.id),
  );
  assert.throws(
    () => new ManifestLoader(kept, { batchSize: 4, size: 8 }),
    /items\[24\] \(id "tone-only-red-square"\): has no image and no other modality/,
  );
});

test("the plug-in's schema validates its section; without the plug-in the section is an unknown key", () => {
  const plugin = ['--plugin', pluginFile];
  const out = ['--steps', '1', '--out', join(dir, 'never'), ...TINY];
  const negative = cli('train', ...data(), ...plugin, ...out, 'tone.noiseStd=-1');
  assert.equal(negative.status, 2, negative.stderr);
  assert.match(negative.stderr, /config: tone\.noiseStd: .*>=0/);
  const unknown = cli('train', ...data(), ...plugin, ...out, 'tone.width=3');
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /unknown key 'tone\.width'; allowed here: hidden, featureDim, noiseStd/);
  const without = cli('train', ...data(), ...out, 'tone.hidden=3');
  assert.equal(without.status, 2, without.stderr);
  assert.match(without.stderr, /unknown key 'tone'/);
  const missing = cli('train', ...data(), '--plugin', join(pluginDir, 'absent.mjs'), ...out);
  assert.equal(missing.status, 2, missing.stderr);
  assert.match(missing.stderr, /plug-in .*absent\.mjs: cannot import it/);
});

test('--resume alone reloads the plug-in and ends where a run from a config naming it ends', () => {
  const resumed = cli('train', '--out', runA, '--resume', '--threads', '1');
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* at step 2 of 4/);
  // The same run uninterrupted, its plug-in named by a config file (relative to that file).
  const runB = join(dir, 'run-tone-config');
  const straight = cli('train', ...data(), '--config', join(pluginDir, 'run.yaml'), '--steps', '4', '--out', runB, ...TINY);
  assert.equal(straight.status, 0, straight.stderr);
  assert.deepEqual(json(join(runB, 'config.json')), json(join(runA, 'config.json')));
  const a = losses(runA);
  assert.equal(a.length, 4);
  assert.deepEqual(a, losses(runB));
});

test('eval and embed --modality tone load the run with its plug-in, no flag needed', async () => {
  const evaluated = cli('eval', '--checkpoint', runA, ...data(), '--json', '--threads', '1');
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const metrics = JSON.parse(evaluated.stdout) as { n_images: number; n_captions: number; rsum: number };
  assert.equal(metrics.n_images, 24);
  assert.equal(metrics.n_captions, 48);
  assert.ok(Number.isFinite(metrics.rsum));

  const input = join(dir, 'queries.jsonl');
  const queries = [
    { id: 'red square', tone: toneOf('red-square.png') },
    { id: 'blue dot', tone: toneOf('blue-dot.png') },
    { id: 'red square again', tone: toneOf('red-square.png') },
  ];
  writeFileSync(input, queries.map((q) => JSON.stringify(q)).join('\n'));
  const out = join(dir, 'tones-embedded.jsonl');
  const embedded = cli('embed', '--checkpoint', runA, '--modality', 'tone', '--input', input, '--out', out, '--space', 'projection');
  assert.equal(embedded.status, 0, embedded.stderr);
  const rows = readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id: string; embedding: number[] });
  assert.deepEqual(
    rows.map((r) => r.id),
    queries.map((q) => q.id),
  );
  for (const r of rows) {
    assert.equal(r.embedding.length, 16); // model.projectionDim of TINY
    assert.ok(Math.abs(Math.hypot(...r.embedding) - 1) < 1e-5);
  }
  assert.deepEqual(rows[2]!.embedding, rows[0]!.embedding);
  assert.notDeepEqual(rows[1]!.embedding, rows[0]!.embedding);

  // The same embeddings from the library, with the plug-in imported from the run's config.
  const loaded = await loadModelWithPlugins(runA);
  const { embeddings } = await embedInputs(loaded, 'tone', readEmbedInputs('tone', input), { space: 'projection' });
  const library = embeddings.toFlatArray();
  rows.forEach((r, i) => r.embedding.forEach((v, j) => assert.ok(Math.abs(v - library[i * 16 + j]!) < 1e-6, `row ${i}, value ${j}`)));
  embeddings.dispose();
  await Promise.all(loaded.modalities.map((m) => m.close()));

  const image = cli('embed', '--checkpoint', runA, '--modality', 'tone', '--input', join(dir, 'images', 'red-square.png'));
  assert.equal(image.status, 1);
  assert.match(image.stderr, /red-square\.png: an image file, not tone input; use --modality image for images/);
});
