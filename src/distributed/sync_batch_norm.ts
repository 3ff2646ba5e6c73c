// Synchronised BatchNorm for data-parallel training on the CPU: every rank normalises with the
// statistics of the global batch, as one process training on it would. PyTorch's SyncBatchNorm
// refuses CPU tensors, so this is its own: each rank's per-channel mean, biased variance and count
// are all-gathered with their gradient (ProcessGroup.allGatherWithGrad) and merged as Chan et al.'s
// parallel variance does (mean = Σ nᵢmᵢ/N, var = Σ nᵢ(vᵢ + (mᵢ − mean)²)/N), which stays stable where
// E[x²] − E[x]² would cancel. Written with differentiable ops, its backward is autograd's: the
// gather's backward all-reduces the gradients of the statistics, which is SyncBatchNorm's
// all-reduce of Σdy and Σdy·x̂. The running averages get the global mean and the unbiased global
// variance, as batch_norm gives one process.
import { cat, full, noGrad, type Tensor } from '../engine/index.js';
import type { ProcessGroup } from '../engine/distributed.js';
import { BatchNorm, type Module } from '../nn/index.js';

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
 * model, and run the same layers in the same order. Returns how many layers it converted.
 *
 * @example
 * const control = { enabled: true };
 * convertSyncBatchNorm(model, group, control);
 */
export function convertSyncBatchNorm(module: Module, group: ProcessGroup, control: SyncControl): number {
  let converted = 0;
  for (const layer of module.modules()) {
    if (!(layer instanceof BatchNorm)) continue;
    const own: ForwardAffine = layer.forwardAffine.bind(layer);
    const synced: ForwardAffine = (input, weight, bias) =>
      layer.training && control.enabled ? syncForward(layer, group, input, weight, bias) : own(input, weight, bias);
    Object.defineProperty(layer, 'forwardAffine', { value: synced, configurable: true, writable: true });
    converted++;
  }
  return converted;
}

function syncForward(layer: BatchNorm, group: ProcessGroup, input: Tensor, weight: Tensor | null, bias: Tensor | null): Tensor {
  const shape = input.shape;
  const channels = layer.numFeatures;
  if (shape.length < 2 || shape[1] !== channels) {
    throw new RangeError(`SyncBatchNorm(${channels}): input has shape [${shape.join(', ')}], dim 1 must be ${channels}`);
  }
  const dims = shape.map((_, d) => d).filter((d) => d !== 1);
  const broadcastShape = shape.map((size, d) => (d === 1 ? size : 1));
  // Statistics in float32, as batch_norm keeps them under autocast.
  const x = input.dtype === 'float32' ? input : input.float();
  const count = shape.reduce((a, b) => a * b, 1) / channels;
  const mean = x.mean(dims);
  const variance = x.var(dims, { correction: 0 });
  const local = cat([mean, variance, full([1], count)]).reshape(1, 2 * channels + 1);
  const all = input.requiresGrad ? group.allGatherWithGrad(local) : group.allGather(local);
  const means = all.narrow(1, 0, channels);
  const variances = all.narrow(1, channels, channels);
  const counts = all.narrow(1, 2 * channels, 1);
  const total = noGrad(() => counts.sum().item());
  if (total <= 1) {
    throw new RangeError(`SyncBatchNorm(${channels}): training needs more than 1 value per channel over all ranks, got ${total}`);
  }
  const globalMean = means.mul(counts).sum(0).div(total);
  const globalVariance = variances.add(means.sub(globalMean).square()).mul(counts).sum(0).div(total);
  if (layer.trackRunningStats) updateRunningStats(layer, globalMean, globalVariance, total);
  let y = x.sub(globalMean.reshape(...broadcastShape)).mul(
    globalVariance
      .add(layer.eps)
      .rsqrt()
      .reshape(...broadcastShape),
  );
  if (weight !== null) y = y.mul(weight.reshape(...broadcastShape));
  if (bias !== null) y = y.add(bias.reshape(...broadcastShape));
  return y.dtype === input.dtype ? y : y.to(input.dtype);
}

/** batch_norm's update of the running averages, with the global batch's statistics. */
function updateRunningStats(layer: BatchNorm, mean: Tensor, variance: Tensor, total: number): void {
  noGrad(() => {
    const seen = layer.numBatchesTracked!;
    seen.add_(1);
    // momentum null: the cumulative average, as BatchNorm does.
    const factor = layer.momentum ?? 1 / seen.item();
    const unbiased = variance.mul(total / (total - 1));
    layer.runningMean!.mul_(1 - factor).add_(mean.detach().mul(factor));
    layer.runningVar!.mul_(1 - factor).add_(unbiased.detach().mul(factor));
  });
}
