// Checkpoint files: round trip, checksum over metadata and tensors, keeping the last K, and a
// process killed (SIGKILL) in the middle of writing one, which must leave the previous checkpoint
// loadable and no partial file among the checkpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { tensor } from '../src/index.js';
import { CheckpointError, listCheckpoints, loadCheckpoint, resolveCheckpoint, saveCheckpoint } from '../src/run/checkpoint.js';

const meta = (step: number): { config: unknown; modalities: unknown; trainer: unknown; step: number } => ({
  config: { train: { seed: 1 } },
  modalities: [{ name: 'text', settings: {} }],
  trainer: { step },
  step,
});

test('a checkpoint round-trips its tensors and metadata; only the newest K are kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'byol-ckpt-'));
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
  const dir = mkdtempSync(join(tmpdir(), 'byol-ckpt-'));
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
    const dir = mkdtempSync(join(tmpdir(), 'byol-kill-'));
    // Writes ~32 MB checkpoints for steps 1, 2, 3, ... until killed.
    const script = `
      const { saveCheckpoint } = await import(${JSON.stringify(module)});
      const { randn } = await import(${JSON.stringify(engine)});
      const big = randn([8, 1024, 1024]);
      for (let step = 1; ; step++) saveCheckpoint(${JSON.stringify(dir)}, new Map([['w', big]]), { config: {}, modalities: [], trainer: { step }, step }, 3);
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
