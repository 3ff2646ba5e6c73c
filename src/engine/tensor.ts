// The Tensor: a handle on a libtorch tensor with PyTorch's semantics (broadcasting, dtype
// promotion, autograd), named in camelCase. Every method is one libtorch op; nothing loops over
// elements in JavaScript.
import { native, type Handle } from './native.js';
import { dtypeCode, dtypeFromCode, typedArrayFor, type DType, type TypedArray } from './dtype.js';
import { track, keep as keepInScope } from './scope.js';
import { installTensorConversions, op } from './op.js';

/** A device string: 'cpu', 'cuda' or 'cuda:N'. */
export type Device = string;
/** A dimension list, or one dimension. */
export type Dims = number | number[];
/** Something arithmetic accepts on its right: a tensor or a number (broadcast). */
export type TensorOrNumber = Tensor | number;

/** Results of reductions over one dimension that also return where the extreme was. */
export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

const ops = {
  add: op('aten::add', 'Tensor'),
  addScalar: op('aten::add', 'Scalar'),
  add_: op('aten::add_', 'Tensor'),
  addScalar_: op('aten::add_', 'Scalar'),
  sub: op('aten::sub', 'Tensor'),
  subScalar: op('aten::sub', 'Scalar'),
  sub_: op('aten::sub_', 'Tensor'),
  subScalar_: op('aten::sub_', 'Scalar'),
  rsubScalar: op('aten::rsub', 'Scalar'),
  mul: op('aten::mul', 'Tensor'),
  mulScalar: op('aten::mul', 'Scalar'),
  mul_: op('aten::mul_', 'Tensor'),
  mulScalar_: op('aten::mul_', 'Scalar'),
  div: op('aten::div', 'Tensor'),
  divScalar: op('aten::div', 'Scalar'),
  div_: op('aten::div_', 'Tensor'),
  divScalar_: op('aten::div_', 'Scalar'),
  pow: op('aten::pow', 'Tensor_Tensor'),
  powScalar: op('aten::pow', 'Tensor_Scalar'),
  remainder: op('aten::remainder', 'Scalar'),
  maximum: op('aten::maximum'),
  minimum: op('aten::minimum'),
  matmul: op('aten::matmul'),
  mm: op('aten::mm'),
  bmm: op('aten::bmm'),
  neg: op('aten::neg'),
  abs: op('aten::abs'),
  exp: op('aten::exp'),
  log: op('aten::log'),
  log1p: op('aten::log1p'),
  expm1: op('aten::expm1'),
  sqrt: op('aten::sqrt'),
  rsqrt: op('aten::rsqrt'),
  square: op('aten::square'),
  reciprocal: op('aten::reciprocal'),
  sin: op('aten::sin'),
  cos: op('aten::cos'),
  tanh: op('aten::tanh'),
  sigmoid: op('aten::sigmoid'),
  erf: op('aten::erf'),
  sign: op('aten::sign'),
  floor: op('aten::floor'),
  ceil: op('aten::ceil'),
  round: op('aten::round'),
  clamp: op('aten::clamp'),
  clamp_: op('aten::clamp_'),
  relu: op('aten::relu'),
  gelu: op('aten::gelu'),
  silu: op('aten::silu'),
  eq: op('aten::eq', 'Tensor'),
  eqScalar: op('aten::eq', 'Scalar'),
  ne: op('aten::ne', 'Tensor'),
  neScalar: op('aten::ne', 'Scalar'),
  lt: op('aten::lt', 'Tensor'),
  ltScalar: op('aten::lt', 'Scalar'),
  le: op('aten::le', 'Tensor'),
  leScalar: op('aten::le', 'Scalar'),
  gt: op('aten::gt', 'Tensor'),
  gtScalar: op('aten::gt', 'Scalar'),
  ge: op('aten::ge', 'Tensor'),
  geScalar: op('aten::ge', 'Scalar'),
  logicalNot: op('aten::logical_not'),
  logicalAnd: op('aten::logical_and'),
  logicalOr: op('aten::logical_or'),
  isnan: op('aten::isnan'),
  isfinite: op('aten::isfinite'),
  sumAll: op('aten::sum'),
  sumDims: op('aten::sum', 'dim_IntList'),
  meanAll: op('aten::mean'),
  meanDims: op('aten::mean', 'dim'),
  prodAll: op('aten::prod'),
  maxAll: op('aten::max'),
  maxDim: op<[Tensor, Tensor]>('aten::max', 'dim'),
  minAll: op('aten::min'),
  minDim: op<[Tensor, Tensor]>('aten::min', 'dim'),
  amax: op('aten::amax'),
  amin: op('aten::amin'),
  argmax: op('aten::argmax'),
  argmin: op('aten::argmin'),
  std: op('aten::std', 'correction'),
  var: op('aten::var', 'correction'),
  norm: op('aten::linalg_vector_norm'),
  logsumexp: op('aten::logsumexp'),
  cumsum: op('aten::cumsum'),
  any: op('aten::any'),
  all: op('aten::all'),
  softmax: op('aten::softmax', 'int'),
  logSoftmax: op('aten::log_softmax', 'int'),
  reshape: op('aten::reshape'),
  view: op('aten::view'),
  permute: op('aten::permute'),
  transpose: op('aten::transpose', 'int'),
  contiguous: op('aten::contiguous'),
  expand: op('aten::expand'),
  squeeze: op('aten::squeeze'),
  squeezeDim: op('aten::squeeze', 'dim'),
  unsqueeze: op('aten::unsqueeze'),
  flatten: op('aten::flatten', 'using_ints'),
  repeat: op('aten::repeat'),
  narrow: op('aten::narrow'),
  select: op('aten::select', 'int'),
  slice: op('aten::slice', 'Tensor'),
  index: op('aten::index', 'Tensor'),
  indexPut_: op('aten::index_put_'),
  indexSelect: op('aten::index_select'),
  gather: op('aten::gather'),
  scatterAdd: op('aten::scatter_add'),
  maskedFill: op('aten::masked_fill', 'Scalar'),
  maskedSelect: op('aten::masked_select'),
  topk: op<[Tensor, Tensor]>('aten::topk'),
  sort: op<[Tensor, Tensor]>('aten::sort'),
  argsort: op('aten::argsort'),
  clone: op('aten::clone'),
  detach: op('aten::detach'),
  toDtypeLayout: op('aten::to', 'dtype_layout'),
  pinMemory: op('aten::pin_memory'),
  isPinned: op<boolean>('aten::is_pinned'),
  copy_: op('aten::copy_'),
  zero_: op('aten::zero_'),
  fill_: op('aten::fill_', 'Scalar'),
  addcmul_: op('aten::addcmul_'),
  addcdiv_: op('aten::addcdiv_'),
  lerp_: op('aten::lerp_', 'Scalar'),
  requiresGrad_: op('aten::requires_grad_'),
  backward: op<void>('aten::_backward'),
  item: op<number | boolean>('aten::item'),
};

