// The byol-align command end to end on a tiny COCO-format data set written here: training with
// checkpoints, exact resume (2N steps straight = N, then --resume for N more, bitwise), eval --json
// against the library, embed in three formats, and bad input that exits non-zero with a clear
// message and leaves no files. Export and report have their own test files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadCheckpoint, listCheckpoints } from '../src/run/checkpoint.js';
import { loadModel } from '../src/run/model_setup.js';
import { evaluatePaired } from '../src/run/evaluate_run.js';
import type { RetrievalEvaluation, RetrievalSpace } from '../src/align/evaluate.js';
import { loadDataSource } from '../src/data/source.js';
import { embedInputs, readEmbedInputs } from '../src/run/embed_run.js';
import { parseSafetensors } from '../src/engine/safetensors.js';
import { cli, TINY, trainAndSignal, useCliFixture } from './cli_fixture.js';

const { dir, images, annotations, data, trainedRun } = useCliFixture();
// Every tensor of a checkpoint: weights, EMA target, BatchNorm statistics and optimizer state.
const checkpointTensors = (file: string): Record<string, number[]> => {
  const { tensors } = loadCheckpoint(file);
  return Object.fromEntries([...tensors].map(([k, t]) => [k, t.toFlatArray()]));
};

test('train writes config, tokenizer, metrics and the last K checkpoints; eval --json matches the library', async () => {
  const out = join(dir, 'run-a');
  const r = cli('train', ...data, '--steps', '6', '--out', out, ...TINY);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /finished; checkpoint .*step-000000006\.safetensors/);
  for (const f of ['config.json', 'modalities.json', 'tokenizer.json', 'metrics.jsonl']) assert.ok(existsSync(join(out, f)), f);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    metrics.map((m) => m.step),
    [1, 2, 3, 4, 5, 6],
  );
  assert.ok(metrics.every((m) => Number.isFinite(m.loss) && m.terms['cross/image->text'] > 0));
  // Checkpoints every 2 steps, the last 2 kept.
  assert.deepEqual(
    listCheckpoints(join(out, 'checkpoints')).map((f) => basename(f)),
    ['step-000000004.safetensors', 'step-000000006.safetensors'],
  );

  const e = cli('eval', '--checkpoint', out, '--data', `coco:${annotations}`, '--images', images, '--json', '--threads', '1');
  assert.equal(e.status, 0, e.stderr);
  const json = JSON.parse(e.stdout);
  assert.deepEqual(Object.keys(json), [
    'i2t',
    't2i',
    'rsum',
    'n_images',
    'n_captions',
    'space',
    'chance',
    'directions',
    'rsum_all',
    'chance_rsum_all',
    'checkpoint',
    'data',
  ]);
  // Two modalities: two directions, the same numbers as COCO's image–text summary.
  assert.deepEqual(
    json.directions.map((d: { query: string; gallery: string }) => `${d.query}>${d.gallery}`),
    ['image>text', 'text>image'],
  );
  assert.deepEqual(json.directions[0].r10, json.i2t.r10);
  assert.deepEqual(json.directions[1].chance, json.chance.t2i);
  assert.equal(json.directions[1].n_queries, 48);
  assert.equal(json.rsum_all, json.rsum);
  assert.equal(json.space, 'projection'); // no validation data: the projections
  assert.ok(json.chance.rsum > 0 && json.chance.rsum < json.rsum + 100);
  assert.deepEqual(Object.keys(json.i2t), ['r1', 'r5', 'r10', 'medr', 'meanr']);
  assert.equal(json.n_images, 24);
  assert.equal(json.n_captions, 48);
  const { model, modalities, config } = loadModel(out);
  const dataset = loadDataSource(`coco:${annotations}`, { images });
  const alone = async (space: RetrievalSpace): Promise<RetrievalEvaluation> =>
    (await evaluatePaired(model, modalities, dataset, { size: config.image.size, channels: 3, spaces: [space] }))[0]!;
  const direct = await alone('projection');
  assert.ok(direct.metrics, 'image–text summary');
  assert.equal(json.rsum, direct.metrics.rsum);
  assert.deepEqual(json.chance, direct.chance);
  assert.deepEqual(json.i2t.r10, direct.metrics.i2t.r10);
  assert.deepEqual(json.t2i.medr, direct.metrics.t2i.medr);
  // Every space from one pass over the data: one JSON line each, as each space measures alone.
  const all = cli(
    'eval',
    '--checkpoint',
    out,
    '--data',
    `coco:${annotations}`,
    '--images',
    images,
    '--json',
    '--space',
    'all',
    '--threads',
    '1',
  );
  assert.equal(all.status, 0, all.stderr);
  const lines = all.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { space: RetrievalSpace; rsum: number });
  assert.deepEqual(
    lines.map((l) => l.space),
    ['projection', 'encoder', 'pairing'],
  );
  for (const line of lines) assert.equal(line.rsum, (await alone(line.space)).metrics?.rsum, line.space);
  const bad = cli('eval', '--checkpoint', out, '--data', `coco:${annotations}`, '--images', images, '--space', 'projection,nearest');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--space must be one or more of projection, encoder, pairing \(or all\), got 'nearest'/);
});

