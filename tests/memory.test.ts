// Native memory is freed deterministically by tidy()/dispose(), and by GC when a handle is dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
// The engine alone: what the rest of the library loads at import (the HTTP server, the report's
// plotting) allocates lazily on its own schedule and would blur a measurement of tensor memory.
import { tensor, zeros, randn, tidy, keep, dispose, release, noGrad, F, manualSeed, Tensor } from '../src/engine/index.js';

const rssMiB = (): number => process.memoryUsage().rss / 2 ** 20;

test('tidy disposes intermediates and keeps its result', () => {
  let inner: Tensor | undefined;
  const kept = tidy(() => {
    inner = zeros([3]).add(1);
    const result = inner.mul(2);
    return { result, list: [result] };
  });
  assert.equal(inner!.isDisposed, true);
  assert.equal(kept.result.isDisposed, false);
  assert.deepEqual(kept.result.toArray(), [2, 2, 2]);
});

test('tidy leaves tensors made outside it alone, and nested scopes hand results up', () => {
  const outside = tensor([1]);
  const outer = tidy(() => {
    const fromInner = tidy(() => outside.add(1));
    assert.equal(fromInner.isDisposed, false);
    tidy(() => outside); // returning an outside tensor must not make the scope own it
    return fromInner.add(1);
  });
  assert.equal(outside.isDisposed, false);
  assert.deepEqual(outer.toArray(), [3]);
});

test('keep() and dispose() override the scope', () => {
  let kept: Tensor | undefined;
  tidy(() => {
    kept = keep(zeros([2]));
  });
  assert.equal(kept!.isDisposed, false);
  const group = { a: zeros([1]), b: [zeros([1])] };
  dispose(group);
  assert.equal(group.a.isDisposed, true);
  assert.equal(group.b[0]!.isDisposed, true);
});

test('release() frees what the innermost scope made now, and leaves everything else alone', () => {
  const outside = tensor([1]);
  const outer = tidy(() => {
    const fromOuter = zeros([1]);
    const kept = keep(zeros([1]));
    tidy(() => {
      const mine = zeros([1]);
      release(mine);
      assert.equal(mine.isDisposed, true);
      for (const t of [outside, fromOuter, kept]) {
        release(t);
        assert.equal(t.isDisposed, false);
      }
    });
    return { fromOuter, kept };
  });
  assert.equal(outer.fromOuter.isDisposed, false); // returned: still there
  dispose([outer, outside]);
});

test('tidy disposes what it made when fn throws', () => {
  let made: Tensor | undefined;
  assert.throws(() =>
    tidy(() => {
      made = zeros([2]);
      throw new Error('boom');
    }),
  );
  assert.equal(made!.isDisposed, true);
});

test('10,000 training steps run at flat memory', () => {
  manualSeed(0);
  const w1 = keep(randn([64, 32]).mul(0.1).requiresGrad_(true));
  const w2 = keep(randn([1, 64]).mul(0.1).requiresGrad_(true));
  const x = randn([16, 32]);
  const y = randn([16, 1]);
  const step = (): number =>
    tidy(() => {
      const loss = F.mseLoss(F.linear(F.linear(x, w1).relu(), w2), y);
      w1.grad = null;
      w2.grad = null;
      loss.backward();
      noGrad(() => {
        for (const w of [w1, w2]) w.sub_(w.grad!.mul(0.01));
      });
      return loss.item();
    });
  for (let i = 0; i < 1000; i++) step(); // warm up allocators
  const before = rssMiB();
  let last = 0;
  for (let i = 0; i < 10000; i++) last = step();
  const grown = rssMiB() - before;
  assert.ok(Number.isFinite(last));
  assert.ok(grown < 16, `RSS grew by ${grown.toFixed(1)} MiB over 10,000 steps`);
});

test("a scope's own tensors start no garbage collection; kept and unscoped ones do", async () => {
  // Full collections while fn runs: V8 starts them when reported native memory grows by 64 MB.
  const fullCollections = async (fn: () => void): Promise<number> => {
    const seen: PerformanceEntry[] = [];
    const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
    observer.observe({ entryTypes: ['gc'] });
    fn();
    await new Promise((resolve) => setTimeout(resolve, 20)); // entries arrive on the event loop
    observer.disconnect();
    return seen.filter((e) => (e as PerformanceEntry & { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
      .length;
  };
  const MiB4 = [1024, 1024]; // float32: 4 MiB
  // 400 MiB a scope holds until it ends: no collection could free any of it.
  assert.equal(await fullCollections(() => tidy(() => void Array.from({ length: 100 }, () => zeros(MiB4)))), 0);
  // The same kept, or dropped outside every scope, is reported, so V8 collects.
  const kept = (): void => tidy(() => dispose(Array.from({ length: 100 }, () => keep(zeros(MiB4)))));
  assert.ok((await fullCollections(kept)) > 0);
  assert.ok((await fullCollections(() => void Array.from({ length: 100 }, () => zeros(MiB4)))) > 0);
});

test('dropped handles are reclaimed by GC (external memory is reported to V8)', () => {
  const before = rssMiB();
  // 1,000 tensors of 4 MiB = 4 GiB if nothing were freed; nothing disposes them explicitly.
  for (let i = 0; i < 1000; i++) zeros([1024, 1024]).add_(1);
  const grown = rssMiB() - before;
  assert.ok(grown < 1024, `RSS grew by ${grown.toFixed(0)} MiB`);
});
