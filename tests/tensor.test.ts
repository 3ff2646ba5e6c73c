import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, arange, zeros, ones, full, randn, rand, randint, Generator, cat, stack, where, F } from '../src/index.js';
import { assertClose } from './helpers.js';

test('nested arrays round-trip with their shape', () => {
  const x = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.deepEqual(x.shape, [2, 3]);
  assert.equal(x.dtype, 'float32');
  assert.deepEqual(x.toArray(), [
    [1, 2, 3],
    [4, 5, 6],
  ]);
});

test('typed arrays keep their dtype and take a shape', () => {
  const x = tensor(new Int32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
  assert.equal(x.dtype, 'int32');
  assert.deepEqual(x.toArray(), [
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  const y = tensor(new BigInt64Array([5n, -7n]));
  assert.equal(y.dtype, 'int64');
  assert.deepEqual(Array.from(y.data() as BigInt64Array), [5n, -7n]);
});

test('every dtype converts and reads back', () => {
  const base = tensor([0, 1, 2.5]);
  assert.deepEqual(base.to('float64').toFlatArray(), [0, 1, 2.5]);
  assert.deepEqual(base.to('int32').toFlatArray(), [0, 1, 2]);
  assert.deepEqual(base.to('int64').toFlatArray(), [0, 1, 2]);
  assert.deepEqual(base.to('uint8').toFlatArray(), [0, 1, 2]);
  assert.deepEqual(base.to('bool').toFlatArray(), [0, 1, 1]);
});

test('ragged nested arrays are rejected with their position', () => {
  assert.throws(() => tensor([[1, 2], [3]]), /ragged nested array at \[1\]/);
});

test('a buffer of the wrong length names both sizes', () => {
  assert.throws(() => tensor(new Float32Array(5), { shape: [2, 3] }), /20 bytes but shape \[2, 3\] float32 cpu needs 24/);
});

test('constant factories', () => {
  assert.deepEqual(zeros([2]).toArray(), [0, 0]);
  assert.deepEqual(ones([1, 2], { dtype: 'int64' }).toArray(), [[1, 1]]);
  assert.deepEqual(full([2], 7.5).toArray(), [7.5, 7.5]);
  assert.deepEqual(arange(2, 8, 2).toArray(), [2, 4, 6]);
  assert.equal(arange(3).dtype, 'int64');
});

test('a seeded generator repeats its draws and differs across seeds', () => {
  const a = randn([4], { generator: new Generator(7) }).toFlatArray();
  const b = randn([4], { generator: new Generator(7) }).toFlatArray();
  const c = randn([4], { generator: new Generator(8) }).toFlatArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const u = rand([1000], { generator: new Generator(1) });
  assert.ok(u.min().item() >= 0 && u.max().item() < 1);
  const r = randint(3, 6, [1000], { generator: new Generator(1) });
  assert.deepEqual([...new Set(r.toFlatArray())].sort(), [3, 4, 5]);
});

test('broadcasting arithmetic matches hand computation', () => {
  const x = tensor([
    [1, 2],
    [3, 4],
  ]);
  const row = tensor([10, 20]);
  assert.deepEqual(x.add(row).toArray(), [
    [11, 22],
    [13, 24],
  ]);
  assert.deepEqual(x.mul(row.reshape(2, 1)).toArray(), [
    [10, 20],
    [60, 80],
  ]);
  assert.deepEqual(x.sub(1).div(2).toArray(), [
    [0, 0.5],
    [1, 1.5],
  ]);
  assert.deepEqual(x.pow(2).toArray(), [
    [1, 4],
    [9, 16],
  ]);
  assert.deepEqual(x.rsub(1).toArray(), [
    [0, -1],
    [-2, -3],
  ]);
});

test('matmul and bmm', () => {
  const a = tensor([
    [1, 2],
    [3, 4],
  ]);
  assert.deepEqual(a.matmul(a).toArray(), [
    [7, 10],
    [15, 22],
  ]);
  const b = stack([a, a.mul(2)]);
  assert.deepEqual(b.bmm(b).toArray(), [
    [
      [7, 10],
      [15, 22],
    ],
    [
      [28, 40],
      [60, 88],
    ],
  ]);
});

test('reductions over dims with keepdim', () => {
  const x = tensor([
    [1, 5, 3],
    [4, 2, 6],
  ]);
  assert.deepEqual(x.sum().item(), 21);
  assert.deepEqual(x.sum(1).toArray(), [9, 12]);
  assert.deepEqual(x.mean(0, true).toArray(), [[2.5, 3.5, 4.5]]);
  const m = x.max(1);
  assert.deepEqual(m.values.toArray(), [5, 6]);
  assert.deepEqual(m.indices.toArray(), [1, 2]);
  assert.deepEqual(x.min(0).values.toArray(), [1, 2, 3]);
  assert.deepEqual(x.argmax(1).toArray(), [1, 2]);
  assertClose(x.var(1), [4, 4]);
  assertClose(x.std(1, { correction: 0 }), [Math.sqrt(8 / 3), Math.sqrt(8 / 3)]);
  assertClose(x.norm(2, 1), [Math.sqrt(35), Math.sqrt(56)]);
  assertClose(x.logsumexp(1), [Math.log(Math.exp(1) + Math.exp(5) + Math.exp(3)), Math.log(Math.exp(4) + Math.exp(2) + Math.exp(6))]);
});

test('views share memory, copies do not', () => {
  const x = arange(6).reshape(2, 3);
  const t = x.t();
  assert.deepEqual(t.toArray(), [
    [0, 3],
    [1, 4],
    [2, 5],
  ]);
  assert.equal(t.isContiguous, false);
  assert.equal(t.contiguous().isContiguous, true);
  const v = x.view(3, 2);
  v.select(0, 0).fill_(9);
  assert.deepEqual(x.toArray(), [
    [9, 9, 2],
    [3, 4, 5],
  ]);
  assert.deepEqual(x.slice(1, 1, 3).toArray(), [
    [9, 2],
    [4, 5],
  ]);
  assert.deepEqual(x.unsqueeze(0).shape, [1, 2, 3]);
  assert.deepEqual(x.unsqueeze(0).squeeze().shape, [2, 3]);
  assert.deepEqual(
    tensor([[1], [2]])
      .expand(2, 3)
      .toArray(),
    [
      [1, 1, 1],
      [2, 2, 2],
    ],
  );
  assert.deepEqual(x.permute(1, 0).shape, [3, 2]);
});

test('cat, stack, split and chunk', () => {
  const a = tensor([[1, 2]]);
  const b = tensor([[3, 4]]);
  assert.deepEqual(cat([a, b]).toArray(), [
    [1, 2],
    [3, 4],
  ]);
  assert.deepEqual(cat([a, b], 1).toArray(), [[1, 2, 3, 4]]);
  assert.deepEqual(stack([a, b]).shape, [2, 1, 2]);
  assert.deepEqual(
    F.split(arange(5), 2).map((t) => t.toArray()),
    [[0, 1], [2, 3], [4]],
  );
  assert.deepEqual(
    F.split(arange(5), [1, 4]).map((t) => t.toArray()),
    [[0], [1, 2, 3, 4]],
  );
  assert.deepEqual(
    F.chunk(arange(6), 3).map((t) => t.toArray()),
    [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
  );
});

test('indexing: gather, indexSelect, scatterAdd, advanced index, masks, where', () => {
  const x = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const idx = tensor(
    [
      [2, 0],
      [1, 1],
    ],
    { dtype: 'int64' },
  );
  assert.deepEqual(x.gather(1, idx).toArray(), [
    [3, 1],
    [5, 5],
  ]);
  assert.deepEqual(x.indexSelect(1, tensor([2, 0], { dtype: 'int64' })).toArray(), [
    [3, 1],
    [6, 4],
  ]);
  assert.deepEqual(
    zeros([3])
      .scatterAdd(0, tensor([0, 2, 0], { dtype: 'int64' }), tensor([1, 2, 3]))
      .toArray(),
    [4, 0, 2],
  );
  assert.deepEqual(x.index([tensor([1, 0], { dtype: 'int64' })]).toArray(), [
    [4, 5, 6],
    [1, 2, 3],
  ]);
  assert.deepEqual(x.index([null, tensor([0], { dtype: 'int64' })]).toArray(), [[1], [4]]);
  const mask = x.gt(3);
  assert.deepEqual(x.maskedFill(mask, 0).toArray(), [
    [1, 2, 3],
    [0, 0, 0],
  ]);
  assert.deepEqual(x.maskedSelect(mask).toArray(), [4, 5, 6]);
  assert.deepEqual(where(mask, x, x.neg()).toArray(), [
    [-1, -2, -3],
    [4, 5, 6],
  ]);
  const y = zeros([3]);
  y.indexPut_([tensor([0, 0, 2], { dtype: 'int64' })], tensor([1, 1, 5]), true);
  assert.deepEqual(y.toArray(), [2, 0, 5]);
});

test('topk and sort', () => {
  const x = tensor([3, 1, 4, 1, 5]);
  const top = x.topk(2);
  assert.deepEqual(top.values.toArray(), [5, 4]);
  assert.deepEqual(top.indices.toArray(), [4, 2]);
  assert.deepEqual(x.sort().values.toArray(), [1, 1, 3, 4, 5]);
  assert.deepEqual(x.argsort(-1, true).toFlatArray()[0], 4);
});

test('comparisons give bool tensors', () => {
  const x = tensor([1, 2, 3]);
  const c = x.ge(2);
  assert.equal(c.dtype, 'bool');
  assert.deepEqual(c.toArray(), [0, 1, 1]);
  assert.equal(
    x
      .eq(tensor([1, 0, 3]))
      .all()
      .item(),
    0,
  );
  assert.equal(x.eq(2).any().item(), 1);
});

test('elementwise math and activations match their formulas', () => {
  const v = [-2, -0.5, 0, 0.5, 2];
  const x = tensor(v, { dtype: 'float64' });
  assertClose(x.exp(), v.map(Math.exp), 1e-12);
  assertClose(x.tanh(), v.map(Math.tanh), 1e-12);
  assertClose(
    x.sigmoid(),
    v.map((a) => 1 / (1 + Math.exp(-a))),
    1e-12,
  );
  assertClose(
    x.relu(),
    v.map((a) => Math.max(a, 0)),
    0,
  );
  assertClose(
    x.silu(),
    v.map((a) => a / (1 + Math.exp(-a))),
    1e-12,
  );
  assertClose(
    x.gelu('tanh'),
    v.map((a) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)))),
    1e-12,
  );
  assertClose(
    x.abs().sqrt(),
    v.map((a) => Math.sqrt(Math.abs(a))),
    1e-12,
  );
  assertClose(x.clamp(-1, 1), [-1, -0.5, 0, 0.5, 1], 0);
});

test('softmax rows sum to one and match exp/sum', () => {
  const x = tensor([[1, 2, 3]], { dtype: 'float64' });
  const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
  assertClose(x.softmax(1), [Math.exp(1) / z, Math.exp(2) / z, Math.exp(3) / z], 1e-12);
  assertClose(x.logSoftmax(1), [1 - Math.log(z), 2 - Math.log(z), 3 - Math.log(z)], 1e-12);
});
