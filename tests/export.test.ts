// byol-align export: weights and config that PyTorch rebuilds with identical outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, useCliFixture } from './cli_fixture.js';

const { dir, trainedRun } = useCliFixture();

test('export writes weights and config that PyTorch rebuilds with identical outputs (scripts/load_export.py)', async () => {
  const run = trainedRun();
  const out = join(dir, 'export');
  const r = cli('export', '--checkpoint', run, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'check.safetensors']) assert.ok(existsSync(join(out, f)), f);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(
    config.modalities.map((m: { name: string }) => m.name),
    ['image', 'text'],
  );
  const py = spawnSync('/usr/bin/python3', ['scripts/load_export.py', out], { encoding: 'utf8' }); // Debian's python3-torch
  assert.equal(py.error, undefined, `could not start /usr/bin/python3: ${String(py.error)}`);
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
  const bad = spawnSync('/usr/bin/python3', ['scripts/load_export.py', out], { encoding: 'utf8' });
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /MISMATCH/);
});
