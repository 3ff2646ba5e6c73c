// Pretrained BERT-family text towers (issue 16): a small BERT written from the published
// architecture by tests/fixtures/pretrained_text.py (run here with the Python that has torch), its
// weights, config.json and tokenizer.json loaded by byol-align, against the script's own
// tokenization and forward pass; and the errors a folder that does not fit gives.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator, loadSafetensors, noGrad, saveSafetensors, setNumThreads, tensor, zeros, type Tensor } from '../src/index.js';
import {
  BertConfigError,
  BertEncoder,
  PretrainedTextError,
  TextTokenizer,
  bertConfig,
  loadBertWeights,
  readPretrainedTextFolder,
  textModality,
  textView,
  textViewConfig,
  type TextModality,
} from '../src/modalities/text/index.js';
import { parseConfig } from '../src/config/load.js';
import { pythonWithTorch } from './python_torch.js';
import { cli } from './cli_fixture.js';
import { assertClose } from './helpers.js';
import { scratchDir } from './scratch_dir.js';

setNumThreads(1);

// This file runs as dist/tests/*.js; the script stays in tests/fixtures/ beside the sources.
const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const SCRIPT = join(ROOT, 'tests', 'fixtures', 'pretrained_text.py');

interface Reference {
  sentences: string[];
  max_length: number;
  ids: number[][];
  attention_mask: number[][];
  hidden: number[][][];
  mean: number[][];
  cls: number[][];
}

const work = scratchDir('pretrained-text-');
let folder: string;
let reference: Reference;

before(() => {
  folder = join(work, 'bert');
  const run = spawnSync(pythonWithTorch(), [SCRIPT, folder], { encoding: 'utf8' });
  assert.equal(run.error, undefined, `could not start ${pythonWithTorch()}: ${String(run.error)}`);
  assert.equal(run.status, 0, `${SCRIPT} failed:\n${run.stderr}`);
  reference = JSON.parse(readFileSync(join(folder, 'reference.json'), 'utf8')) as Reference;
});

/** A copy of the fixture folder in which `edit` may change the files. */
function variant(name: string, edit: (dir: string) => void): string {
  const dir = join(work, name);
  cpSync(folder, dir, { recursive: true });
  edit(dir);
  return dir;
}

/** Rewrites a folder's model.safetensors with its tensors renamed, left out, or added by `change`. */
function rewriteWeights(dir: string, change: (tensors: Map<string, Tensor>) => Map<string, Tensor>): void {
  const file = join(dir, 'model.safetensors');
  const { tensors } = loadSafetensors(file);
  saveSafetensors(file, change(tensors));
}

function loadedEncoder(options: ConstructorParameters<typeof BertEncoder>[1] = {}): BertEncoder {
  const { config, weightsFile } = readPretrainedTextFolder(folder);
  const encoder = new BertEncoder(config, options);
  loadBertWeights(encoder, weightsFile);
  return encoder.eval();
}

const ids = (): Tensor => tensor(reference.ids, { dtype: 'int64' });

test('the tokenizer.json gives the reference tokenizer ids and attention mask, truncated with [SEP] kept and padded to the longest', async () => {
  const tokenizer = TextTokenizer.load(join(folder, 'tokenizer.json'));
  const batch = await tokenizer.encodeBatch(reference.sentences, reference.max_length, { padding: 'longest' });
  assert.deepEqual(batch.ids.toArray(), reference.ids);
  assert.deepEqual(batch.attentionMask.toArray(), reference.attention_mask);
  assert.deepEqual(
    [...batch.lengths],
    reference.attention_mask.map((row) => row.reduce((a, b) => a + b, 0)),
  );
  // The file fixes padding to 128 as all-MiniLM-L6-v2's does; one text alone is not padded.
  assert.deepEqual(
    await tokenizer.encode('A red car.'),
    reference.ids[0]!.filter((_, j) => reference.attention_mask[0]![j] === 1),
  );
  assert.deepEqual(tokenizer.specialIds, { pad: 0, unk: 5, cls: 6, mask: 8, sep: 7 });
});

