// The config schema: defaults, errors that name the key and what is allowed, YAML and JSON files,
// presets, flags and overrides in their order, and docs/config.md generated from the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseConfig, parseOverride, resolveConfig } from '../src/config/load.js';
import { configReference } from '../src/config/docs.js';
import { PRESETS } from '../src/config/presets.js';
import { scratchDir } from './scratch_dir.js';

const dir = scratchDir('byol-config-');
const write = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

test('an empty config gets every default, the paper’s heads and τ among them', () => {
  const config = parseConfig({});
  assert.equal(config.model.projectionHiddenDim, 4096);
  assert.equal(config.model.projectionDim, 256);
  assert.equal(config.model.tauBase, 0.996);
  assert.equal(config.train.batchSize, 256);
  assert.equal(config.data.onBadRecord, 'fail');
  assert.equal(config.text.pooling, 'mean');
});

test('unknown keys, wrong types and values out of range are errors naming the key and what is allowed', () => {
  const message = (input: unknown): string => {
    try {
      parseConfig(input, 'run.yaml');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail('expected a ConfigError');
  };
  assert.match(message({ model: { sharedHead: true } }), /^run\.yaml: unknown key 'model\.sharedHead'; allowed here: sharedHeads, /);
  assert.match(message({ modle: {} }), /unknown key 'modle'; allowed here: data, image, text, model, loss, optim, train/);
  assert.match(message({ model: { sharedHeads: 'yes' } }), /run\.yaml: model\.sharedHeads: .*expected boolean/);
  assert.match(message({ train: { batchSize: 1 } }), /train\.batchSize: .*>=2/);
  assert.match(message({ model: { tauBase: 1.5 } }), /model\.tauBase: .*<=1/);
  assert.match(message({ loss: { objective: 'simclr' } }), /loss\.objective: .*"byol"\|"intraOnly"/);
  assert.match(message({ data: { train: 'train.json' } }), /data\.train: expected coco:FILE, karpathy:FILE\[#split\] or jsonl:FILE/);
  assert.match(message({ train: { epochs: 2, steps: 10 } }), /train\.steps: give train\.epochs or train\.steps, not both/);
  assert.match(message({ text: { dModel: 100, heads: 3 } }), /text\.heads: must divide text\.dModel \(100\)/);
  // Every problem is reported, one per line.
  assert.equal(message({ model: { a: 1 }, train: { batchSize: 0 } }).split('\n').length, 2);
});

test('YAML and JSON files; a syntax error names the file and line', () => {
  const yaml = write('ok.yaml', 'model:\n  sharedHeads: false\ntrain:\n  epochs: 4\n');
  assert.equal(resolveConfig({ file: yaml }).model.sharedHeads, false);
  const json = write('ok.json', '{"train": {"steps": 7}}');
  assert.equal(resolveConfig({ file: json }).train.steps, 7);
  const broken = write('broken.yaml', 'model:\n  sharedHeads: [true\ntrain: 1\n');
  assert.throws(() => resolveConfig({ file: broken }), /broken\.yaml:\d+:\d+: not valid YAML/);
  assert.throws(() => resolveConfig({ file: write('bad.json', '{"a": }') }), /bad\.json:1:7: not valid JSON/);
  assert.throws(() => resolveConfig({ file: write('run.toml', '') }), /must end in \.yaml, \.yml or \.json/);
  assert.throws(() => resolveConfig({ file: join(dir, 'missing.yaml') }), /missing\.yaml: cannot read the config file \(ENOENT\)/);
  assert.throws(() => resolveConfig({ file: write('list.yaml', '- 1\n- 2\n') }), /must be a mapping of sections/);
  // Validation errors name the file they came from.
  assert.throws(
    () => resolveConfig({ file: write('typo.yaml', 'optim:\n  lr: 0.1\n') }),
    /typo\.yaml: unknown key 'optim\.lr'; allowed here: optimizer, baseLr/,
  );
});

test('preset, then file, then flags, then overrides', () => {
  const file = write('layer.yaml', 'train:\n  epochs: 5\n  batchSize: 128\nmodel:\n  tauBase: 0.98\n');
  const config = resolveConfig({
    preset: 'cpu-small',
    file,
    flags: { train: { batchSize: 64 } },
    overrides: ['model.tauBase=0.97', 'loss.objective=byol', 'optim.baseLr=3e-4'],
  });
  assert.equal(config.image.size, PRESETS['cpu-small'].image.size); // from the preset
  assert.equal(config.train.epochs, 5); // file over preset
  assert.equal(config.train.batchSize, 64); // flags over file
  assert.equal(config.model.tauBase, 0.97); // overrides last
  assert.equal(config.loss.objective, 'byol');
  assert.equal(config.optim.baseLr, 3e-4);
  assert.throws(() => resolveConfig({ preset: 'nope' as 'cpu-small' }), /unknown preset 'nope'; presets: byol-paper, cpu-small/);
});

test('overrides parse their values as YAML scalars and refuse malformed keys', () => {
  assert.deepEqual(parseOverride('train.epochs=3'), { train: { epochs: 3 } });
  assert.deepEqual(parseOverride('model.sharedHeads=false'), { model: { sharedHeads: false } });
  assert.deepEqual(parseOverride('data.train=coco:a=b.json'), { data: { train: 'coco:a=b.json' } });
  assert.throws(() => parseOverride('epochs'), /expected key\.path=value/);
  assert.throws(() => parseOverride('train..epochs=1'), /empty key/);
});

test('sizes are bounded: a value past the maximum is an error naming the key and the maximum, the maximum itself is accepted', () => {
  // The bounds of docs/config.md: generous for any model trained here, far below what overflows an allocator.
  const maxima: [section: string, key: string, max: number][] = [
    ['image', 'size', 1024],
    ['image', 'widthMultiplier', 16],
    ['text', 'vocabSize', 262144],
    ['text', 'maxLength', 1024],
    ['text', 'dModel', 8192],
    ['text', 'layers', 64],
    ['text', 'heads', 256],
    ['model', 'projectionHiddenDim', 32768],
    ['model', 'projectionDim', 8192],
    ['model', 'predictionHiddenDim', 32768],
    ['train', 'batchSize', 65536],
    ['vector', 'featureDim', 32768],
  ];
  for (const [section, key, max] of maxima) {
    // heads must divide dModel, so the largest head count is tried with the largest width.
    const atMax = section === 'text' && key === 'heads' ? { text: { heads: max, dModel: 8192 } } : { [section]: { [key]: max } };
    assert.equal((parseConfig(atMax) as unknown as Record<string, Record<string, number>>)[section]![key], max, `${section}.${key}`);
    assert.throws(
      () => parseConfig({ [section]: { [key]: Number.isInteger(max) && key !== 'widthMultiplier' ? max + 1 : max + 0.5 } }),
      (err: Error) => err instanceof ConfigError && err.message.includes(`${section}.${key}`) && err.message.includes(String(max)),
      `${section}.${key}`,
    );
  }
  // The vector adapter's hidden widths: each one, and how many.
  assert.throws(() => parseConfig({ vector: { hiddenDims: [512, 32769] } }), /vector\.hiddenDims\.1: .*32768/);
  assert.throws(() => parseConfig({ vector: { hiddenDims: Array<number>(17).fill(8) } }), /vector\.hiddenDims: .*16/);
  assert.equal(parseConfig({ vector: { hiddenDims: Array<number>(16).fill(32768) } }).vector.hiddenDims.length, 16);
  // The case of the report: an override of 1e12, named with its bound.
  assert.throws(() => resolveConfig({ overrides: ['model.projectionHiddenDim=1e12'] }), /config: model\.projectionHiddenDim: .*32768/);
});

test('data.allowOutsideImages is false unless set', () => {
  assert.equal(parseConfig({}).data.allowOutsideImages, false);
  assert.equal(resolveConfig({ overrides: ['data.allowOutsideImages=true'] }).data.allowOutsideImages, true);
  assert.throws(() => parseConfig({ data: { allowOutsideImages: 'yes' } }), /data\.allowOutsideImages/);
});

test('a YAML alias bomb is refused naming the config file', () => {
  // Ten levels of nine aliases each would expand to 9^10 (3.5 billion) strings.
  let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
  for (let level = 1; level <= 10; level++)
    text += `a${level}: &a${level} [${Array(9)
      .fill(`*a${level - 1}`)
      .join(', ')}]\n`;
  const bomb = write('bomb.yaml', text);
  assert.throws(
    () => resolveConfig({ file: bomb }),
    (err: Error) => err instanceof ConfigError && err.message.startsWith(`${bomb}: `) && /alias/i.test(err.message),
  );
});

test('deeply nested malformed JSON is refused naming the config file and the line, not with a stack overflow', () => {
  // V8's message for this one carries no position, so the offset comes from the syntax-error locator.
  const file = write('deep.json', '{"model":\n' + '['.repeat(200000) + '}');
  assert.throws(
    () => resolveConfig({ file }),
    (err: Error) => err instanceof ConfigError && err.message.startsWith(`${file}:2:200001: not valid JSON`),
  );
});

test('a config file that is not UTF-8 is refused with its line, not read as U+FFFD', () => {
  // Latin-1 "é" (0xe9) followed by a quote is no UTF-8 sequence.
  const file = join(dir, 'latin1.yaml');
  writeFileSync(
    file,
    Buffer.concat([Buffer.from('train:\n  epochs: 2\ndata:\n  train: "jsonl:caf'), Buffer.from([0xe9]), Buffer.from('.jsonl"\n')]),
  );
  assert.throws(
    () => resolveConfig({ file }),
    (err: Error) => err instanceof ConfigError && err.message.startsWith(`${file}:4:20: not valid UTF-8`),
  );
});

test('train.device is auto unless set; auto, cpu, cuda and cuda:N are accepted, anything else refused naming the key', () => {
  assert.equal(parseConfig({}).train.device, 'auto');
  for (const device of ['auto', 'cpu', 'cuda', 'cuda:0', 'cuda:3']) assert.equal(parseConfig({ train: { device } }).train.device, device);
  for (const device of ['gpu', 'CUDA', 'cuda:', 'cuda:-1', 'cuda:x', 'cpu:0', ' cpu', 'mps', 7]) {
    assert.throws(
      () => parseConfig({ train: { device } }, 'run.yaml'),
      (err: Error) => err instanceof ConfigError && /^run\.yaml: train\.device: /.test(err.message),
      JSON.stringify(device),
    );
  }
  assert.throws(() => parseConfig({ train: { device: 'gpu' } }), /train\.device: expected auto, cpu, cuda or cuda:N/);
  // An override on the command line is checked the same way.
  assert.throws(() => resolveConfig({ overrides: ['train.device=tpu'] }), /train\.device: expected auto, cpu, cuda or cuda:N/);
  assert.equal(resolveConfig({ overrides: ['train.device=cuda:1'] }).train.device, 'cuda:1');
});

test('every preset is a valid config', () => {
  for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) assert.doesNotThrow(() => resolveConfig({ preset: name }), name);
  assert.equal(resolveConfig({ preset: 'byol-paper' }).optim.optimizer, 'lars');
});

test('docs/config.md is the reference generated from the schema, every key in it', () => {
  const reference = configReference();
  assert.equal(readFileSync('docs/config.md', 'utf8'), reference, 'docs/config.md is stale: run node dist/scripts/config-docs.js');
  for (const key of [
    'model.sharedHeads',
    'loss.varianceWeight',
    'train.checkpointEvery',
    'train.device',
    'data.onBadRecord',
    'data.allowOutsideImages',
  ])
    assert.ok(reference.includes(`\`${key}\``), key);
});