test('N steps, then --resume for N more, gives the weights of 2N steps straight, bitwise', () => {
  const straight = join(dir, 'straight');
  assert.equal(cli('train', ...data, '--steps', '6', '--out', straight, ...TINY).status, 0);
  const split = join(dir, 'split');
  const first = cli('train', ...data, '--steps', '6', '--stop-after', '4', '--out', split, ...TINY);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /stopped at step 4 of 6 \(continue with --resume\)/);
  const second = cli('train', ...data, '--steps', '6', '--resume', '--out', split, ...TINY);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, /resuming .*step-000000004\.safetensors at step 4 of 6/);
  const a = checkpointTensors(join(straight, 'checkpoints', 'step-000000006.safetensors'));
  const b = checkpointTensors(join(split, 'checkpoints', 'step-000000006.safetensors'));
  assert.deepEqual(Object.keys(b), Object.keys(a));
  for (const key of Object.keys(a)) assert.deepEqual(b[key], a[key], key);
  // The metrics of the resumed run are those of the straight one (timings aside).
  const losses = (run: string): number[] =>
    readFileSync(join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).loss);
  assert.deepEqual(losses(split), losses(straight));
});

test('resume refuses a checkpoint of another config, and training over checkpoints needs --resume', () => {
  const out = join(dir, 'run-c');
  assert.equal(cli('train', ...data, '--steps', '6', '--stop-after', '2', '--out', out, ...TINY).status, 0);
  const again = cli('train', ...data, '--steps', '6', '--out', out, ...TINY);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds checkpoints; pass --resume/);
  const other = cli('train', ...data, '--steps', '6', '--resume', '--out', out, ...TINY, 'model.tauBase=0.9');
  assert.equal(other.status, 1);
  assert.match(other.stderr, /cannot resume from .*step-000000002\.safetensors: its config differs in model\.tauBase/);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-000000002.safetensors']);
});

test('bad input exits non-zero with a clear message and leaves no files', () => {
  const cases: [string[], RegExp][] = [
    [['train', ...data, '--out', join(dir, 'bad1'), 'model.sharedHead=true'], /unknown key 'model\.sharedHead'; allowed here: sharedHeads/],
    [['train', ...data, '--out', join(dir, 'bad2'), 'train.batchSize=many'], /train\.batchSize: .*expected number/],
    [['train', '--data', `coco:${join(dir, 'missing.json')}`, '--images', images, '--out', join(dir, 'bad3')], /missing\.json/],
    [['train', '--out', join(dir, 'bad4')], /no training data; give --data/],
    [
      ['train', ...data, '--config', join(dir, 'none.yaml'), '--out', join(dir, 'bad5')],
      /none\.yaml: cannot read the config file \(ENOENT\)/,
    ],
  ];
  // Config mistakes exit 2 like usage mistakes; data that cannot be read is a failed run (1).
  const exitCodes = [2, 2, 1, 2, 2];
  for (const [index, [args, message]] of cases.entries()) {
    const r = cli(...args);
    assert.equal(r.status, exitCodes[index], args.join(' '));
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  for (const name of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5']) assert.equal(existsSync(join(dir, name)), false, name);
  const usage = cli('train', '--epochs', 'two');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--epochs must be a positive integer, got 'two'/);
  assert.equal(cli('frobnicate').status, 2);
});

test('a truncated or altered checkpoint is refused by its checksum; a run directory falls back to the last good one', () => {
  const out = join(dir, 'run-d');
  assert.equal(cli('train', ...data, '--steps', '4', '--out', out, ...TINY).status, 0);
  const last = join(out, 'checkpoints', 'step-000000004.safetensors');
  const bytes = readFileSync(last);
  const evalArgs = (checkpoint: string): string[] => [
    'eval',
    '--checkpoint',
    checkpoint,
    '--data',
    `coco:${annotations}`,
    '--images',
    images,
    '--json',
  ];

  const altered = Buffer.from(bytes);
  altered[altered.length - 100]! ^= 0xff; // one flipped byte in the tensor data
  writeFileSync(last, altered);
  const r1 = cli(...evalArgs(last));
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /step-000000004\.safetensors: checksum mismatch, the file is corrupted/);

  writeFileSync(last, bytes.subarray(0, bytes.length - 1000)); // truncated
  const r2 = cli(...evalArgs(last));
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /not a readable checkpoint, truncated or corrupted/);
  // Through the run directory, the broken newest checkpoint is reported and step 2 is used.
  const r3 = cli(...evalArgs(out));
  assert.equal(r3.status, 0, r3.stderr);
  assert.match(r3.stderr, /skipping a broken checkpoint: .*step-000000004/);
});