test("BertEncoder with the file's weights gives PyTorch's hidden states of every token within 1e-4", () => {
  const encoder = loadedEncoder();
  const hidden = noGrad(() => encoder.hiddenStates(ids()));
  assert.deepEqual(hidden.shape, [5, 12, 32]);
  assertClose(hidden, reference.hidden.flat(2), 1e-4, 0);
});

test("mean and CLS pooling give PyTorch's pooled vectors within 1e-4", () => {
  assertClose(
    noGrad(() => loadedEncoder({ pooling: 'mean' }).forward(ids())),
    reference.mean.flat(),
    1e-4,
    0,
  );
  assertClose(
    noGrad(() => loadedEncoder({ pooling: 'cls' }).forward(ids())),
    reference.cls.flat(),
    1e-4,
    0,
  );
});

test('padding does not change a text: its vector alone equals its vector in the padded batch', () => {
  const encoder = loadedEncoder();
  const row = reference.ids[0]!.filter((_, j) => reference.attention_mask[0]![j] === 1);
  const alone = noGrad(() => encoder.forward(tensor([row], { dtype: 'int64' })));
  assertClose(alone, reference.mean[0]!, 1e-4, 0);
});

test('the text modality with encoder bert: fit reads the folder, collate and the encoder give the reference', async () => {
  const text = (await textModality.fit({ encoder: 'bert', pretrained: folder, maxLength: 12 }, [])) as TextModality;
  assert.equal(text.featureDim, 32);
  const batch = await text.collate(reference.sentences);
  assert.deepEqual(batch.toArray(), reference.ids);
  const encoder = text.createEncoder().eval();
  assertClose(
    noGrad(() => encoder.forward(text.evalInput(batch))),
    reference.mean.flat(),
    1e-4,
    0,
  );
  const cls = (await textModality.fit({ encoder: 'bert', pretrained: folder, maxLength: 12, pooling: 'cls' }, [])) as TextModality;
  assertClose(
    noGrad(() => cls.createEncoder().eval().forward(batch)),
    reference.cls.flat(),
    1e-4,
    0,
  );
});

test("a restored text modality needs no folder: the checkpoint's spec holds tokenizer.json and config.json", async () => {
  const copy = variant('restore', () => {});
  const text = (await textModality.fit({ encoder: 'bert', pretrained: copy, maxLength: 12 }, [])) as TextModality;
  const trained = text.createEncoder().eval();
  const spec = JSON.parse(JSON.stringify(text.toJSON())) as ReturnType<TextModality['toJSON']>;
  rmSync(copy, { recursive: true });
  const restored = textModality.restore(spec) as TextModality;
  const batch = await restored.collate(reference.sentences);
  assert.deepEqual(batch.toArray(), reference.ids);
  const encoder = restored.createEncoder().eval();
  encoder.loadStateDict(trained.stateDict()); // as a checkpoint's weights are loaded
  assertClose(
    noGrad(() => encoder.forward(batch)),
    reference.mean.flat(),
    1e-4,
    0,
  );
});

test("a task model's file (bert. prefix, its head, position_ids, no pooler) loads the same encoder", () => {
  const dir = variant('masked-lm', (d) =>
    rewriteWeights(d, (tensors) => {
      const out = new Map<string, Tensor>();
      for (const [key, t] of tensors) if (!key.startsWith('pooler.')) out.set(`bert.${key}`, t);
      out.set('bert.embeddings.position_ids', tensor([Array.from({ length: 24 }, (_, i) => i)], { dtype: 'int64' }));
      out.set('cls.predictions.bias', zeros([33]));
      return out;
    }),
  );
  const { config } = readPretrainedTextFolder(dir);
  const encoder = new BertEncoder(config);
  loadBertWeights(encoder, join(dir, 'model.safetensors'));
  assertClose(
    noGrad(() => encoder.eval().forward(ids())),
    reference.mean.flat(),
    1e-4,
    0,
  );
});

