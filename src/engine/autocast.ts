// Mixed precision: inside autocast(), libtorch runs the ops that gain from a lower precision
// (matmul, linear, convolutions) in bfloat16 or float16, and those that need the range (softmax,
// norms, losses) in float32, while the weights stay float32. The switch is libtorch's own
// (native/autocast.cc), entered and left as torch.autocast does.
import { native } from './native.js';
import { dtypeCode, dtypeFromCode, type DType } from './dtype.js';
import type { Device } from './tensor.js';

/** The lower precisions autocast computes in. */
export type AutocastDType = 'bfloat16' | 'float16';

/** Autocast's switch for one device type. */
export interface AutocastState {
  enabled: boolean;
  /** The precision eligible ops run in while enabled. */
  dtype: DType;
}

/** 'cpu' or 'cuda' for a device string: autocast has one switch per device type. */
function deviceTypeOf(device: Device): 'cpu' | 'cuda' {
  if (device === 'cpu') return 'cpu';
  if (/^cuda(:\d+)?$/.test(device)) return 'cuda';
  throw new RangeError(`autocast: device must be 'cpu', 'cuda' or 'cuda:N', got '${device}'`);
}

/**
 * Runs `fn` with autocast on for `device`'s type, in `dtype`, and restores the previous state
 * afterwards, also when `fn` throws. Scopes nest; the weights' cast copies, cached while a scope
 * runs, are dropped when the outermost one ends. libtorch 1.13's CPU autocast has bfloat16 only;
 * CUDA takes float16 or bfloat16. `fn` must be synchronous: the switch is per thread, so code
 * running during an await would run under it too.
 *
 * Outputs keep the dtype the ops gave them (a matmul's is bfloat16): cast what must be float32
 * (losses, statistics) after the scope, as PyTorch's mixed-precision recipes do.
 *
 * @example
 * const y = autocast('bfloat16', 'cpu', () => x.matmul(w)); // y.dtype === 'bfloat16'
 * const loss = lossOf(y.float());
 */
export function autocast<T>(dtype: AutocastDType, device: Device, fn: () => T): T {
  const deviceType = deviceTypeOf(device);
  if (dtype !== 'bfloat16' && dtype !== 'float16')
    throw new RangeError(`autocast: dtype must be 'bfloat16' or 'float16', got '${String(dtype)}'`);
  if (deviceType === 'cpu' && dtype === 'float16')
    throw new RangeError("autocast: float16 is not available on the CPU (libtorch's CPU autocast has bfloat16 only)");
  if (deviceType === 'cuda' && native.cudaDeviceCount() === 0)
    throw new Error(`autocast: '${device}' asks for CUDA, but the linked libtorch ${native.libtorchVersion} has no CUDA device`);
  const [enabled, previousDtype, cacheEnabled] = native.autocastEnter(deviceType, dtypeCode(dtype));
  let result: T;
  try {
    result = fn();
  } finally {
    native.autocastExit(deviceType, enabled, previousDtype, cacheEnabled);
  }
  if (typeof (result as { then?: unknown } | null)?.then === 'function')
    throw new TypeError('autocast: fn returned a promise; autocast is a synchronous scope (its switch is per thread, not per task)');
  return result;
}

/**
 * Whether autocast is on for a device type, and its precision.
 *
 * @example
 * autocastState('cpu'); // { enabled: false, dtype: 'bfloat16' } outside any autocast scope
 */
export function autocastState(device: Device = 'cpu'): AutocastState {
  const [enabled, code] = native.autocastState(deviceTypeOf(device));
  return { enabled, dtype: dtypeFromCode(code) };
}
