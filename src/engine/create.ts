// Making tensors: from JS data, constants, ranges and random draws.
import { native } from './native.js';
import { dtypeCode, dtypeOfTypedArray, type DType } from './dtype.js';
import { Tensor, type Device, type NestedArray } from './tensor.js';
import { op } from './op.js';
import type { Generator } from './runtime.js';

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

const ops = {
  zeros: op('aten::zeros'),
  ones: op('aten::ones'),
  full: op('aten::full'),
  arange: op('aten::arange', 'start_step'),
  linspace: op('aten::linspace'),
  eye: op('aten::eye'),
  rand: op('aten::rand', 'generator'),
  randn: op('aten::randn', 'generator'),
  randint: op('aten::randint', 'low_generator'),
  randperm: op('aten::randperm', 'generator'),
  zerosLike: op('aten::zeros_like'),
  onesLike: op('aten::ones_like'),
  cat: op('aten::cat'),
  stack: op('aten::stack'),
  where: op('aten::where', 'self'),
};

function finish(t: Tensor, options: CreateOptions): Tensor {
  return options.requiresGrad ? t.requiresGrad_(true) : t;
}

function code(dtype: DType | undefined): number | null {
  return dtype === undefined ? null : dtypeCode(dtype);
}

function flattenNested(data: NestedArray, shape: number[], out: number[], depth: number, path: string): void {
  if (typeof data === 'number' || typeof data === 'boolean') {
    if (depth !== shape.length) throw new TypeError(`tensor(): ragged nested array at ${path || 'top level'}`);
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data)) throw new TypeError(`tensor(): element at ${path || 'top level'} is ${typeof data}, not a number or an array`);
  if (depth === shape.length) shape.push(data.length);
  else if (shape[depth] !== data.length) {
    throw new TypeError(`tensor(): ragged nested array at ${path || 'top level'}: length ${data.length}, expected ${shape[depth]}`);
  }
  data.forEach((d, i) => flattenNested(d, shape, out, depth + 1, `${path}[${i}]`));
}

// A shape given by the caller: a list of non-negative integers, refused (never truncated)
// otherwise, with the index of the first bad entry.
function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where} must be an array of non-negative integers, got ${typeof shape}`);
  shape.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      throw new RangeError(`${where}[${i}] must be a non-negative integer, got ${typeof d === 'number' ? d : typeof d}`);
  });
  return shape as number[];
}

/**
 * A tensor holding a copy of `data`: nested arrays (float32 unless dtype says otherwise) or a
 * typed array (its own dtype; give `shape`, else it is 1-D).
 *
 * @example
 * tensor([[1, 2], [3, 4]]).shape;                       // [2, 2]
 * tensor(new Float64Array(6), { shape: [2, 3] }).dtype; // 'float64'
 */
export function tensor(data: NestedArray | ArrayBufferView | boolean[], options: CreateOptions & { shape?: number[] } = {}): Tensor {
  let t: Tensor;
  if (options.shape !== undefined) checkShape(options.shape, 'tensor(): options.shape');
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    const shape = options.shape ?? [(data as unknown as { length: number }).length];
    const dtype = options.dtype ?? own;
    if (dtype === own || (dtype === 'bool' && own === 'uint8')) {
      t = new Tensor(native.fromBuffer(data, shape, dtypeCode(dtype)));
    } else {
      const raw = new Tensor(native.fromBuffer(data, shape, dtypeCode(own)));
      try {
        t = raw.to(dtype);
      } finally {
        raw.dispose();
      }
    }
  } else {
    const shape: number[] = [];
    const flat: number[] = [];
    flattenNested(data as NestedArray, shape, flat, 0, '');
    if (options.shape) {
      const n = options.shape.reduce((a, b) => a * b, 1);
      if (n !== flat.length) throw new TypeError(`tensor(): ${flat.length} values cannot have shape [${options.shape.join(', ')}]`);
      shape.splice(0, shape.length, ...options.shape);
    }
    const dtype = options.dtype ?? 'float32';
    const raw = new Tensor(native.fromBuffer(new Float64Array(flat), shape, dtypeCode('float64')));
    if (dtype === 'float64') t = raw;
    else {
      try {
        t = raw.to(dtype);
      } finally {
        raw.dispose();
      }
    }
  }
  if (options.device && options.device !== 'cpu') {
    const onCpu = t;
    try {
      t = onCpu.to(options.device);
    } finally {
      onCpu.dispose();
    }
  }
  return finish(t, options);
}

/** A 0-d tensor. */
export function scalar(value: number, options: CreateOptions = {}): Tensor {
  return tensor(value, options);
}

export function zeros(shape: number[], options: CreateOptions = {}): Tensor {
  return finish(ops.zeros(shape, code(options.dtype), null, options.device ?? null), options);
}

export function ones(shape: number[], options: CreateOptions = {}): Tensor {
  return finish(ops.ones(shape, code(options.dtype), null, options.device ?? null), options);
}

/** A tensor filled with `value` (float32 unless dtype says otherwise). */
export function full(shape: number[], value: number, options: CreateOptions = {}): Tensor {
  return finish(ops.full(shape, value, dtypeCode(options.dtype ?? 'float32'), null, options.device ?? null), options);
}

export function zerosLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return finish(ops.zerosLike(t, code(options.dtype), null, options.device ?? null), options);
}

export function onesLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return finish(ops.onesLike(t, code(options.dtype), null, options.device ?? null), options);
}

/**
 * [start, end) in steps; arange(n) is 0..n−1. Integer arguments give int64, as in PyTorch.
 */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  return finish(ops.arange(from, to, step, code(options.dtype), null, options.device ?? null), options);
}

export function linspace(start: number, end: number, steps: number, options: CreateOptions = {}): Tensor {
  return finish(ops.linspace(start, end, steps, code(options.dtype), null, options.device ?? null), options);
}

export function eye(n: number, options: CreateOptions = {}): Tensor {
  return finish(ops.eye(n, code(options.dtype), null, options.device ?? null), options);
}

/** Uniform on [0, 1). */
export function rand(shape: number[], options: RandomOptions = {}): Tensor {
  return finish(ops.rand(shape, options.generator ?? null, code(options.dtype), null, options.device ?? null), options);
}

/** Standard normal. */
export function randn(shape: number[], options: RandomOptions = {}): Tensor {
  return finish(ops.randn(shape, options.generator ?? null, code(options.dtype), null, options.device ?? null), options);
}

/** Integers uniform on [low, high), int64 unless dtype says otherwise. */
export function randint(low: number, high: number, shape: number[], options: RandomOptions = {}): Tensor {
  return finish(
    ops.randint(low, high, shape, options.generator ?? null, dtypeCode(options.dtype ?? 'int64'), null, options.device ?? null),
    options,
  );
}

/** A random permutation of 0..n−1 (int64). */
export function randperm(n: number, options: RandomOptions = {}): Tensor {
  return ops.randperm(n, options.generator ?? null, dtypeCode(options.dtype ?? 'int64'), null, options.device ?? null);
}

/** Joins tensors along an existing dim. */
export function cat(tensors: Tensor[], dim = 0): Tensor {
  return ops.cat(tensors, dim);
}

/** Joins tensors along a new dim. */
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return ops.stack(tensors, dim);
}

/** Elementwise choice: condition ? a : b (broadcasting). */
export function where(condition: Tensor, a: Tensor, b: Tensor): Tensor {
  return ops.where(condition, a, b);
}
