// Presence masks: which rows of a batch take part in a loss term. An item may lack a modality; its
// rows then hold anything (AlignModel writes zeros) and must neither count in a mean nor leak a NaN
// into it, so the terms select the present rows (index_select) rather than multiply by the mask.
import { arange, type Tensor } from '../engine/index.js';

/** The rows a mask keeps: every row (no copy needed), none, or these int64 indices. */
export type PresentRows = { kind: 'all' } | { kind: 'none' } | { kind: 'some'; rows: Tensor };

/** Throws unless `mask` is a bool tensor of shape [n]; `what` names it in the message. */
export function checkMask(mask: Tensor, n: number, what: string): void {
  const shape = mask.shape;
  if (mask.dtype !== 'bool' || shape.length !== 1 || shape[0] !== n) {
    throw new TypeError(`${what} must be a bool tensor of shape [${n}], got ${mask.dtype} [${shape.join(', ')}]`);
  }
}

/** `a ∧ b`, where an absent mask means every row is present. */
export function bothPresent(a: Tensor | undefined, b: Tensor | undefined): Tensor | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.logicalAnd(b);
}

/** Resolves a mask over n rows (undefined: all present). Reads the count back, one sync. */
export function presentRows(mask: Tensor | undefined, n: number): PresentRows {
  if (mask === undefined) return { kind: 'all' };
  const rows = arange(n, undefined, 1, { device: mask.device }).maskedSelect(mask);
  const count = rows.shape[0]!;
  if (count === n) return { kind: 'all' };
  if (count === 0) return { kind: 'none' };
  return { kind: 'some', rows };
}

/** x restricted to the selected rows (x itself when all are selected). */
export function takeRows(x: Tensor, selection: PresentRows): Tensor {
  if (selection.kind === 'all') return x;
  if (selection.kind === 'some') return x.indexSelect(0, selection.rows);
  return x.narrow(0, 0, 0);
}

/** How many rows a selection of n rows keeps. */
export function rowCount(selection: PresentRows, n: number): number {
  if (selection.kind === 'all') return n;
  return selection.kind === 'some' ? selection.rows.shape[0]! : 0;
}

/**
 * A 0 inside the autograd graph of every x: the value of a term with no items. A mean over no rows
 * would be 0/0 = NaN; this is 0, and backward through it still runs (giving zero gradients).
 */
export function graphZero(...xs: [Tensor, ...Tensor[]]): Tensor {
  return xs.map((x) => x.narrow(0, 0, 0).sum()).reduce((sum, zero) => sum.add(zero));
}
