// BYOL's projector g and predictor q (Grill et al. 2020, arXiv:2006.07733, §3.3): "a multi-layer
// perceptron (MLP) ... a linear layer with output size 4096 followed by batch normalization,
// rectified linear units (ReLU), and a final linear layer with output dimension 256". The
// predictor uses the same architecture. For small batches the normalisation can be GroupNorm or
// LayerNorm instead (batch statistics get noisy below ~64 items).
import type { Tensor } from '../engine/index.js';
import {
  BatchNorm,
  BatchNorm1d,
  GroupNorm,
  Identity,
  LayerNorm,
  Linear,
  Module,
  ReLU,
  Sequential,
  type BatchNormCall,
  type TensorModule,
} from '../nn/index.js';

export type HeadNorm = 'batch' | 'group' | 'layer' | 'none';

export interface MlpHeadOptions {
  hiddenDim?: number;
  outputDim?: number;
  norm?: HeadNorm;
}

/** The normalisation layer of a head's hidden layer (also used by align/shared_head.ts). */
export function headNormalisation(kind: HeadNorm, features: number): TensorModule {
  switch (kind) {
    case 'batch':
      return new BatchNorm1d(features);
    case 'group':
      // 32 groups as in Wu & He 2018, or fewer when the width is not a multiple of 32.
      return new GroupNorm(features % 32 === 0 ? 32 : 1, features);
    case 'layer':
      return new LayerNorm(features);
    case 'none':
      return new Identity();
  }
}

/**
 * Linear(in → hidden) → norm → ReLU → Linear(hidden → out): BYOL's projector and predictor.
 *
 * @example
 * const projector = mlpHead(128);                 // 128 → 4096 → 256, BatchNorm
 * const predictor = mlpHead(256, { norm: 'layer' });
 */
export function mlpHead(inputDim: number, options: MlpHeadOptions = {}): Sequential {
  const hidden = options.hiddenDim ?? 4096;
  const out = options.outputDim ?? 256;
  const norm = options.norm ?? 'batch';
  // The hidden layer's bias is redundant before a BatchNorm, but kept as the paper's code does.
  return new Sequential(new Linear(inputDim, hidden), headNormalisation(norm, hidden), new ReLU(), new Linear(hidden, out));
}

/**
 * A head's forward split at its normalisation, so that several heads' BatchNorms can run together
 * (batchNormTogether; in data-parallel training, one collective for all of them).
 */
export interface OpenHead {
  /** The head's BatchNorm, still to run (null: its normalisation is another kind and has run). */
  norm: BatchNormCall | null;
  /** The rest of the head: from norm's output, or (norm null) from what has run. */
  finish(normalised?: Tensor): Tensor;
}

/**
 * A head opened at its hidden layer: `norm` is the BatchNorm call still to run, or the
 * normalisation module to run now; `rest` is the head after the normalisation.
 */
export function openedAt(hidden: Tensor, norm: BatchNormCall | TensorModule, rest: (normalised: Tensor) => Tensor): OpenHead {
  if (!(norm instanceof Module)) return { norm, finish: (normalised) => rest(normalised!) };
  const done = norm.forward(hidden);
  return { norm: null, finish: () => rest(done) };
}

/**
 * An mlpHead's forward (Linear → norm → ReLU → Linear), opened at its normalisation:
 * `head.forward(x)` is `open.finish(open.norm ? open.norm.layer.forwardAffine(...) : undefined)`.
 */
export function openMlpHead(head: Sequential, input: Tensor): OpenHead {
  const hidden = head.at(0).forward(input);
  const norm = head.at(1);
  const call = norm instanceof BatchNorm ? { layer: norm, input: hidden, weight: norm.weight, bias: norm.bias } : norm;
  return openedAt(hidden, call, (h) => head.at(3).forward(head.at(2).forward(h)));
}
