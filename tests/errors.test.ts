// Bad calls throw Errors that name the op and the shapes; the process survives all of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, zeros, randn, F, op, Tensor, cuda } from '../src/index.js';

test('a shape mismatch names the op and both shapes', () => {
  assert.throws(() => zeros([2, 3]).matmul(zeros([4, 5])), /aten::matmul\(self=\[2, 3\] float32 cpu, other=\[4, 5\] float32 cpu\)/);
  assert.throws(
    () => zeros([2, 3]).add(zeros([4])),
    /aten::add\.Tensor\(self=\[2, 3\] float32 cpu, other=\[4\] float32 cpu, alpha=1\): The size of tensor a \(3\) must match/,
  );
});

test('a wrong dtype is reported with the op', () => {
  assert.throws(() => F.embedding(tensor([0.5]), zeros([3, 2])), /aten::embedding.*indices=\[1\] float32 cpu.*Long, Int/s);
  assert.throws(() => F.crossEntropy(zeros([2, 3]), tensor([0, 1])), /aten::cross_entropy_loss.*target=\[2\] float32/s);
});

test('a disposed tensor cannot be used and says so', () => {
  const x = tensor([1, 2]);
  x.dispose();
  assert.equal(x.isDisposed, true);
  assert.throws(() => x.add(1), /this tensor was disposed/);
  assert.throws(() => x.shape, /this tensor was disposed/);
  assert.doesNotThrow(() => x.dispose()); // disposing twice is harmless
  assert.equal(String(x), 'Tensor(<disposed>)');
});

test('a device libtorch does not have is an error, not a crash', () => {
  // One GPU past the last: 'cuda:0' without CUDA, an invalid device ordinal with it.
  assert.throws(() => zeros([2]).to(`cuda:${cuda.deviceCount()}`), /aten::to\.dtype_layout.*(CUDA|cuda)/s);
});

test('bad arguments name the argument', () => {
  const conv = op('aten::conv2d');
  assert.throws(() => conv(zeros([1, 1, 3, 3]), zeros([1, 1, 2, 2]), null, 'x'), /argument 'stride' must be an array/);
  assert.throws(() => zeros([2]).reshape(1.5), /argument 'shape'\[0\] must be an integer, got 1.5/);
  assert.throws(() => op('aten::no_such_op')(), /this libtorch has no operator aten::no_such_op/);
  assert.throws(() => op('aten::relu')(), /missing argument 'self'/);
  assert.throws(() => op('aten::relu')(zeros([1]), 1, 2), /takes 1 arguments, got 3/);
  assert.throws(() => op('aten::relu')('not a tensor'), /argument 'self' is not a tensor/);
});

test('backward of a non-scalar without a gradient is an error', () => {
  const x = tensor([1, 2], { requiresGrad: true });
  assert.throws(() => x.mul(2).backward(), /grad can be implicitly created only for scalar outputs/);
  assert.throws(() => tensor([1, 2]).sum().backward(), /does not require grad/);
});

test('the process survives a thousand bad calls', () => {
  const a = randn([3, 4]);
  const b = randn([5, 6]);
  let thrown = 0;
  for (let i = 0; i < 1000; i++) {
    try {
      a.matmul(b);
    } catch (err) {
      assert.ok(err instanceof Error);
      thrown++;
    }
  }
  assert.equal(thrown, 1000);
  assert.deepEqual(a.matmul(randn([4, 2])).shape, [3, 2]); // still working afterwards
  assert.ok(a instanceof Tensor);
});
