// Checkpoint files: round trip, checksum over metadata and tensors, keeping the last K, a process
// killed (SIGKILL) in the middle of writing one, which must leave the previous checkpoint loadable
// and no partial file among the checkpoints, and forged checkpoints whose checksum holds but whose
// content does not, which must be refused with a fallback to the older good one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { tensor, type Tensor } from '../src/index.js';
import { CheckpointError, listCheckpoints, loadCheckpoint, resolveCheckpoint, saveCheckpoint } from '../src/run/checkpoint.js';
import { forgeCheckpoint } from './checkpoint_forge.js';
import { scratchDir } from './scratch_dir.js';

const meta = (step: number): { config: unknown; modalities: unknown; trainer: unknown; step: number } => ({
  config: { train: { seed: 1 } },
  modalities: [{ name: 'text', settings: {} }],
  trainer: { step },
  step,
});

test('a checkpoint round-trips its tensors and metadata; only the newest K are kept', () => {
  const dir = scratchDir('byol-ckpt-');
  for (const step of [1, 2, 3, 4]) saveCheckpoint(dir, new Map([['w', tensor([step, 2 * step])]]), meta(step), 2);
  assert.deepEqual(
    listCheckpoints(dir).map((f) => basename(f)),
    ['step-000000003.safetensors', 'step-000000004.safetensors'],
  );
  const c = loadCheckpoint(join(dir, 'step-000000004.safetensors'));
  assert.deepEqual(c.tensors.get('w')!.toFlatArray(), [4, 8]);
  assert.deepEqual(c.config, { train: { seed: 1 } });
  assert.deepEqual(c.trainer, { step: 4 });
  assert.equal(c.step, 4);
  assert.equal(resolveCheckpoint(dir).step, 4);
});

test('an altered metadata value fails the checksum, as altered tensor bytes do', () => {
  const dir = scratchDir('byol-ckpt-');
  const file = saveCheckpoint(dir, new Map([['w', tensor([1, 2, 3])]]), meta(7));
  const bytes = readFileSync(file);
  // "seed":1 → "seed":2 inside the header: still valid JSON and safetensors, but not what was written.
  const at = bytes.indexOf('\\"seed\\":1');
  assert.ok(at > 0);
  const altered = Buffer.from(bytes);
  altered[at + '\\"seed\\":'.length] = '2'.charCodeAt(0);
  writeFileSync(file, altered);
  assert.throws(
    () => loadCheckpoint(file),
    (err: Error) => err instanceof CheckpointError && /checksum mismatch/.test(err.message),
  );
  assert.throws(() => loadCheckpoint(join(dir, 'nope.safetensors')), /cannot read the checkpoint \(ENOENT\)/);
  assert.throws(() => resolveCheckpoint(dir), /no loadable checkpoint in .* \(1 broken\)/);
});

