// Which precision a training run computes its forward pass in (train.precision, `--precision`),
// checked against the device it resolved to before any data is read: fp16 on the CPU is a
// ConfigError (exit code 2) naming the setting, never a failure inside libtorch.
import type { Device } from '../engine/index.js';
import { ConfigError } from '../config/load.js';
import { precisionProblem, type Precision } from '../align/precision.js';

/**
 * `setting` as a Precision for training on `device`; `where` names the setting in errors
 * ('train.precision', '--precision').
 *
 * @example
 * resolvePrecision('bf16', 'cpu'); // 'bf16'
 * resolvePrecision('fp16', 'cpu'); // ConfigError: train.precision: 'fp16' needs a CUDA device, ...
 */
export function resolvePrecision(setting: string, device: Device, where = 'train.precision'): Precision {
  const problem = precisionProblem(setting, device);
  if (problem !== null) throw new ConfigError(`${where}: ${problem}`);
  return setting as Precision;
}
