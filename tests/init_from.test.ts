// Starting a run from another run (train.initFrom, `--init-from`): its towers and tokenizer become
// the new run's, locked towers stay bitwise those of the source, heads start fresh unless
// train.initHeads, and every mismatch is an error naming the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randn, type Tensor } from '../src/index.js';
import { resolveCheckpoint } from '../src/run/checkpoint.js';
import { buildModel, restoreModalities } from '../src/run/model_setup.js';
import { initModelFrom, readInitSource } from '../src/run/init_from.js';
import { parseConfig } from '../src/config/load.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import { withName } from '../src/modalities/modality.js';
import { cli, TINY, useCliFixture } from './cli_fixture.js';

const fixture = useCliFixture();

const part = (tensors: Map<string, Tensor>, prefix: string): Record<string, number[]> =>
  Object.fromEntries([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t.toFlatArray()]));

test('--init-from with locked towers: the new run holds the source run’s towers bitwise, its tokenizer, and fresh heads', () => {
  const source = fixture.trainedRun();
  const out = join(fixture.dir, 'run-init');
  const r = cli(
    'train',
    ...fixture.data,
    '--init-from',
    source,
    '--steps',
    '2',
    '--out',
    out,
    ...TINY,
    'image.freeze=true',
    'text.freeze=true',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /initialised image, text from .*step-000000003\.safetensors/);
  const before = resolveCheckpoint(source).tensors;
  const after = resolveCheckpoint(out).tensors;
  for (const name of ['image', 'text']) {
    const tower = `model.online.encoders.${name}.0.`;
    assert.ok(Object.keys(part(before, tower)).length > 0);
    assert.deepEqual(part(after, tower), part(before, tower), `the ${name} tower`);
  }
  assert.notDeepEqual(part(after, 'model.online.projectors.'), part(before, 'model.online.projectors.'));
  assert.equal(readFileSync(join(out, 'tokenizer.json'), 'utf8'), readFileSync(join(source, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { train: { initFrom: string } };
  assert.equal(config.train.initFrom, source);
});

test('--init-from refuses a tower built otherwise, naming the setting and both values', () => {
  const source = fixture.trainedRun();
  const r = cli(
    'train',
    ...fixture.data,
    '--init-from',
    source,
    '--steps',
    '2',
    '--out',
    join(fixture.dir, 'run-bad'),
    ...TINY,
    'text.dModel=32',
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /train\.initFrom: text\.dModel is 32 here but 16 in .*; the towers must be built alike/);
});

test('initModelFrom names missing, unexpected and wrong-shape keys; initHeads copies every online weight and starts the target equal', () => {
  const source = readInitSource(fixture.trainedRun());
  const config = parseConfig(source.checkpoint.config);
  const model = buildModel(config, restoreModalities(source.checkpoint.modalities));
  const tensors = source.checkpoint.tensors;
  const original = new Map(tensors);
  tensors.delete('model.online.encoders.image.0.block1.0.weight');
  tensors.set('model.online.encoders.image.0.extra', randn([2]));
  tensors.set('model.online.encoders.image.0.block2.1.weight', randn([3]));
  assert.throws(
    () => initModelFrom(model, source, false),
    (err: Error) =>
      /missing: model\.online\.encoders\.image\.0\.block1\.0\.weight/.test(err.message) &&
      /unexpected: model\.online\.encoders\.image\.0\.extra/.test(err.message) &&
      /wrong shape: model\.online\.encoders\.image\.0\.block2\.1\.weight is \[3\] there, \[64\] here/.test(err.message),
  );
  source.checkpoint.tensors = original;
  initModelFrom(model, source, true);
  const state = model.stateDict();
  for (const [key, t] of state) {
    if (!key.startsWith('online.')) continue;
    assert.deepEqual(t.toFlatArray(), original.get(`model.${key}`)!.toFlatArray(), key);
    assert.deepEqual(
      state.get(`target.${key.slice('online.'.length)}`)?.toFlatArray() ?? t.toFlatArray(),
      t.toFlatArray(),
      `target of ${key}`,
    );
  }
});

test('initHeads with a modality the source lacks: every shared weight is the source’s, the new tower and its statistics are fresh', async () => {
  const source = readInitSource(fixture.trainedRun());
  const config = parseConfig(source.checkpoint.config);
  const width = source.checkpoint.tensors.get('model.online.projectors.shared.0.weight')!.shape[1]!;
  const vectors = Array.from({ length: 8 }, (_, i) => [i, 1, -i]);
  const vec = withName(await vectorModality.fit({ featureDim: width, hiddenDims: [] }, vectors), 'vec');
  const model = buildModel(config, [...restoreModalities(source.checkpoint.modalities), vec]);
  const fresh = new Map([...model.stateDict()].map(([k, t]) => [k, t.toFlatArray()]));
  assert.deepEqual(initModelFrom(model, source, true), ['image', 'text']);
  const own = (key: string): boolean => key.includes('.encoders.vec.') || key.includes('.statistics.vec.');
  for (const [key, t] of model.stateDict()) {
    const expected = own(key)
      ? fresh.get(key)!
      : source.checkpoint.tensors.get(`model.online.${key.replace(/^(online|target)\./, '')}`)!.toFlatArray();
    assert.deepEqual(t.toFlatArray(), expected, key);
  }
  assert.ok([...model.stateDict().keys()].filter(own).length >= 8, 'the new modality has a tower and statistics in both heads');
  // A key of a modality the source has is still required.
  source.checkpoint.tensors.delete('model.online.projectors.shared.1.statistics.text.running_mean');
  assert.throws(() => initModelFrom(model, source, true), /missing: model\.online\.projectors\.shared\.1\.statistics\.text\.running_mean/);
});