function dimList(dims: Dims): number[] {
  return typeof dims === 'number' ? [dims] : dims;
}

/**
 * A multi-dimensional array on a device, backed by libtorch.
 *
 * @example
 * const x = tensor([[1, 2], [3, 4]]);
 * x.matmul(x).add(1).toArray(); // [[8, 11], [16, 23]]
 */
export class Tensor {
  #handle: Handle | null;
  #shape: number[] | undefined;
  #dtype: DType | undefined;
  #device: Device | undefined;

  /** Wraps a handle the addon returned; users make tensors with tensor(), zeros() and friends. */
  constructor(handle: Handle) {
    this.#handle = handle;
    track(this);
  }

  /** The native handle; throws a clear error once the tensor was disposed. */
  get handle(): Handle {
    if (this.#handle === null) throw new Error('this tensor was disposed; it can no longer be used');
    return this.#handle;
  }

  #readMeta(): void {
    const [shape, code, device] = native.meta(this.handle);
    this.#shape = shape;
    this.#dtype = dtypeFromCode(code);
    this.#device = device;
  }

  get shape(): number[] {
    if (this.#shape === undefined) this.#readMeta();
    return this.#shape!.slice();
  }
  get dtype(): DType {
    if (this.#dtype === undefined) this.#readMeta();
    return this.#dtype!;
  }
  get device(): Device {
    if (this.#device === undefined) this.#readMeta();
    return this.#device!;
  }
  get ndim(): number {
    return this.shape.length;
  }
  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  // ---- memory ----
  get isDisposed(): boolean {
    return this.#handle === null;
  }
  /** Frees this handle's reference now; storage shared with other tensors lives on through them. */
  dispose(): void {
    if (this.#handle === null) return;
    native.dispose(this.#handle);
    this.#handle = null;
  }
  /** Excludes this tensor from the enclosing tidy() scopes. */
  keep(): this {
    return keepInScope(this);
  }
  /**
   * Internal (scope.ts calls it when no tidy() scope owns this tensor): reports its size to V8, so
   * that garbage collections run when dropped handles hold much native memory.
   */
  unscoped(): void {
    if (this.#handle !== null) native.reportMemory(this.#handle);
  }

  // ---- data out ----
  /** The elements, row-major, in the typed array of the dtype (BigInt64Array for int64). */
  data(): TypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.handle));
  }
  /** Elements as plain numbers, row-major. */
  toFlatArray(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, Number) : Array.from(d as ArrayLike<number>);
  }
  /** Nested arrays matching the shape (a number for a 0-d tensor). */
  toArray(): NestedArray {
    const flat = this.toFlatArray();
    const shape = this.shape;
    if (shape.length === 0) return flat[0]!;
    let offset = 0;
    const build = (dim: number): NestedArray => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[dim]!; i++) out.push(dim === shape.length - 1 ? flat[offset++]! : build(dim + 1));
      return out;
    };
    return build(0);
  }
  /** The value of a one-element tensor. */
  item(): number {
    const v = ops.item(this);
    return typeof v === 'boolean' ? Number(v) : v;
  }