test('SIGINT during training writes a checkpoint at the current step and exits 130; --resume finishes the run', async () => {
  const out = join(dir, 'run-sigint');
  const { code, stderr } = await trainAndSignal(out, [...data, '--steps', '120', ...TINY, 'train.checkpointEvery=1000'], ['SIGINT']);
  assert.equal(code, 130, stderr);
  assert.match(stderr, /SIGINT: stopping after this step with a checkpoint/);
  const files = listCheckpoints(join(out, 'checkpoints'));
  assert.equal(files.length, 1);
  const step = loadCheckpoint(files[0]!).step;
  assert.ok(step >= 2 && step < 120, `stopped at step ${step}`);
  assert.match(stderr, new RegExp(`stopped at step ${step} of 120`));
  const resumed = cli('train', ...data, '--steps', '120', '--resume', '--out', out, ...TINY, 'train.checkpointEvery=1000', '--quiet');
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /finished; checkpoint .*step-000000120\.safetensors/);
});

// ---- embed and export, on a run trained once for them ----
test('embed writes l2-normalised embeddings as JSONL, .npy and .safetensors, equal to the library’s', async () => {
  const run = trainedRun();
  const npy = join(dir, 'images.npy');
  const r = cli(
    'embed',
    '--checkpoint',
    run,
    '--modality',
    'image',
    '--input',
    images,
    '--out',
    npy,
    '--space',
    'projection',
    '--threads',
    '1',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote 24 image embeddings of width 16 \(projection space\)/);
  // .npy: the 128-byte header of a float32 [24, 16] array, then the values.
  const bytes = readFileSync(npy);
  assert.equal(bytes.subarray(0, 6).toString('latin1'), '\x93NUMPY');
  assert.match(bytes.subarray(10, 128).toString('latin1'), /'descr': '<f4', 'fortran_order': False, 'shape': \(24, 16\)/);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 128, bytes.byteOffset + bytes.length));
  assert.equal(values.length, 24 * 16);
  const ids = readFileSync(`${npy}.ids.txt`, 'utf8').trim().split('\n');
  assert.equal(ids[0], 'blue-dot.png'); // sorted relative paths
  for (let i = 0; i < 24; i++) {
    const norm = Math.hypot(...values.subarray(i * 16, (i + 1) * 16));
    assert.ok(Math.abs(norm - 1) < 1e-5, `row ${i} has norm ${norm}`);
  }
  const loaded = loadModel(run);
  const direct = await embedInputs(loaded, 'image', readEmbedInputs('image', images), { space: 'projection' });
  assert.deepEqual(Array.from(values), Array.from(new Float32Array(direct.embeddings.toFlatArray())));
  // Without --space: the space the run measured best at validation, recorded in its checkpoint.
  const best = join(dir, 'images-best.npy');
  const b = cli('embed', '--checkpoint', run, '--modality', 'image', '--input', images, '--out', best, '--threads', '1');
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, new RegExp(`\\(${loaded.retrievalSpace} space\\)`));
  const bestDirect = await embedInputs(loaded, 'image', readEmbedInputs('image', images));
  assert.equal(bestDirect.space, loaded.retrievalSpace);
  assert.deepEqual(
    Array.from(readFileSync(best).subarray(128)),
    Array.from(new Uint8Array(new Float32Array(bestDirect.embeddings.toFlatArray()).buffer)),
  );

  // Text: a .txt file to stdout as JSONL, and the same texts from .jsonl to .safetensors.
  const txt = join(dir, 'queries.txt');
  writeFileSync(txt, 'a red square\n\nstripe in blue\n');
  const t = cli('embed', '--checkpoint', run, '--modality', 'text', '--input', txt);
  assert.equal(t.status, 0, t.stderr);
  const lines = t.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.id),
    ['1', '3'],
  );
  const jsonl = join(dir, 'queries.jsonl');
  writeFileSync(jsonl, '{"id": "q1", "text": "a red square"}\n{"id": "q2", "text": "stripe in blue"}\n');
  const st = join(dir, 'queries.safetensors');
  assert.equal(cli('embed', '--checkpoint', run, '--modality', 'text', '--input', jsonl, '--out', st).status, 0);
  const { tensors, metadata } = parseSafetensors(readFileSync(st));
  assert.deepEqual(JSON.parse(metadata.ids!), ['q1', 'q2']);
  const fromSafetensors = tensors.get('embeddings')!.toFlatArray();
  const width = lines[0].embedding.length; // the run's space: the encoder's width or the projection's
  assert.deepEqual(tensors.get('embeddings')!.shape, [2, width]);
  assert.deepEqual(fromSafetensors.slice(0, width), lines[0].embedding);
  assert.deepEqual(fromSafetensors.slice(width), lines[1].embedding);
});

