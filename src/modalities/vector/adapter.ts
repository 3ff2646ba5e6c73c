// The vector modality's encoder: embeddings made elsewhere (a frozen text or audio model, a
// feature store) are already representations, so the encoder only adapts them, with an MLP of
// Linear → BatchNorm1d → ReLU blocks and a final Linear to the representation width (the shape of
// BYOL's projector, src/byol/heads.ts, with any number of hidden layers).
import { BatchNorm1d, Linear, ReLU, Sequential, type TensorModule } from '../../nn/index.js';
import { checkPositiveInt } from '../../nn/checks.js';

/** The adapter's shape when the settings leave it out: one hidden block of 1024, 256 out. */
export const DEFAULT_VECTOR_ADAPTER: Readonly<{ hiddenDims: readonly number[]; featureDim: number }> = Object.freeze({
  hiddenDims: Object.freeze([1024]),
  featureDim: 256,
});

export interface VectorAdapterOptions {
  /** Widths of the hidden Linear → BatchNorm1d → ReLU blocks (default [1024]; [] is one Linear). */
  hiddenDims?: number[];
  /** Width of the output, the representation (default 256). */
  featureDim?: number;
}

/**
 * The MLP adapter: [N, inputDim] → [N, featureDim].
 *
 * @example
 * const encoder = vectorAdapter(768);                              // 768 → 1024 → 256
 * const deeper = vectorAdapter(512, { hiddenDims: [1024, 1024], featureDim: 128 });
 * encoder.forward(batch).shape;                                    // [N, 256]
 */
export function vectorAdapter(inputDim: number, options: VectorAdapterOptions = {}): Sequential {
  const hiddenDims = options.hiddenDims ?? DEFAULT_VECTOR_ADAPTER.hiddenDims;
  const featureDim = options.featureDim ?? DEFAULT_VECTOR_ADAPTER.featureDim;
  checkPositiveInt('vectorAdapter', 'inputDim', inputDim);
  checkPositiveInt('vectorAdapter', 'featureDim', featureDim);
  hiddenDims.forEach((width, i) => checkPositiveInt('vectorAdapter', `hiddenDims[${i}]`, width));
  const layers: TensorModule[] = [];
  let width = inputDim;
  for (const hidden of hiddenDims) {
    layers.push(new Linear(width, hidden), new BatchNorm1d(hidden), new ReLU());
    width = hidden;
  }
  layers.push(new Linear(width, featureDim));
  return new Sequential(...layers);
}
