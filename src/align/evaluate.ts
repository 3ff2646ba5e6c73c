// Image–text retrieval with a trained aligner: embed every test image and caption, then Recall@K,
// median and mean rank in both directions with COCO's protocol (src/eval/retrieval.ts). The same
// function serves final evaluation and per-epoch validation. The embeddings are compared on the
// model's device (a GPU ranks the similarity blocks); only the ranks are read back.
import type { Tensor } from '../engine/index.js';
import { retrievalChance, retrievalMetrics, type RetrievalMetrics } from '../eval/retrieval.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, EmbeddingStage } from './model.js';
import { collatedBatches, embedBatches } from './embed_batches.js';

/**
 * Which embeddings are compared:
 * - 'projection': online projections of both sides (one shared space when the heads are shared);
 * - 'encoder': the encoders' representations (comparable only when their widths match);
 * - 'pairing': what the cross-modal BYOL term trains, the query's online prediction against the
 *   gallery's target projection (image→text: q(image) vs z′(text); text→image: q(text) vs z′(image)).
 */
export type RetrievalSpace = 'projection' | 'encoder' | 'pairing';

/** The stages a space compares: the query side's and the gallery side's. */
export const SPACE_STAGES: Record<RetrievalSpace, { query: EmbeddingStage; gallery: EmbeddingStage }> = {
  projection: { query: 'projection', gallery: 'projection' },
  encoder: { query: 'encoder', gallery: 'encoder' },
  pairing: { query: 'prediction', gallery: 'target-projection' },
};

export interface RetrievalEvalOptions {
  imageModality: Modality;
  textModality: Modality<string>;
  /** Collated image batches, in the order of the images (captionToImage indexes them). */
  imageBatches: AsyncIterable<Tensor>;
  captions: string[];
  captionToImage: number[];
  /** The spaces to measure, from one pass over the images (default: projection). */
  spaces?: readonly RetrievalSpace[];
  /** Captions embedded per forward (default 512). */
  batchSize?: number;
}

export interface RetrievalEvaluation {
  metrics: RetrievalMetrics;
  /** What random embeddings reach on the same gallery. */
  chance: ReturnType<typeof retrievalChance>;
  space: RetrievalSpace;
}

/**
 * Retrieval metrics in each of `spaces`, in that order; images and captions are embedded once.
 *
 * @example
 * const [projection, encoder] = await evaluateRetrieval(model, { imageModality, textModality, imageBatches, captions, captionToImage, spaces: ['projection', 'encoder'] });
 * console.log(projection.metrics.t2i.r10, projection.chance.t2i.r10);
 */
export async function evaluateRetrieval(model: AlignModel, options: RetrievalEvalOptions): Promise<RetrievalEvaluation[]> {
  const spaces = options.spaces ?? ['projection'];
  const chance = retrievalChance(options.captionToImage, Math.max(...options.captionToImage) + 1);
  const stages = [...new Set(spaces.flatMap((space) => [SPACE_STAGES[space].query, SPACE_STAGES[space].gallery]))];
  const images = await embedBatches(model, options.imageModality, options.imageBatches, stages);
  const text = options.textModality;
  const captions = await embedBatches(model, text, collatedBatches(text, options.captions, options.batchSize ?? 512), stages);
  try {
    return spaces.map((space) => {
      const { query, gallery } = SPACE_STAGES[space];
      if (query === gallery)
        return { metrics: retrievalMetrics(images.get(query)!, captions.get(query)!, options.captionToImage), chance, space };
      // i2t ranks the captions' gallery side for each image query; t2i the reverse.
      const i2t = retrievalMetrics(images.get(query)!, captions.get(gallery)!, options.captionToImage).i2t;
      const t2i = retrievalMetrics(images.get(gallery)!, captions.get(query)!, options.captionToImage).t2i;
      const rsum = i2t.r1 + i2t.r5 + i2t.r10 + t2i.r1 + t2i.r5 + t2i.r10;
      const metrics = { i2t, t2i, rsum, nImages: images.get(query)!.shape[0]!, nCaptions: captions.get(query)!.shape[0]! };
      return { metrics, chance, space };
    });
  } finally {
    for (const t of [...images.values(), ...captions.values()]) t.dispose();
  }
}