test('embed refuses input that is not of the modality, and a bad --out, writing nothing', async () => {
  const run = trainedRun();
  const out = join(dir, 'never.jsonl');
  const cases: [string[], number, RegExp][] = [
    [
      ['--modality', 'text', '--input', join(images, 'red-dot.png')],
      1,
      /red-dot\.png: an image file, not text input; use --modality image/,
    ],
    [['--modality', 'image', '--input', annotations], 1, /captions\.json is not a PNG, JPEG, WebP or GIF image/],
    [['--modality', 'text', '--input', images], 1, /a folder; --modality text reads a \.txt or \.jsonl file/],
    [['--modality', 'vector', '--input', annotations], 1, /--modality vector reads a \.jsonl file/],
    [['--modality', 'text', '--input', annotations], 1, /--modality text reads a \.txt file/],
  ];
  for (const [args, status, message] of cases) {
    const r = cli('embed', '--checkpoint', run, ...args, '--out', out);
    assert.equal(r.status, status, args.join(' '));
    assert.match(r.stderr, message);
  }
  const badOut = cli('embed', '--checkpoint', run, '--modality', 'image', '--input', images, '--out', join(dir, 'x.csv'));
  assert.equal(badOut.status, 2);
  assert.match(badOut.stderr, /--out must end in \.jsonl, \.npy or \.safetensors/);
  assert.equal(existsSync(out), false);
  // The model has no vector modality.
  const vectors = join(dir, 'v.jsonl');
  writeFileSync(vectors, '{"id": 1, "vector": [1, 2]}\n');
  const noVector = cli('embed', '--checkpoint', run, '--modality', 'vector', '--input', vectors);
  assert.equal(noVector.status, 1);
  assert.match(noVector.stderr, /the model has no 'vector' modality; it has image, text/);
});

test('eval reads the same pairs from COCO, Karpathy and JSONL files and gives the same metrics', async () => {
  const run = trainedRun();
  const coco = JSON.parse(readFileSync(annotations, 'utf8')) as {
    images: { id: number; file_name: string }[];
    annotations: { image_id: number; caption: string }[];
  };
  const captionsOf = (id: number): string[] => coco.annotations.filter((a) => a.image_id === id).map((a) => a.caption);
  const karpathy = join(dir, 'dataset_test.json');
  writeFileSync(
    karpathy,
    JSON.stringify({
      images: coco.images.map((im, imgid) => ({
        filename: im.file_name,
        split: 'test',
        imgid,
        sentences: captionsOf(im.id).map((raw) => ({ raw })),
      })),
    }),
  );
  const manifest = join(dir, 'pairs.jsonl');
  writeFileSync(
    manifest,
    coco.images.map((im) => JSON.stringify({ id: im.id, image: join(images, im.file_name), text: captionsOf(im.id) })).join('\n'),
  );
  const metrics = (spec: string): unknown => {
    const r = cli('eval', '--checkpoint', run, '--data', spec, '--images', images, '--json', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    const { data: source, ...rest } = JSON.parse(r.stdout) as { data: string };
    assert.equal(source, spec);
    return rest;
  };
  const fromCoco = metrics(`coco:${annotations}`);
  assert.deepEqual(metrics(`karpathy:${karpathy}#test`), fromCoco);
  assert.deepEqual(metrics(`jsonl:${manifest}`), fromCoco);
  const bad = cli('eval', '--checkpoint', run, '--data', `karpathy:${karpathy}#dev`, '--images', images);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /the Karpathy split must be train, val or test, got 'dev'/);
});