test('SIGKILL during a checkpoint write leaves the previous checkpoint loadable and no partial checkpoint', async () => {
  const module = resolve('dist/src/run/checkpoint.js');
  const engine = resolve('dist/src/index.js');
  for (const delayMs of [5, 40, 150]) {
    const dir = scratchDir('byol-kill-');
    // Writes ~32 MB checkpoints for steps 1, 2, 3, ... until killed.
    const script = `
      const { saveCheckpoint } = await import(${JSON.stringify(module)});
      const { randn } = await import(${JSON.stringify(engine)});
      const big = randn([8, 1024, 1024]);
      for (let step = 1; ; step++) saveCheckpoint(${JSON.stringify(dir)}, new Map([['w', big]]), { config: {}, modalities: [{ name: 'text' }], trainer: { step }, step }, 3);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const first = join(dir, 'step-000000001.safetensors');
    while (!existsSync(first)) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Every checkpoint the directory lists verifies (a killed write never got renamed into place).
    const files = listCheckpoints(dir);
    assert.ok(files.length >= 1, `delay ${delayMs}`);
    for (const f of files) assert.doesNotThrow(() => loadCheckpoint(f).tensors.forEach((t) => t.dispose()), f);
    assert.equal(resolveCheckpoint(dir).step, files.length > 0 ? Number(basename(files.at(-1)!).slice(5, 14)) : 0);
  }
});

// Each forgery of the newest checkpoint (step 2), and the message that must name what is wrong.
const FORGERIES: [string, (tensors: Map<string, Tensor>, metadata: Record<string, string>) => void, RegExp][] = [
  ['no config', (_, m) => delete m.config, /has no "config" metadata/],
  ['a config that is not JSON', (_, m) => (m.config = '{"train":'), /"config" metadata is not valid JSON/],
  ['a config that is not an object', (_, m) => (m.config = '[1]'), /"config" metadata must be a JSON object/],
  ['no modalities', (_, m) => delete m.modalities, /has no "modalities" metadata/],
  ['modalities without names', (_, m) => (m.modalities = '[{}]'), /"modalities" metadata must be a non-empty list of modality specs/],
  ['no trainer state', (_, m) => delete m.trainer, /has no "trainer" metadata/],
  ['a trainer state of another step', (_, m) => (m.trainer = '{"step":1}'), /"trainer" metadata must be a JSON object with "step": 2/],
  ['step "NaN"', (_, m) => (m.step = 'NaN'), /"step" metadata must be a non-negative integer, got "NaN"/],
  ['step -2', (_, m) => (m.step = '-2'), /"step" metadata must be a non-negative integer, got "-2"/],
  ['step 2.5', (_, m) => (m.step = '2.5'), /"step" metadata must be a non-negative integer, got "2.5"/],
  ['no step', (_, m) => delete m.step, /"step" metadata must be a non-negative integer, got undefined/],
  ['a step other than its name', (_, m) => ((m.step = '1'), (m.trainer = '{"step":1}')), /the file name says step 2, its metadata step 1/],
  [
    'float64 weights',
    (t) => t.set('w', t.get('w')!.double()),
    /unexpected dtype: w \(float64\); a checkpoint holds float32 and int64 tensors/,
  ],
  ['uint8 weights', (t) => t.set('w', tensor([1, 2], { dtype: 'uint8' })), /unexpected dtype: w \(uint8\)/],
  ['a NaN weight', (t) => t.set('w', tensor([2, NaN])), /holds tensors holding NaN or infinite values: w/],
  ['an infinite weight', (t) => t.set('w', tensor([-Infinity, 4])), /holds tensors holding NaN or infinite values: w/],
];

for (const [what, edit, message] of FORGERIES) {
  test(`a forged checkpoint with a valid checksum and ${what} is refused; the run falls back to the older one`, () => {
    const dir = scratchDir('byol-forged-');
    saveCheckpoint(dir, new Map([['w', tensor([1, 2])]]), meta(1));
    const newest = saveCheckpoint(dir, new Map([['w', tensor([2, 4])]]), meta(2));
    forgeCheckpoint(newest, newest, edit);
    assert.throws(
      () => loadCheckpoint(newest),
      (err: Error) => err instanceof CheckpointError && err.message.startsWith(`${newest}: `) && message.test(err.message),
    );
    const skipped: string[] = [];
    const fallback = resolveCheckpoint(dir, (err) => skipped.push(err.message));
    assert.equal(fallback.step, 1);
    assert.deepEqual(fallback.tensors.get('w')!.toFlatArray(), [1, 2]);
    assert.equal(skipped.length, 1);
    assert.match(skipped[0]!, message);
  });
}

test('a forgery that changes nothing still loads (the forging itself is sound)', () => {
  const dir = scratchDir('byol-forged-');
  const file = saveCheckpoint(dir, new Map([['w', tensor([2, 4])]]), meta(2));
  forgeCheckpoint(file, file, () => {});
  assert.deepEqual(loadCheckpoint(file).tensors.get('w')!.toFlatArray(), [2, 4]);
});

test('a state with NaN, infinite or float64 tensors is not written, and the older checkpoints are not rotated away', () => {
  const dir = scratchDir('byol-ckpt-');
  for (const step of [1, 2]) saveCheckpoint(dir, new Map([['w', tensor([step, 2 * step])]]), meta(step), 2);
  const bad: [Tensor, RegExp][] = [
    [tensor([3, NaN]), /step-000000003\.safetensors: not written, the state holds tensors holding NaN or infinite values: w/],
    [tensor([Infinity, 6]), /not written, the state holds tensors holding NaN or infinite values: w/],
    [tensor([3, 6], { dtype: 'float64' }), /not written, the state holds tensors of an unexpected dtype: w \(float64\)/],
  ];
  for (const [w, message] of bad) {
    assert.throws(
      () =>
        saveCheckpoint(
          dir,
          new Map([
            ['b', tensor([0])],
            ['w', w],
          ]),
          meta(3),
          2,
        ),
      (err: Error) => err instanceof CheckpointError && message.test(err.message),
    );
    assert.deepEqual(
      listCheckpoints(dir).map((f) => basename(f)),
      ['step-000000001.safetensors', 'step-000000002.safetensors'],
    );
  }
  assert.equal(resolveCheckpoint(dir).step, 2);
});
