// Weighted k-nearest-neighbour classification on frozen features: the protocol of InstDisc
// (Wu et al. 2018, arXiv:1805.01978) that lightly and solo-learn use to monitor self-supervised
// training: cosine similarity, the k most similar training items vote with weight exp(sim / T).
import { F, cat, noGrad, tidy, zeros, type Tensor } from '../engine/index.js';

export interface KnnOptions {
  /** Neighbours that vote (200 in InstDisc). */
  k?: number;
  /** Temperature of the vote weights exp(sim / T) (0.1 in InstDisc). */
  temperature?: number;
  /** Test items compared per block, bounding memory to chunk × N_train similarities. */
  chunkSize?: number;
}

/**
 * Predicted class of every test feature.
 *
 * @example
 * const predicted = knnPredict(trainFeatures, trainLabels, testFeatures, 10);
 */
export function knnPredict(
  trainFeatures: Tensor,
  trainLabels: Tensor,
  testFeatures: Tensor,
  numClasses: number,
  options: KnnOptions = {},
): Tensor {
  const k = Math.min(options.k ?? 200, trainFeatures.shape[0]!);
  const temperature = options.temperature ?? 0.1;
  const chunkSize = options.chunkSize ?? 1024;
  return noGrad(() =>
    tidy(() => {
      const train = F.normalize(trainFeatures.float(), 1);
      const labels = trainLabels.long();
      const predictions: Tensor[] = [];
      const n = testFeatures.shape[0]!;
      for (let start = 0; start < n; start += chunkSize) {
        predictions.push(
          tidy(() => {
            const test = F.normalize(testFeatures.slice(0, start, Math.min(start + chunkSize, n)).float(), 1);
            const { values, indices } = test.matmul(train.t()).topk(k, 1);
            const weights = values.div(temperature).exp(); // [b, k]
            const neighbourLabels = labels.index([indices]); // [b, k]
            const votes = zeros([weights.shape[0]!, numClasses]).scatterAdd(1, neighbourLabels, weights);
            return votes.argmax(1);
          }),
        );
      }
      return cat(predictions);
    }),
  );
}

/** Fraction of test items whose kNN prediction equals their label. */
export function knnAccuracy(
  trainFeatures: Tensor,
  trainLabels: Tensor,
  testFeatures: Tensor,
  testLabels: Tensor,
  numClasses: number,
  options: KnnOptions = {},
): number {
  return tidy(() => knnPredict(trainFeatures, trainLabels, testFeatures, numClasses, options).eq(testLabels.long()).float().mean().item());
}
