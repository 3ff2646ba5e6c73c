// Data-parallel training across a network: two network namespaces joined by a veth pair (made here,
// as root), rank 0 in one with the store, rank 1 in the other, each binding Gloo to its end of the
// pair (GLOO_SOCKET_IFNAME) and finding the job in RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set by
// hand. Neither namespace reaches the other's loopback, so the collectives cross the veth link; the
// run must log the losses of the same job on loopback (--nproc 2), and the link must have carried
// at least the gradients.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors } from '../src/engine/safetensors.js';
import { CLI, cli, TINY, useCliFixture } from './cli_fixture.js';

const fixture = useCliFixture();
const isRoot = process.getuid?.() === 0;
const tag = process.pid % 10000;
const spaces = [`byol${tag}a`, `byol${tag}b`];
const links = [`bv${tag}a`, `bv${tag}b`];
const subnet = `10.${200 + (tag % 50)}.${tag % 250}`;
const addresses = [`${subnet}.1`, `${subnet}.2`];

function ip(...args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(() => {
  if (!isRoot) return;
  for (const ns of spaces) ip('netns', 'add', ns);
  ip('link', 'add', links[0]!, 'type', 'veth', 'peer', 'name', links[1]!);
  for (const i of [0, 1]) {
    ip('link', 'set', links[i]!, 'netns', spaces[i]!);
    ip('-n', spaces[i]!, 'addr', 'add', `${addresses[i]}/24`, 'dev', links[i]!);
    ip('-n', spaces[i]!, 'link', 'set', links[i]!, 'up');
    ip('-n', spaces[i]!, 'link', 'set', 'lo', 'up');
  }
});

after(() => {
  // Deleting a namespace deletes its end of the pair, and with it the other end.
  if (isRoot) for (const ns of spaces) spawnSync('ip', ['netns', 'del', ns]);
});

/** Bytes received on a namespace's end of the pair. */
function receivedBytes(i: number): number {
  const stats = JSON.parse(ip('-n', spaces[i]!, '-j', '-s', 'link', 'show', 'dev', links[i]!)) as { stats64: { rx: { bytes: number } } }[];
  return stats[0]!.stats64.rx.bytes;
}

function losses(run: string): unknown[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { terms: unknown }).terms);
}

test(
  '2 ranks in 2 network namespaces over a veth pair train as on loopback',
  { skip: isRoot ? false : 'needs root to make network namespaces' },
  async () => {
    const args = ['train', ...fixture.data, '--steps', '3', ...TINY];
    const loopback = join(fixture.dir, 'dp-loopback');
    const r = cli(...args, '--out', loopback, '--nproc', '2');
    assert.equal(r.status, 0, r.stderr);

    const run = join(fixture.dir, 'dp-netns');
    const before = [receivedBytes(0), receivedBytes(1)];
    const port = 29000 + (tag % 1000);
    const ranks = [0, 1].map(
      (rank) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(
            'ip',
            [
              'netns',
              'exec',
              spaces[rank]!,
              'env',
              `RANK=${rank}`,
              'WORLD_SIZE=2',
              `MASTER_ADDR=${addresses[0]}`,
              `MASTER_PORT=${port}`,
              `GLOO_SOCKET_IFNAME=${links[rank]}`,
              process.execPath,
              CLI,
              ...args,
              '--out',
              run,
              '--dist-timeout',
              '120',
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] },
          );
          let stderr = '';
          child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
          child.once('exit', (code) => resolve({ code, stderr }));
        }),
    );
    for (const [rank, { code, stderr }] of (await Promise.all(ranks)).entries()) assert.equal(code, 0, `rank ${rank}: ${stderr}`);
    assert.deepEqual(losses(run), losses(loopback));
    // Each rank received at least 3 steps of the other's gradients over the link: the online
    // network's values (parameters and a few BatchNorm statistics), 4 bytes each.
    const { tensors } = parseSafetensors(readFileSync(join(run, 'checkpoints', 'step-000000003.safetensors')));
    const online = [...tensors].filter(([key]) => key.startsWith('model.online.')).reduce((n, [, t]) => n + t.size, 0);
    for (const i of [0, 1]) {
      const received = receivedBytes(i) - before[i]!;
      assert.ok(received > 3 * 4 * online, `${spaces[i]} received ${received} bytes, less than 3 steps of ${online} gradients`);
    }
  },
);