  // ---- dtype and device ----
  /**
   * Converts to a dtype and/or device ('cpu', 'cuda:0'); returns this tensor's value unchanged when
   * nothing changes. `nonBlocking` lets a copy from pinned host memory to a GPU run asynchronously
   * on the current stream, as PyTorch's `non_blocking=True` (later ops on that stream wait for it).
   */
  to(target: DType | Device | { dtype?: DType; device?: Device; nonBlocking?: boolean }): Tensor {
    let dtype: DType | undefined;
    let device: Device | undefined;
    let nonBlocking = false;
    if (typeof target === 'string') {
      if (/^(cpu|cuda|mps|meta)(:\d+)?$/.test(target)) device = target;
      else dtype = target as DType;
    } else {
      dtype = target.dtype;
      device = target.device;
      nonBlocking = target.nonBlocking ?? false;
    }
    return ops.toDtypeLayout(this, dtype === undefined ? null : dtypeCode(dtype), null, device ?? null, null, nonBlocking);
  }
  /**
   * A copy in page-locked (pinned) host memory, which a GPU reads by DMA so that a non-blocking
   * copy to it overlaps other work. Needs a libtorch with CUDA.
   *
   * @example
   * const onGpu = batch.pinMemory().to({ device: 'cuda:0', nonBlocking: true });
   */
  pinMemory(): Tensor {
    return ops.pinMemory(this);
  }
  /** Whether this tensor's memory is pinned host memory (always false without CUDA). */
  get isPinned(): boolean {
    return Boolean(ops.isPinned(this));
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  clone(): Tensor {
    return ops.clone(this);
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  /** Marks a leaf tensor as one whose gradient autograd accumulates. */
  requiresGrad_(flag = true): this {
    ops.requiresGrad_.inPlace(this, flag);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient, or null before backward(). A new handle on the same memory. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g === null ? null : g.handle);
  }
  /** Back-propagates from this tensor (a scalar unless `gradient` is given). */
  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    ops.backward.inPlace(this, [], gradient ?? null, options.retainGraph ?? null, options.createGraph ?? false);
  }
  /** A tensor sharing this one's memory, cut from the autograd graph (PyTorch's stop-gradient). */
  detach(): Tensor {
    return ops.detach(this);
  }

