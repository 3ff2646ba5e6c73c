// cacheCpuBlocks(): a large freed block is reused by the next tensor of about its size without
// page faults; without the cache glibc maps such a block afresh every time. Process-wide, so this
// file (one process under node --test) has it to itself; the tests run in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheCpuBlocks, F, manualSeed, randn, zeros } from '../src/engine/index.js';

const ELEMENTS = 16 * 2 ** 20; // float32: 64 MiB, above glibc's largest mmap threshold (32 MiB)
const PAGES = (ELEMENTS * 4) / 4096;

/** Minor page faults while a 64 MiB tensor is made, written (zeros) and freed; and its sum. */
function oneTensor(elements = ELEMENTS): { faults: number; sum: number } {
  const before = process.resourceUsage().minorPageFault;
  const t = zeros([elements]);
  const sum = t.sum().item() as number;
  t.dispose();
  return { faults: process.resourceUsage().minorPageFault - before, sum };
}

test('without the cache every page of a fresh 64 MiB block faults', () => {
  oneTensor();
  assert.ok(oneTensor().faults >= PAGES * 0.9);
});

test('with the cache the next block of that size reuses the freed one: no faults, zeros still zeros', () => {
  const start = cacheCpuBlocks(2 ** 30);
  const first = oneTensor(); // allocated afresh, then cached
  const second = oneTensor();
  assert.ok(second.faults < PAGES * 0.02, `${second.faults} faults for ${PAGES} pages`);
  assert.equal(second.sum, 0);
  // A slightly smaller request (within an eighth) takes the same block.
  const smaller = oneTensor(ELEMENTS - 4096);
  assert.ok(smaller.faults < PAGES * 0.02);
  const stats = cacheCpuBlocks(2 ** 30);
  assert.ok(first.faults >= PAGES * 0.9);
  assert.equal(stats.hits - start.hits, 2);
  assert.equal(stats.cachedBytes, ELEMENTS * 4);
});

test('results are the same with reused blocks (matmul, conv, backward)', () => {
  const run = (): number[] => {
    manualSeed(3);
    const x = randn([64, 3, 64, 64]).requiresGrad_();
    const w = randn([32, 3, 3, 3]).requiresGrad_();
    const y = F.conv2d(x, w, null, { padding: 1 }).relu();
    const flat = y.reshape(64, -1);
    const loss = flat.matmul(flat.t()).mean();
    loss.backward();
    return [loss.item() as number, x.grad!.sum().item() as number, w.grad!.abs().sum().item() as number];
  };
  const cached = [run(), run()];
  const stats = cacheCpuBlocks(2 ** 30);
  cacheCpuBlocks(0);
  const plain = run();
  assert.deepEqual(cached[1], cached[0]);
  assert.deepEqual(plain, cached[0]);
  assert.ok(stats.hits > 0);
});

test('a limit of 0 frees what is cached and caches nothing more', () => {
  cacheCpuBlocks(2 ** 30);
  oneTensor();
  assert.ok(cacheCpuBlocks(2 ** 30).cachedBytes >= ELEMENTS * 4);
  assert.equal(cacheCpuBlocks(0).cachedBytes, 0);
  oneTensor();
  assert.ok(oneTensor().faults >= PAGES * 0.9);
  assert.equal(cacheCpuBlocks(0).cachedBytes, 0);
  assert.throws(() => cacheCpuBlocks(-1), /limitBytes/);
});