test('missing and unexpected keys are listed in one error naming the file and each key', () => {
  const dir = variant('keys', (d) =>
    rewriteWeights(d, (tensors) => {
      const out = new Map(tensors);
      out.delete('encoder.layer.1.attention.self.key.bias');
      out.delete('embeddings.token_type_embeddings.weight');
      out.set('encoder.layer.2.output.dense.weight', zeros([32, 64]));
      return out;
    }),
  );
  const file = join(dir, 'model.safetensors');
  const { config } = readPretrainedTextFolder(dir);
  assert.throws(
    () => loadBertWeights(new BertEncoder(config), file),
    (err: Error) =>
      err instanceof PretrainedTextError &&
      err.file === file &&
      err.message.startsWith(file) &&
      /missing keys: .*embeddings\.token_type_embeddings\.weight/.test(err.message) &&
      err.message.includes('encoder.layer.1.attention.self.key.bias') &&
      /unexpected keys: encoder\.layer\.2\.output\.dense\.weight/.test(err.message),
  );
});

test('a weight of the wrong shape is named with both shapes, and nothing is copied', () => {
  const dir = variant('shape', (d) =>
    rewriteWeights(d, (tensors) => new Map(tensors).set('encoder.layer.0.intermediate.dense.weight', zeros([48, 32]))),
  );
  const file = join(dir, 'model.safetensors');
  const { config } = readPretrainedTextFolder(dir);
  const encoder = new BertEncoder(config);
  const before = encoder.stateDict().get('embeddings.word_embeddings.weight')!.clone();
  assert.throws(
    () => loadBertWeights(encoder, file),
    (err: Error) =>
      err instanceof PretrainedTextError &&
      err.message.startsWith(file) &&
      err.message.includes('encoder.layer.0.intermediate.dense.weight is [48, 32], expected [64, 32]'),
  );
  assert.deepEqual(encoder.stateDict().get('embeddings.word_embeddings.weight')!.toArray(), before.toArray());
});

test('a folder without its files names each missing file', async () => {
  const dir = variant('missing', (d) => {
    rmSync(join(d, 'model.safetensors'));
    rmSync(join(d, 'tokenizer.json'));
  });
  await assert.rejects(
    textModality.fit({ encoder: 'bert', pretrained: dir }, []),
    (err: Error) =>
      err instanceof PretrainedTextError &&
      err.message.includes(join(dir, 'model.safetensors')) &&
      err.message.includes(join(dir, 'tokenizer.json')) &&
      !err.message.includes(join(dir, 'config.json')),
  );
  assert.throws(() => readPretrainedTextFolder(join(work, 'nowhere')), /nowhere: text.pretrained must be a folder/);
});

test('a config.json that is not a BERT names the file and the field', () => {
  const json = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.throws(
    () => bertConfig({ ...json, model_type: 'roberta' }, 'x/config.json'),
    (err: Error) => err instanceof BertConfigError && /x\/config\.json: model_type/.test(err.message),
  );
  assert.throws(() => bertConfig({ ...json, hidden_act: 'relu' }, 'x/config.json'), /x\/config\.json: hidden_act is "relu"/);
  assert.throws(() => bertConfig({ ...json, hidden_size: undefined }, 'x/config.json'), /x\/config\.json: hidden_size is missing/);
  assert.throws(() => bertConfig({ ...json, num_attention_heads: 5 }, 'x/config.json'), /must divide hidden_size \(32\)/);
  const dir = variant('bad-config', (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ ...json, intermediate_size: 0 })));
  assert.throws(
    () => readPretrainedTextFolder(dir),
    (err: Error) => err.message.includes(join(dir, 'config.json')) && err.message.includes('intermediate_size'),
  );
});

test('text.maxLength beyond the positions config.json has is refused at fit', async () => {
  await assert.rejects(
    textModality.fit({ encoder: 'bert', pretrained: folder, maxLength: 32 }, []),
    /text\.maxLength 32 .*max_position_embeddings 24/,
  );
});

test('the config: encoder bert needs text.pretrained, and text.pretrained needs encoder bert', () => {
  assert.throws(() => parseConfig({ text: { encoder: 'bert' } }), /text\.pretrained/);
  assert.throws(() => parseConfig({ text: { pretrained: folder } }), /text\.encoder/);
  const config = parseConfig({ text: { encoder: 'bert', pretrained: folder, pooling: 'cls' } });
  assert.equal(config.text.encoder, 'bert');
  assert.equal(config.text.pretrained, folder);
});