  // ---- arithmetic (broadcasting, PyTorch's type promotion) ----
  add(other: TensorOrNumber, alpha = 1): Tensor {
    return typeof other === 'number' ? ops.addScalar(this, other, alpha) : ops.add(this, other, alpha);
  }
  sub(other: TensorOrNumber, alpha = 1): Tensor {
    return typeof other === 'number' ? ops.subScalar(this, other, alpha) : ops.sub(this, other, alpha);
  }
  /** other − this (for `1 - x` style expressions). */
  rsub(other: number): Tensor {
    return ops.rsubScalar(this, other);
  }
  mul(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.mulScalar(this, other) : ops.mul(this, other);
  }
  div(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.divScalar(this, other) : ops.div(this, other);
  }
  pow(exponent: TensorOrNumber): Tensor {
    return typeof exponent === 'number' ? ops.powScalar(this, exponent) : ops.pow(this, exponent);
  }
  remainder(divisor: number): Tensor {
    return ops.remainder(this, divisor);
  }
  maximum(other: Tensor): Tensor {
    return ops.maximum(this, other);
  }
  minimum(other: Tensor): Tensor {
    return ops.minimum(this, other);
  }
  matmul(other: Tensor): Tensor {
    return ops.matmul(this, other);
  }
  mm(other: Tensor): Tensor {
    return ops.mm(this, other);
  }
  bmm(other: Tensor): Tensor {
    return ops.bmm(this, other);
  }

  // ---- in place (return this) ----
  add_(other: TensorOrNumber, alpha = 1): this {
    if (typeof other === 'number') ops.addScalar_.inPlace(this, other, alpha);
    else ops.add_.inPlace(this, other, alpha);
    return this;
  }
  sub_(other: TensorOrNumber, alpha = 1): this {
    if (typeof other === 'number') ops.subScalar_.inPlace(this, other, alpha);
    else ops.sub_.inPlace(this, other, alpha);
    return this;
  }
  mul_(other: TensorOrNumber): this {
    if (typeof other === 'number') ops.mulScalar_.inPlace(this, other);
    else ops.mul_.inPlace(this, other);
    return this;
  }
  div_(other: TensorOrNumber): this {
    if (typeof other === 'number') ops.divScalar_.inPlace(this, other);
    else ops.div_.inPlace(this, other);
    return this;
  }
  /** this += value · t1 · t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    ops.addcmul_.inPlace(this, t1, t2, value);
    return this;
  }
  /** this += value · t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    ops.addcdiv_.inPlace(this, t1, t2, value);
    return this;
  }
  /** this += weight · (end − this): the EMA update ξ ← τξ + (1−τ)θ is ξ.lerp_(θ, 1 − τ). */
  lerp_(end: Tensor, weight: number): this {
    ops.lerp_.inPlace(this, end, weight);
    return this;
  }
  clamp_(min: number | null, max: number | null = null): this {
    ops.clamp_.inPlace(this, min, max);
    return this;
  }
  copy_(src: Tensor): this {
    ops.copy_.inPlace(this, src, false);
    return this;
  }
  zero_(): this {
    ops.zero_.inPlace(this);
    return this;
  }
  fill_(value: number): this {
    ops.fill_.inPlace(this, value);
    return this;
  }

