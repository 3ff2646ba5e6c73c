// Calling a libtorch operator by name: resolved once, then called through the addon's one door
// (native/ops.cc). Tensor arguments travel as handles and tensor results come back as Tensors.
import { native, type Handle } from './native.js';
import type { Tensor } from './tensor.js';

/** What an op wrapper accepts: values the addon converts by the operator's schema. */
export type OpArg = unknown;

/**
 * A resolved operator: call it with its schema's positional arguments. R is what the schema
 * returns, as it arrives in JS: a Tensor, a tuple or list of them, a number or boolean for a
 * Scalar, void for an op that returns nothing. The addon does not check R; op<R>() states it.
 */
export interface Op<R = Tensor> {
  (...args: OpArg[]): R;
  /** Calls an in-place op and drops its result (the caller returns `this`). */
  inPlace(...args: OpArg[]): void;
  readonly qualifiedName: string;
}

type Wrap = (h: Handle) => unknown;
type Unwrap = (v: unknown) => unknown;

let wrapHandle: Wrap = (h) => h;
let unwrapArg: Unwrap = (v) => v;

/** tensor.ts installs how handles become Tensors and back (it cannot be imported here: cycle). */
export function installTensorConversions(wrap: Wrap, unwrap: Unwrap): void {
  wrapHandle = wrap;
  unwrapArg = unwrap;
}

function fromNative(value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'object' && !Array.isArray(value)) return wrapHandle(value as Handle);
  if (Array.isArray(value)) return value.map(fromNative);
  return value;
}

/**
 * op('aten::add', 'Tensor') → a function calling that overload. The lookup happens on first use,
 * so an op missing from an older libtorch only fails where it is used. R names the result type
 * when it is not one Tensor.
 *
 * @example
 * const add = op('aten::add', 'Tensor'); // add(a, b, 1): Tensor
 * const maxDim = op<[Tensor, Tensor]>('aten::max', 'dim'); // [values, indices]
 * const item = op<number | boolean>('aten::item');
 */
export function op<R = Tensor>(name: string, overload = ''): Op<R> {
  let index = -1;
  const resolve = (): number => {
    if (index < 0) index = native.opHandle(name, overload);
    return index;
  };
  const call = (args: OpArg[], discard: boolean): unknown => native.callOp(resolve(), args.map(unwrapArg), discard);
  const fn = ((...args: OpArg[]) => fromNative(call(args, false))) as Op<R>;
  fn.inPlace = (...args: OpArg[]) => void call(args, true);
  Object.defineProperty(fn, 'qualifiedName', { value: overload ? `${name}.${overload}` : name });
  return fn;
}
