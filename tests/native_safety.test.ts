// The addon never aborts the process and never misreads what it is given: every C++ exception
// becomes a JS error, handles are checked by type tag, and numbers it cannot take exactly are
// refused with the function and argument named. Before these fixes several of the calls below
// ended the process (std::terminate) or silently used another value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, zeros, randn, op, manualSeed, setNumThreads, getNumThreads, Generator, Tensor } from '../src/index.js';
import { native, type Handle, type GeneratorHandle } from '../src/engine/native.js';

const FLOAT32 = 6; // c10::ScalarType::Float

/** A nested tensor (components of different lengths): libtorch gives it no sizes(). */
function nestedTensor(): Tensor {
  return op('aten::_nested_tensor_from_tensor_list')([tensor([1, 2]), tensor([3])]) as Tensor;
}

/** Asserts `f` throws an error of class `kind` whose message matches `message`. */
function assertThrowsKind(f: () => unknown, kind: typeof Error, message: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof kind, `expected a ${kind.name}, got ${String(err)}`);
    assert.match((err as Error).message, message);
    return true;
  });
}

test('a Generator passed where a tensor belongs is a TypeError naming the op and argument', () => {
  assertThrowsKind(
    () => tensor([1]).add(new Generator(1) as unknown as Tensor),
    TypeError,
    /aten::add\.Tensor\(self=\[1\] float32 cpu, other=a Generator, alpha=1\): argument 'other' is not a tensor \(got a Generator\)/,
  );
});

test('a tensor passed where a Generator belongs is a TypeError', () => {
  const notAGenerator = { generatorHandle: tensor([1]).handle } as unknown as Generator;
  assertThrowsKind(
    () => randn([2], { generator: notAGenerator }),
    TypeError,
    /aten::randn\.generator\(.*\): argument 'generator' is not a Generator \(got \[1\] float32 cpu\)/,
  );
});

test('a generator handle is not read as a tensor handle by any accessor', () => {
  const g = new Generator(3).generatorHandle as unknown as Handle;
  assertThrowsKind(() => native.meta(g), TypeError, /^meta: argument is not a tensor \(got a Generator\)$/);
  assertThrowsKind(() => native.dispose(g), TypeError, /^dispose: argument is not a tensor \(got a Generator\)$/);
  assertThrowsKind(() => native.toBuffer(g), TypeError, /^toBuffer: argument is not a tensor \(got a Generator\)$/);
  assertThrowsKind(() => native.grad(g), TypeError, /^grad: tensor is not a tensor \(got a Generator\)$/);
  // The generator still works afterwards: dispose() did not free it as a tensor.
  assert.deepEqual(randn([2], { generator: new Generator(3) }).toFlatArray(), randn([2], { generator: new Generator(3) }).toFlatArray());
});

test('a plain object is not a handle', () => {
  assertThrowsKind(() => native.meta({} as Handle), TypeError, /^meta: argument is not a tensor \(got an object\)$/);
  assertThrowsKind(() => native.isDisposed(7 as unknown as Handle), TypeError, /^isDisposed: argument is not a tensor \(got 7\)$/);
});

test("a nested tensor's shape is an error, not an abort", () => {
  const nested = nestedTensor();
  assertThrowsKind(() => nested.shape, TypeError, /^meta\(nested float32 cpu\): a nested tensor has no single shape/);
  assertThrowsKind(() => nested.toArray(), TypeError, /a nested tensor has no single shape/);
});

test('a failing op on a nested tensor is described without throwing inside the catch', () => {
  const nested = nestedTensor();
  assert.throws(() => nested.add(tensor([1])), /^Error: aten::add\.Tensor\(self=nested float32 cpu, other=\[1\] float32 cpu, alpha=1\): /);
});

