// Frozen features: a module's outputs for a whole data set, in eval mode, batch by batch.
import { cat, noGrad, tidy, type Tensor } from '../engine/index.js';
import type { TensorModule } from '../nn/index.js';

/**
 * Runs `prepare(batch)` then `encoder.forward` over `inputs` in batches of `batchSize`, without
 * gradients and in eval mode (restoring the previous mode), and returns the outputs stacked.
 */
export function extractFeatures(
  encoder: TensorModule,
  inputs: Tensor,
  prepare: (batch: Tensor) => Tensor = (b) => b,
  batchSize = 1024,
): Tensor {
  const wasTraining = encoder.training;
  encoder.eval();
  try {
    return noGrad(() =>
      tidy(() => {
        const parts: Tensor[] = [];
        const n = inputs.shape[0]!;
        for (let start = 0; start < n; start += batchSize) {
          parts.push(tidy(() => encoder.forward(prepare(inputs.slice(0, start, Math.min(start + batchSize, n))))));
        }
        return cat(parts);
      }),
    );
  } finally {
    encoder.train(wasTraining);
  }
}
