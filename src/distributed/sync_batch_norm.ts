// Synchronised BatchNorm for data-parallel training on the CPU: every rank normalises with the
// statistics of the global batch, as one process training on it would, and the running averages
// (which the EMA target follows) are the global batch's. PyTorch's SyncBatchNorm refuses CPU
// tensors; this converts the model's own BatchNorm layers to ProcessGroup.syncBatchNorm
// (native/distributed.cc: per-rank statistics all-gathered and merged, batch_norm's fused kernels,
// Σdy and Σdy·x̂ all-reduced in backward). Layers that the model runs together (batchNormTogether:
// the projectors of every modality, online and target) share one collective each way: every
// collective costs the ranks a wake-up and a wait for the slower one (bench/RESULTS.md).
import { noGrad, type Tensor } from '../engine/index.js';
import type { ProcessGroup } from '../engine/distributed.js';
import { BatchNorm, type BatchNormCall, type BatchNormTogether, type Module } from '../nn/index.js';

/** Whether the converted layers synchronise (a step may turn it off for all ranks at once). */
export interface SyncControl {
  enabled: boolean;
}

type ForwardAffine = (input: Tensor, weight: Tensor | null, bias: Tensor | null) => Tensor;

/**
 * Makes every BatchNorm in `module` (BatchNorm1d, BatchNorm2d, the shared heads' per-modality
 * statistics) normalise with the statistics of all ranks' batches while training and `control`
 * is enabled; eval mode, and a disabled control, keep the layer's own behaviour. As PyTorch's
 * convert_sync_batchnorm, it changes the layers in place; every rank must convert the same
 * model, and run the same layers in the same order. Layers run with batchNormTogether share one
 * collective. Returns how many layers it converted.
 *
 * @example
 * const control = { enabled: true };
 * convertSyncBatchNorm(model, group, control);
 */
export function convertSyncBatchNorm(module: Module, group: ProcessGroup, control: SyncControl): number {
  const own = new Map<BatchNorm, ForwardAffine>();
  const together: BatchNormTogether = (calls) => {
    const synced = calls.filter((call) => call.layer.training && control.enabled);
    const normalised = synced.length > 0 ? syncForward(group, synced) : [];
    // The synchronised outputs in the calls' order; the others each layer's own.
    let next = 0;
    return calls.map((call) => (synced.includes(call) ? normalised[next++]! : own.get(call.layer)!(call.input, call.weight, call.bias)));
  };
  for (const layer of module.modules()) {
    if (!(layer instanceof BatchNorm)) continue;
    own.set(layer, layer.forwardAffine.bind(layer));
    const synced: ForwardAffine = (input, weight, bias) => together([{ layer, input, weight, bias }])[0]!;
    Object.defineProperty(layer, 'forwardAffine', { value: synced, configurable: true, writable: true });
    layer.together = together;
  }
  return own.size;
}

function syncForward(group: ProcessGroup, calls: readonly BatchNormCall[]): Tensor[] {
  const layers = calls.map(({ layer, input, weight, bias }) => {
    const shape = input.shape;
    if (shape.length < 2 || shape[1] !== layer.numFeatures) {
      throw new RangeError(
        `SyncBatchNorm(${layer.numFeatures}): input has shape [${shape.join(', ')}], dim 1 must be ${layer.numFeatures}`,
      );
    }
    let momentum = 0;
    if (layer.trackRunningStats) {
      const seen = layer.numBatchesTracked!;
      noGrad(() => seen.add_(1));
      // momentum null: the cumulative average, as BatchNorm does.
      momentum = layer.momentum ?? 1 / seen.item();
    }
    // In float32 whatever autocast made the input, as batch_norm keeps its statistics.
    const x = input.dtype === 'float32' ? input : input.float();
    return { input: x, weight, bias, runningMean: layer.runningMean, runningVar: layer.runningVar, momentum, eps: layer.eps };
  });
  const outputs = group.syncBatchNorm(layers);
  return outputs.map((y, i) => (y.dtype === calls[i]!.input.dtype ? y : y.to(calls[i]!.input.dtype)));
}