test('the accessors of native/tensor.cc and autograd.cc survive a nested tensor', () => {
  const nested = nestedTensor();
  assert.equal(typeof nested.isContiguous, 'boolean');
  assert.equal(typeof native.dataPtr(nested.handle), 'number');
  assert.equal(nested.requiresGrad, false);
  assert.equal(nested.isLeaf, true);
  const x = tensor([1, 2]);
  assert.throws(() => {
    x.grad = nested;
  }, /^Error: setGrad: the gradient nested float32 cpu must match the tensor \[2\] float32 cpu in shape, dtype and device$/);
  assert.equal(x.grad, null);
});

test('a shape with a fraction is refused, not truncated', () => {
  assertThrowsKind(
    () => tensor(new Float32Array(2), { shape: [1.5, 2] }),
    RangeError,
    /^tensor\(\): options\.shape\[0\] must be a non-negative integer, got 1\.5$/,
  );
  assertThrowsKind(
    () => tensor([1, 2, 3], { shape: [3, 1.5] }),
    RangeError,
    /options\.shape\[1\] must be a non-negative integer, got 1\.5/,
  );
  // The addon itself refuses too, for callers that reach it without tensor()'s check.
  assertThrowsKind(
    () => native.fromBuffer(new Float32Array(2), [1.5, 2], FLOAT32),
    RangeError,
    /^fromBuffer: shape\[0\] must be an integer, got 1\.5$/,
  );
});

test('a shape too large to address is refused before anything is allocated', () => {
  assertThrowsKind(
    () => native.fromBuffer(new Float32Array(0), [2 ** 32, 2 ** 32, 0], FLOAT32),
    RangeError,
    /^fromBuffer: shape \[4294967296, 4294967296, 0\] float32 is too large to address$/,
  );
  // A small buffer with a large shape is refused by its byte count, not by a failed allocation.
  assertThrowsKind(
    () => native.fromBuffer(new Float32Array(1), [2 ** 20, 2 ** 20], FLOAT32),
    RangeError,
    /^fromBuffer: buffer holds 4 bytes but shape \[1048576, 1048576\] float32 cpu needs 4398046511104$/,
  );
});

test('an int32 argument out of range, fractional or NaN is refused, never wrapped to another value', () => {
  const before = getNumThreads();
  for (const [n, shown] of [
    [2 ** 31, '2147483648'],
    [2 ** 32 + 1, '4294967297'], // wrapped to 1 before
    [1e20, '100000000000000000000'],
    [NaN, 'NaN'],
    [2.5, '2.5'],
  ] as const) {
    assertThrowsKind(() => setNumThreads(n), RangeError, new RegExp(`^setNumThreads: n must be an integer.*, got ${shown}$`));
  }
  assert.equal(getNumThreads(), before);
  assertThrowsKind(
    () => native.fromBuffer(new Float32Array(1), [1], 2 ** 32 + FLOAT32),
    RangeError,
    /^fromBuffer: dtype must be an integer from 0 to \d+, got 4294967302$/,
  );
});

test('an int64 argument out of range or NaN is refused with the op and argument named', () => {
  const narrow = op('aten::narrow');
  const x = tensor([1, 2, 3]);
  assertThrowsKind(
    () => narrow(x, 0, 1e20, 1),
    RangeError,
    /^aten::narrow\(.*\): argument 'start' must be an integer from .*, got 100000000000000000000$/,
  );
  assertThrowsKind(() => narrow(x, 0, NaN, 1), RangeError, /^aten::narrow\(.*\): argument 'start' must be an integer, got NaN$/);
  assertThrowsKind(
    () => zeros([2 ** 63]),
    RangeError,
    /^aten::zeros\(.*\): argument 'size'\[0\] must be an integer from .*, got 9223372036854775808$/,
  );
});

