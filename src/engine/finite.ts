// Finding NaN and ±Infinity in many tensors at once: the guard trainers run before an optimizer
// step and checkpoints run before writing or loading weights.
import { stack } from './create.js';
import { isFloating } from './dtype.js';
import { op } from './op.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';

const foreachNorm = op<Tensor[]>('aten::_foreach_norm', 'Scalar');

/**
 * The keys of the tensors that hold a NaN or an infinity, in the order given. Integer and bool
 * tensors are always finite. One multi-tensor call and one device-to-host copy however many
 * tensors there are, so a trainer can afford it every step.
 *
 * @example
 * nonFiniteKeys(new Map([['w', tensor([1, NaN])], ['b', tensor([0])]])); // ['w']
 */
export function nonFiniteKeys<K>(entries: Iterable<readonly [K, Tensor]>): K[] {
  const floating = [...entries].filter(([, t]) => isFloating(t.dtype));
  if (floating.length === 0) return [];
  const mixed = floating.some(([, t]) => t.dtype !== floating[0]![1].dtype);
  const norms = tidy(() => {
    const each = foreachNorm(
      floating.map(([, t]) => t),
      2,
    );
    return stack(mixed ? each.map((n) => n.float()) : each).toFlatArray();
  });
  // A NaN or an infinity always makes the 2-norm non-finite; a finite tensor does only when its
  // squares overflow (|x| > ~1e19 in float32), so only those few are checked element by element.
  return floating.filter(([, t], i) => !Number.isFinite(norms[i]) && !tidy(() => t.isfinite().all().item())).map(([key]) => key);
}

/** Names for a message: the first `shown`, then "and N more". */
export function fewNames(names: readonly string[], shown = 5): string {
  const listed = names.slice(0, shown).join(', ');
  return names.length > shown ? `${listed} and ${names.length - shown} more` : listed;
}
