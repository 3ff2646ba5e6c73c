// `byol-align train` data-parallel: --nproc 2 on the command's fixture (only rank 0 writes the run;
// stopped and resumed, it logs the uninterrupted run's losses; train.syncBatchNorm reaches the
// ranks), the same job under torchrun
// --no_python (the same losses: the same ranks, shards and seeds), and a worker killed mid-run
// failing the job with an error that names it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cli, TINY, useCliFixture } from './cli_fixture.js';
import { freePort } from './rank_processes.js';

const fixture = useCliFixture();

/** The metrics lines without their timings, which differ from run to run. */
function metricsOf(run: string): Record<string, unknown>[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      delete entry.waitMs;
      delete entry.stepMs;
      return entry;
    });
}

test('--nproc 2 trains with one writer; stopped and resumed it logs what the uninterrupted run logs', () => {
  const whole = join(fixture.dir, 'dp-whole');
  const args = [...fixture.data, '--val-data', `coco:${fixture.annotations}`, '--steps', '4', ...TINY, '--nproc', '2'];
  const r = cli('train', ...args, '--out', whole);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.match(/data-parallel training: 2 processes/g)?.length, 1, r.stderr);
  assert.equal(r.stderr.match(/epoch 1 validation/g)?.length, 1, r.stderr);
  const lines = metricsOf(whole);
  // Steps 1–4 once each, and epoch 1's validation after step 3.
  assert.deepEqual(
    lines.map((l) => l.step ?? `epoch ${String(l.epoch)}`),
    [1, 2, 3, 'epoch 1', 4],
  );
  assert.deepEqual(readdirSync(join(whole, 'checkpoints')).sort(), ['step-000000002.safetensors', 'step-000000004.safetensors']);

  const resumed = join(fixture.dir, 'dp-resumed');
  const first = cli('train', ...args, '--out', resumed, '--stop-after', '2');
  assert.equal(first.status, 0, first.stderr);
  const rest = cli('train', '--out', resumed, '--resume', '--nproc', '2');
  assert.equal(rest.status, 0, rest.stderr);
  assert.match(rest.stderr, /resuming .*step-000000002\.safetensors at step 2 of 4/);
  assert.deepEqual(metricsOf(resumed), lines);
});

test('train.syncBatchNorm=false: each rank normalises with its own rows, and the first step’s loss leaves the synchronised one', () => {
  const args = [...fixture.data, '--steps', '4', '--stop-after', '1', ...TINY, '--nproc', '2'];
  const synced = join(fixture.dir, 'dp-synced');
  const local = join(fixture.dir, 'dp-local-bn');
  for (const [out, setting] of [
    [synced, []],
    [local, ['train.syncBatchNorm=false']],
  ] as const) {
    const r = cli('train', ...args, ...setting, '--out', out);
    assert.equal(r.status, 0, r.stderr);
  }
  const config = (run: string): { train: { syncBatchNorm: boolean } } => JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.equal(config(synced).train.syncBatchNorm, true);
  assert.equal(config(local).train.syncBatchNorm, false);
  const [syncedStep, localStep] = [synced, local].map((run) => metricsOf(run)[0]!) as [Record<string, unknown>, Record<string, unknown>];
  // The same weights, views and shards: only the BatchNorm statistics differ.
  assert.equal(syncedStep.step, 1);
  assert.equal(localStep.step, 1);
  const [a, b] = [syncedStep.loss as number, localStep.loss as number];
  assert.ok(Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) > 1e-6, `losses ${a} (synchronised) and ${b} (local)`);
});

test('under torchrun --no_python the command joins the job: the same losses as --nproc 2', async () => {
  const viaNproc = join(fixture.dir, 'dp-nproc');
  const args = [...fixture.data, '--steps', '3', ...TINY];
  const r = cli('train', ...args, '--out', viaNproc, '--nproc', '2');
  assert.equal(r.status, 0, r.stderr);
  const viaTorchrun = join(fixture.dir, 'dp-torchrun');
  const port = String(await freePort());
  // Debian's torchrun 1.13 on Python 3.11 needs --redirects and --tee with a log folder to start.
  const torchrun = spawnSync(
    'torchrun',
    [
      '--no_python',
      '--nproc_per_node',
      '2',
      '--master_port',
      port,
      '--redirects',
      '1',
      '--tee',
      '1',
      '--log_dir',
      join(fixture.dir, 'torchrun-logs'),
      process.execPath,
      CLI,
      'train',
      ...args,
      '--out',
      viaTorchrun,
    ],
    { encoding: 'utf8', timeout: 180000 },
  );
  assert.equal(torchrun.status, 0, `${torchrun.stdout}\n${torchrun.stderr}`);
  const losses = (run: string): unknown[] => metricsOf(run).map((l) => l.terms);
  assert.equal(losses(viaTorchrun).length, 3);
  assert.deepEqual(losses(viaTorchrun), losses(viaNproc));
});

test('a worker killed mid-run ends the job with an error naming it, within the timeout', async () => {
  const run = join(fixture.dir, 'dp-killed');
  const launcher = spawn(
    process.execPath,
    [CLI, 'train', ...fixture.data, '--steps', '300', ...TINY, '--nproc', '2', '--dist-timeout', '60', '--out', run, '-q'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  launcher.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => launcher.once('exit', resolve));
  const metrics = join(run, 'metrics.jsonl');
  while (!existsSync(metrics) || readFileSync(metrics, 'utf8').split('\n').length < 3) await new Promise((r) => setTimeout(r, 20));
  // The worker whose environment says RANK=1.
  const workers = spawnSync('ps', ['-o', 'pid=', '--ppid', String(launcher.pid)], { encoding: 'utf8' })
    .stdout.trim()
    .split(/\s+/)
    .map(Number);
  const rank1 = workers.find((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('RANK=1'));
  assert.ok(rank1 !== undefined, `no worker with RANK=1 among ${workers.join(', ')}`);
  const killedAt = performance.now();
  process.kill(rank1, 'SIGKILL');
  const code = await exited;
  const seconds = (performance.now() - killedAt) / 1000;
  assert.equal(code, 128 + 9, stderr);
  assert.match(stderr, new RegExp(`worker rank 1 of 2 \\(pid ${rank1}\\) was killed by SIGKILL; stopping the others`));
  assert.match(
    stderr,
    // Gloo sees the connection close; a collective through shared memory sees the process gone.
    /on rank 0 of 2 \(group '(train|gradients)'\) failed: rank 1 (closed its connection \(its process exited or was killed\)|\(pid \d+\) exited \(its process was killed or ended\))/,
  );
  assert.ok(seconds < 60, `the job took ${seconds} s to end`);
});
