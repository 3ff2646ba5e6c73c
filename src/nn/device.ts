// Where a module's tensors live. A model is built on the CPU (so its initial weights are the same
// on every device) and moved once; inputs are made on the CPU (images decoded by sharp, captions
// tokenized, vectors read) and follow the model, one copy per batch. Both trainers (src/byol/,
// src/align/) and everything that embeds with a trained model use these.
import { noGrad, type Device, type Tensor } from '../engine/index.js';
import type { Module } from './module.js';

/**
 * The device of a module's weights, which its inputs must share ('cpu' for a module without any).
 *
 * @example
 * modelDevice(model); // 'cpu', or 'cuda:0' after model.to('cuda:0')
 */
export function modelDevice(module: Module): Device {
  const [first] = module.parameters();
  return first?.device ?? 'cpu';
}

/**
 * Moves every parameter and buffer of `module` to `device` unless all are there already (a
 * module's tensors are replaced when it moves, so references taken earlier would go stale).
 */
export function moveModule(module: Module, device: Device): void {
  if ([...module.stateDict().values()].some((t) => t.device !== device)) module.to(device);
}

/**
 * `t` on `device`: `t` itself when it is there, else a copy there (owned by the enclosing tidy
 * scope). Integer and uint8 tensors move as they are, before any conversion, so an image batch
 * crosses as bytes rather than as floats. A CPU tensor bound for a GPU is staged in pinned memory
 * and copied without blocking, as PyTorch's DataLoader(pin_memory=True) with
 * `.to(device, non_blocking=True)` does: the host goes on (making the next views, queuing the
 * forward) while the copy runs, and the GPU's later work on the same stream waits for it. The
 * pinned staging copy may be freed at once: libtorch's pinned allocator keeps its block until
 * the copy that reads it has finished.
 *
 * @example
 * const images = onDevice(batch, 'cuda:0'); // uint8 on the GPU; onDevice(batch, 'cpu') === batch
 */
export function onDevice(t: Tensor, device: Device): Tensor {
  if (t.device === device) return t;
  return noGrad(() => (t.device === 'cpu' && device.startsWith('cuda') ? t.pinMemory().to({ device, nonBlocking: true }) : t.to(device)));
}

/**
 * A CPU copy of `t`, detached: what a checkpoint holds whatever device trained it (a CPU tensor is
 * cloned, so the copy never aliases live weights).
 */
export function cpuCopy(t: Tensor): Tensor {
  return noGrad(() => (t.device === 'cpu' ? t.detach().clone() : t.detach().to('cpu')));
}