  // ---- elementwise math ----
  neg(): Tensor {
    return ops.neg(this);
  }
  abs(): Tensor {
    return ops.abs(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  log1p(): Tensor {
    return ops.log1p(this);
  }
  expm1(): Tensor {
    return ops.expm1(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  square(): Tensor {
    return ops.square(this);
  }
  reciprocal(): Tensor {
    return ops.reciprocal(this);
  }
  sin(): Tensor {
    return ops.sin(this);
  }
  cos(): Tensor {
    return ops.cos(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  erf(): Tensor {
    return ops.erf(this);
  }
  sign(): Tensor {
    return ops.sign(this);
  }
  floor(): Tensor {
    return ops.floor(this);
  }
  ceil(): Tensor {
    return ops.ceil(this);
  }
  round(): Tensor {
    return ops.round(this);
  }
  clamp(min: number | null, max: number | null = null): Tensor {
    return ops.clamp(this, min, max);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  /** GELU; approximate 'tanh' gives the tanh form. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return ops.gelu(this, approximate);
  }
  silu(): Tensor {
    return ops.silu(this);
  }
  softmax(dim: number): Tensor {
    return ops.softmax(this, dim, null);
  }
  logSoftmax(dim: number): Tensor {
    return ops.logSoftmax(this, dim, null);
  }

  // ---- comparisons (bool tensors) ----
  eq(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.eqScalar(this, other) : ops.eq(this, other);
  }
  ne(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.neScalar(this, other) : ops.ne(this, other);
  }
  lt(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.ltScalar(this, other) : ops.lt(this, other);
  }
  le(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.leScalar(this, other) : ops.le(this, other);
  }
  gt(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.gtScalar(this, other) : ops.gt(this, other);
  }
  ge(other: TensorOrNumber): Tensor {
    return typeof other === 'number' ? ops.geScalar(this, other) : ops.ge(this, other);
  }
  logicalNot(): Tensor {
    return ops.logicalNot(this);
  }
  logicalAnd(other: Tensor): Tensor {
    return ops.logicalAnd(this, other);
  }
  logicalOr(other: Tensor): Tensor {
    return ops.logicalOr(this, other);
  }
  isnan(): Tensor {
    return ops.isnan(this);
  }
  isfinite(): Tensor {
    return ops.isfinite(this);
  }
  /** Whether any element is true (a 0-d bool tensor). */
  any(): Tensor {
    return ops.any(this);
  }
  all(): Tensor {
    return ops.all(this);
  }

  // ---- reductions: no dims = over everything ----
  sum(dims?: Dims, keepdim = false): Tensor {
    return dims === undefined ? ops.sumAll(this, null) : ops.sumDims(this, dimList(dims), keepdim, null);
  }
  mean(dims?: Dims, keepdim = false): Tensor {
    return dims === undefined ? ops.meanAll(this, null) : ops.meanDims(this, dimList(dims), keepdim, null);
  }
  prod(): Tensor {
    return ops.prodAll(this, null);
  }
  /** The largest element (0-d), or, with a dim, {values, indices} along it. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return ops.maxAll(this);
    const [values, indices] = ops.maxDim(this, dim, keepdim);
    return { values, indices };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return ops.minAll(this);
    const [values, indices] = ops.minDim(this, dim, keepdim);
    return { values, indices };
  }
  amax(dims: Dims, keepdim = false): Tensor {
    return ops.amax(this, dimList(dims), keepdim);
  }
  amin(dims: Dims, keepdim = false): Tensor {
    return ops.amin(this, dimList(dims), keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return ops.argmax(this, dim ?? null, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return ops.argmin(this, dim ?? null, keepdim);
  }
  /** Standard deviation; `correction` 1 (default) is Bessel's unbiased estimate, 0 the population one. */
  std(dims?: Dims, options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return ops.std(this, dims === undefined ? null : dimList(dims), options.correction ?? 1, options.keepdim ?? false);
  }
  var(dims?: Dims, options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return ops.var(this, dims === undefined ? null : dimList(dims), options.correction ?? 1, options.keepdim ?? false);
  }
  /** The p-norm (default 2) over dims, or over all elements. */
  norm(p = 2, dims?: Dims, keepdim = false): Tensor {
    return ops.norm(this, p, dims === undefined ? null : dimList(dims), keepdim, null);
  }
  logsumexp(dims: Dims, keepdim = false): Tensor {
    return ops.logsumexp(this, dimList(dims), keepdim);
  }
  cumsum(dim: number): Tensor {
    return ops.cumsum(this, dim, null);
  }

  // ---- shape ----
  reshape(...shape: number[]): Tensor {
    return ops.reshape(this, shape);
  }
  /** Like reshape, but never copies: fails when the memory layout does not allow it. */
  view(...shape: number[]): Tensor {
    return ops.view(this, shape);
  }
  permute(...dims: number[]): Tensor {
    return ops.permute(this, dims);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return ops.transpose(this, dim0, dim1);
  }
  /** Transpose of a 2-D tensor. */
  t(): Tensor {
    return this.transpose(0, 1);
  }
  contiguous(): Tensor {
    return ops.contiguous(this, 0);
  }
  get isContiguous(): boolean {
    return native.isContiguous(this.handle);
  }
  /** Broadcasts size-1 dims to `shape` without copying (−1 keeps a dim). */
  expand(...shape: number[]): Tensor {
    return ops.expand(this, shape, false);
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(...other.shape);
  }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? ops.squeeze(this) : ops.squeezeDim(this, dim);
  }
  unsqueeze(dim: number): Tensor {
    return ops.unsqueeze(this, dim);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return ops.flatten(this, startDim, endDim);
  }
  repeat(...times: number[]): Tensor {
    return ops.repeat(this, times);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return ops.narrow(this, dim, start, length);
  }
  /** The slice at `index` along `dim`, with that dim removed (x[i] is x.select(0, i)). */
  select(dim: number, index: number): Tensor {
    return ops.select(this, dim, index);
  }
  /** x[start:end:step] along dim, a view; null bounds mean the ends. */
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return ops.slice(this, dim, start, end, step);
  }
  /** Advanced indexing x[i0, i1, ...] with index tensors (null skips a dim), as PyTorch's x[idx]. */
  index(indices: (Tensor | null)[]): Tensor {
    return ops.index(this, indices);
  }
  /** x[indices] = values (accumulate adds instead). */
  indexPut_(indices: (Tensor | null)[], values: Tensor, accumulate = false): this {
    ops.indexPut_.inPlace(this, indices, values, accumulate);
    return this;
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return ops.indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return ops.gather(this, dim, index, false);
  }
  /** A copy with src added at index along dim (PyTorch's scatter_add). */
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return ops.scatterAdd(this, dim, index, src);
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return ops.maskedFill(this, mask, value);
  }
  maskedSelect(mask: Tensor): Tensor {
    return ops.maskedSelect(this, mask);
  }
  topk(k: number, dim = -1, largest = true, sorted = true): ValuesIndices {
    const [values, indices] = ops.topk(this, k, dim, largest, sorted);
    return { values, indices };
  }
  sort(dim = -1, descending = false): ValuesIndices {
    const [values, indices] = ops.sort(this, dim, descending);
    return { values, indices };
  }
  argsort(dim = -1, descending = false): Tensor {
    return ops.argsort(this, dim, descending);
  }

  toString(): string {
    if (this.isDisposed) return 'Tensor(<disposed>)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

export type NestedArray = number | NestedArray[];

installTensorConversions(
  (h) => new Tensor(h),
  function unwrap(v: unknown): unknown {
    if (v instanceof Tensor) return v.handle;
    if (Array.isArray(v)) return v.map(unwrap);
    if (v !== null && typeof v === 'object' && 'generatorHandle' in v) return (v as { generatorHandle: unknown }).generatorHandle;
    return v;
  },
);
