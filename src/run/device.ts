// Which device a command runs the model on: a device setting (train.device, `--device`: auto, cpu,
// cuda or cuda:N) resolved against the libtorch this process linked. Asking for CUDA where that
// libtorch has none is a ConfigError naming it (exit code 2), found before any data is read, never
// a failure inside libtorch on the first tensor moved.
import { cuda, libtorchVersion, type Device } from '../engine/index.js';
import { ConfigError } from '../config/load.js';
import { DEVICE_SETTING } from '../config/schema.js';

/** A device setting as the config and `--device` take it. */
export type DeviceSetting = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/** The libtorch found, in words, for messages: its version and how many CUDA devices it sees. */
export function libtorchDescription(): string {
  const gpus = cuda.deviceCount();
  return gpus === 0
    ? `libtorch ${libtorchVersion} (CPU only: built without CUDA, or no GPU visible)`
    : `libtorch ${libtorchVersion} with ${gpus} CUDA device${gpus === 1 ? '' : 's'}`;
}

/**
 * The device `setting` names here: 'cpu' or 'cuda:N' (a bare 'cuda' is GPU 0, as in PyTorch); 'auto'
 * is 'cuda:0' when the linked libtorch sees a GPU, else 'cpu'. `where` names the setting in errors
 * ('train.device', '--device').
 *
 * @example
 * resolveDevice('auto');  // 'cpu' on a machine without CUDA, 'cuda:0' on one with it
 * resolveDevice('cuda:1'); // 'cuda:1', or a ConfigError naming the libtorch when there is no GPU 1
 */
export function resolveDevice(setting: string, where = 'train.device'): Device {
  if (!DEVICE_SETTING.test(setting)) throw new ConfigError(`${where}: expected auto, cpu, cuda or cuda:N, got '${setting}'`);
  if (setting === 'cpu') return 'cpu';
  const gpus = cuda.deviceCount();
  if (setting === 'auto') return gpus > 0 ? 'cuda:0' : 'cpu';
  const index = setting === 'cuda' ? 0 : Number(setting.slice('cuda:'.length));
  if (gpus === 0)
    throw new ConfigError(
      `${where}: '${setting}' asks for CUDA, but this process linked ${libtorchDescription()}; use cpu or auto (--device cpu), or build the addon against a CUDA libtorch (README: Building against another libtorch)`,
    );
  if (index >= gpus)
    throw new ConfigError(
      `${where}: '${setting}' asks for GPU ${index}, but this process linked ${libtorchDescription()}: cuda:0 to cuda:${gpus - 1}`,
    );
  return `cuda:${index}`;
}