test('blocks(): the embeddings, then each layer, holding every parameter once', () => {
  const encoder = loadedEncoder();
  const blocks = encoder.blocks();
  assert.equal(blocks.length, 3);
  assert.equal(blocks[0], encoder.embeddings);
  assert.deepEqual(blocks.slice(1), encoder.layers);
  const inBlocks = blocks.flatMap((b) => b.parameters());
  assert.equal(new Set(inBlocks).size, encoder.parameters().length);
  assert.ok(encoder.parameters().every((p) => inBlocks.includes(p)));
});

test('text views keep [SEP]: never masked or dropped, always right after the text', () => {
  const special = TextTokenizer.load(join(folder, 'tokenizer.json')).specialIds;
  const everything = textViewConfig({
    spanDeletionP: 1,
    spanMaxFraction: 0.5,
    tokenDropoutRate: 0.5,
    shuffleP: 1,
    shuffleWindow: 3,
    maskRate: 0.5,
  });
  const generator = new Generator(3);
  for (let round = 0; round < 20; round++) {
    const rows = textView(ids(), everything, generator, special).toArray() as number[][];
    for (const row of rows) {
      const end = row.indexOf(special.pad) === -1 ? row.length : row.indexOf(special.pad);
      assert.equal(row[0], special.cls);
      assert.equal(row[end - 1], special.sep, `[SEP] ends the text: ${row.join(' ')}`);
      assert.equal(row.filter((id) => id === special.sep).length, 1);
      assert.ok(end >= 3, 'a text token stays');
    }
  }
});

test('a run on the BERT tower exports to PyTorch: the check passes and encode_text equals embed to 1e-4, long texts cut with [SEP] kept', () => {
  // Text + vector items, so that no images are needed; the vectors say which sentence is which.
  const manifest = join(work, 'pairs.jsonl');
  const lines = Array.from({ length: 16 }, (_, i) =>
    JSON.stringify({ id: `p${i}`, text: reference.sentences[i % reference.sentences.length], vector: [i % 5, 1 - (i % 3), 0.5] }),
  );
  writeFileSync(manifest, `${lines.join('\n')}\n`);
  const run = join(work, 'run-bert');
  const model = ['model.projectionHiddenDim=32', 'model.projectionDim=16', 'model.predictionHiddenDim=32', 'train.batchSize=8'];
  const tower = ['text.encoder=bert', `text.pretrained=${folder}`, `text.maxLength=${reference.max_length}`];
  const trained = cli('train', '--data', `jsonl:${manifest}`, '--steps', '2', '--out', run, '--threads', '1', ...model, ...tower);
  assert.equal(trained.status, 0, trained.stderr);
  const out = join(work, 'export-bert');
  const exported = cli('export', '--checkpoint', run, '--out', out);
  assert.equal(exported.status, 0, exported.stderr);
  const check = spawnSync(pythonWithTorch(), [join(ROOT, 'scripts', 'load_export.py'), out], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^text: .*\nvector: /m);

  const captions = join(work, 'captions.txt');
  writeFileSync(captions, reference.sentences.join('\n'));
  const embedded = cli('embed', '--checkpoint', run, '--modality', 'text', '--input', captions, '--threads', '1');
  assert.equal(embedded.status, 0, embedded.stderr);
  const ours = embedded.stdout
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { embedding: number[] }).embedding);
  const code = `import json, sys
sys.path.insert(0, sys.argv[3])
from byol_align_export import load_export
print(json.dumps(load_export(sys.argv[1]).encode_text(json.loads(sys.argv[2])).tolist()))`;
  const py = spawnSync(pythonWithTorch(), ['-c', code, out, JSON.stringify(reference.sentences), join(ROOT, 'python')], {
    encoding: 'utf8',
  });
  assert.equal(py.status, 0, py.stderr);
  const theirs = JSON.parse(py.stdout) as number[][];
  assert.equal(theirs.length, reference.sentences.length);
  theirs.forEach((row, i) => assertClose(row, ours[i]!, 1e-4, 1e-4));
  // The comparison can fail: different sentences embed apart.
  assert.ok(Math.max(...ours[0]!.map((v, j) => Math.abs(v - ours[1]![j]!))) > 1e-3);
});