test('a BigInt that does not fit is refused, not truncated (its lossless flag is read)', () => {
  const narrow = op('aten::narrow');
  const x = tensor([1, 2, 3]);
  // 2^64 became 0 before, and narrow silently returned the first element.
  assertThrowsKind(
    () => narrow(x, 0, 2n ** 64n, 1),
    RangeError,
    /argument 'start' must be an integer from .*, got a BigInt outside the 64-bit range$/,
  );
  assertThrowsKind(() => narrow(x, 0, 2n ** 63n, 1), RangeError, /argument 'start' must be an integer from .*, got 9223372036854775808n$/);
  assert.deepEqual((narrow(x, 0, 1n, 2) as Tensor).toArray(), [2, 3]);
  assertThrowsKind(() => manualSeed(2n ** 64n), RangeError, /^manualSeed: seed must be an integer from -2\^63 to 2\^64 - 1/);
  assertThrowsKind(() => manualSeed(1.5), RangeError, /^manualSeed: seed must be an integer, got 1\.5$/);
  // The largest seed torch.manual_seed takes is accepted, and a negative one is taken modulo 2^64 as there.
  manualSeed(2n ** 64n - 1n);
  const a = randn([3]).toFlatArray();
  manualSeed(-1);
  assert.deepEqual(randn([3]).toFlatArray(), a);
});

test('a dtype, layout or memory-format code out of range is refused, not used to index a table', () => {
  const x = tensor([1]);
  assertThrowsKind(
    () => op('aten::zeros')([2], 99),
    RangeError,
    /^aten::zeros\(.*\): argument 'dtype' must be an integer from 0 to \d+, got 99$/,
  );
  assertThrowsKind(() => op('aten::to', 'dtype')(x, -1), RangeError, /argument 'dtype' must be an integer from 0 to \d+, got -1$/);
  assertThrowsKind(() => op('aten::zeros')([2], null, 99), RangeError, /argument 'layout' must be an integer from 0 to \d+, got 99$/);
  // An unknown memory format was ignored before: contiguous() returned as if it were valid.
  assertThrowsKind(() => op('aten::contiguous')(x, 99), RangeError, /argument 'memory_format' must be an integer from 0 to 3, got 99$/);
  assert.deepEqual((op('aten::zeros')([2], 4) as Tensor).dtype, 'int64');
});

test('"a number was expected" names the function and the argument', () => {
  assertThrowsKind(() => setNumThreads('4' as unknown as number), TypeError, /^setNumThreads: n must be an integer, got '4'$/);
  assertThrowsKind(() => new Generator('7' as unknown as number), TypeError, /^Generator: seed must be an integer, got '7'$/);
  assertThrowsKind(() => new Generator(NaN), RangeError, /^Generator: seed must be an integer, got NaN$/);
  assertThrowsKind(() => native.callOp('x' as unknown as number, []), TypeError, /^callOp: index must be an integer, got 'x'$/);
  assertThrowsKind(() => native.schemaOf(-1), RangeError, /^schemaOf: index must be an integer from 0 to .*, got -1$/);
  assertThrowsKind(() => native.opHandle(5 as unknown as string, ''), TypeError, /^op: name must be a string, got 5$/);
  assertThrowsKind(
    () => native.setGradEnabled('yes' as unknown as boolean),
    TypeError,
    /^setGradEnabled: enabled must be a boolean, got 'yes'$/,
  );
  const index = native.opHandle('aten::relu', '');
  assertThrowsKind(
    () => native.callOp(index, 5 as unknown as unknown[]),
    TypeError,
    /^aten::relu\(5\): arguments must be an array, got 5$/,
  );
});

test('a generator for a device that is not cpu or cuda is refused by name', () => {
  assertThrowsKind(() => new Generator(1, 'meta'), RangeError, /Generator: device must be 'cpu' or 'cuda\[:N\]', got 'meta'/);
  assert.throws(() => new Generator(1, 'no-such-device'), /^Error: Generator\(1, 'no-such-device'\): /);
  const g = new Generator(1) as unknown as { generatorHandle: GeneratorHandle };
  assert.equal(typeof g.generatorHandle, 'object');
});
