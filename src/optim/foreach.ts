// libtorch's multi-tensor ("foreach") kernels: one call updates a whole list of parameters, so an
// optimizer step costs a handful of calls however many parameters there are (PyTorch's
// `foreach=True` path). Only overloads present in both libtorch 1.13 and 2.x are used; the
// Scalar[] overloads are avoided because the addon does not convert Scalar lists, and per-tensor
// factors travel as 0-d tensors through the List overloads (which broadcast per pair).
import { op, type Tensor } from '../engine/index.js';

const ops = {
  add: op<Tensor[]>('aten::_foreach_add', 'List'),
  add_: op<void>('aten::_foreach_add_', 'List'),
  addScalar_: op<void>('aten::_foreach_add_', 'Scalar'),
  mul: op<Tensor[]>('aten::_foreach_mul', 'List'),
  mul_: op<void>('aten::_foreach_mul_', 'List'),
  mulScalar_: op<void>('aten::_foreach_mul_', 'Scalar'),
  divScalar_: op<void>('aten::_foreach_div_', 'Scalar'),
  addcmul_: op<void>('aten::_foreach_addcmul_', 'Scalar'),
  addcdiv_: op<void>('aten::_foreach_addcdiv_', 'Scalar'),
  sqrt: op<Tensor[]>('aten::_foreach_sqrt'),
  maximum_: op<void>('aten::_foreach_maximum_', 'List'),
  norm: op<Tensor[]>('aten::_foreach_norm', 'Scalar'),
};

/** xs[i] + alpha·ys[i], as new tensors. */
export function add(xs: Tensor[], ys: Tensor[], alpha = 1): Tensor[] {
  return ops.add(xs, ys, alpha);
}

/** xs[i] += alpha·ys[i] */
export function add_(xs: Tensor[], ys: Tensor[], alpha = 1): void {
  ops.add_.inPlace(xs, ys, alpha);
}

/** xs[i] += s */
export function addScalar_(xs: Tensor[], s: number): void {
  ops.addScalar_.inPlace(xs, s);
}

/** xs[i]·ys[i] (ys[i] may be a 0-d tensor), as new tensors. */
export function mul(xs: Tensor[], ys: Tensor[]): Tensor[] {
  return ops.mul(xs, ys);
}

/** xs[i] *= ys[i] (ys[i] may be a 0-d tensor). */
export function mul_(xs: Tensor[], ys: Tensor[]): void {
  ops.mul_.inPlace(xs, ys);
}

/** xs[i] *= s */
export function mulScalar_(xs: Tensor[], s: number): void {
  ops.mulScalar_.inPlace(xs, s);
}

/** xs[i] /= s */
export function divScalar_(xs: Tensor[], s: number): void {
  ops.divScalar_.inPlace(xs, s);
}

/** xs[i] += value·as[i]·bs[i] */
export function addcmul_(xs: Tensor[], as: Tensor[], bs: Tensor[], value: number): void {
  ops.addcmul_.inPlace(xs, as, bs, value);
}

/** xs[i] += value·as[i]/bs[i] */
export function addcdiv_(xs: Tensor[], as: Tensor[], bs: Tensor[], value: number): void {
  ops.addcdiv_.inPlace(xs, as, bs, value);
}

/** √xs[i], as new tensors. */
export function sqrt(xs: Tensor[]): Tensor[] {
  return ops.sqrt(xs);
}

/** xs[i] = max(xs[i], ys[i]) elementwise. */
export function maximum_(xs: Tensor[], ys: Tensor[]): void {
  ops.maximum_.inPlace(xs, ys);
}

/** The p-norm of each tensor (0-d tensors); p = Infinity gives the largest magnitude. */
export function norm(xs: Tensor[], p = 2): Tensor[] {
  return ops.norm(xs, p);
}
