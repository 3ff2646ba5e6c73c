// The precision of the aligner's forward pass (train.precision). 'bf16' and 'fp16' run the
// online and target networks under libtorch's autocast; what follows the forward stays float32:
// the losses (their normalisations, variances and logits), BatchNorm's running statistics (kept
// float32 by libtorch's mixed-dtype kernels), the optimizer and the EMA target. Users of the Python
// libraries report NaNs when these run in half precision. fp16's narrow range also needs a
// gradient scaler (src/optim/grad_scaler.ts); bfloat16 has float32's range and does not.
import type { AutocastDType, Device } from '../engine/index.js';

export type Precision = 'fp32' | 'bf16' | 'fp16';

/** The autocast dtype of a precision, or null for fp32 (no autocast). */
export function autocastDtypeOf(precision: Precision): AutocastDType | null {
  return precision === 'bf16' ? 'bfloat16' : precision === 'fp16' ? 'float16' : null;
}

/**
 * Why `precision` cannot train on `device`, or null when it can: fp16 needs CUDA, since libtorch
 * 1.13's CPU autocast has bfloat16 only. An unknown precision names the ones there are.
 *
 * @example
 * precisionProblem('fp16', 'cpu'); // "'fp16' needs a CUDA device ..."
 * precisionProblem('bf16', 'cpu'); // null
 */
export function precisionProblem(precision: string, device: Device): string | null {
  if (precision !== 'fp32' && precision !== 'bf16' && precision !== 'fp16') return `expected fp32, bf16 or fp16, got '${precision}'`;
  if (precision === 'fp16' && !device.startsWith('cuda'))
    return `'fp16' needs a CUDA device, but training runs on ${device}: libtorch's CPU autocast has bfloat16 only; use bf16 or fp32 there`;
  return null;
}
