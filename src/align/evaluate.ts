// Image–text retrieval with a trained aligner: embed every test image and caption, then Recall@K,
// median and mean rank in both directions with COCO's protocol (src/eval/retrieval.ts). The same
// function serves final evaluation and per-epoch validation.
import { cat, keep, tidy, type Tensor } from '../engine/index.js';
import { retrievalChance, retrievalMetrics, type RetrievalMetrics } from '../eval/retrieval.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, EmbeddingStage } from './model.js';

/**
 * Which embeddings are compared:
 * - 'projection': online projections of both sides (one shared space when the heads are shared);
 * - 'encoder': the encoders' representations (comparable only when their widths match);
 * - 'pairing': what the cross-modal BYOL term trains, the query's online prediction against the
 *   gallery's target projection (image→text: q(image) vs z′(text); text→image: q(text) vs z′(image)).
 */
export type RetrievalSpace = 'projection' | 'encoder' | 'pairing';

export interface RetrievalEvalOptions {
  imageModality: Modality;
  textModality: Modality<string>;
  /** Collated image batches, in the order of the images (captionToImage indexes them). */
  imageBatches: AsyncIterable<Tensor>;
  captions: string[];
  captionToImage: number[];
  space?: RetrievalSpace;
  /** Captions embedded per forward (default 512). */
  batchSize?: number;
}

export interface RetrievalEvaluation {
  metrics: RetrievalMetrics;
  /** What random embeddings reach on the same gallery. */
  chance: ReturnType<typeof retrievalChance>;
  space: RetrievalSpace;
}

/** Embeddings of every batch at `stage`, concatenated. */
async function embedAll(model: AlignModel, modality: Modality, batches: AsyncIterable<Tensor>, stage: EmbeddingStage): Promise<Tensor> {
  const parts: Tensor[] = [];
  for await (const batch of batches) {
    parts.push(keep(tidy(() => model.embed(modality.name, modality.evalInput(batch), stage))));
    batch.dispose();
  }
  if (parts.length === 0) throw new Error(`evaluateRetrieval: no ${modality.name} batches to embed`);
  const all = keep(cat(parts));
  for (const p of parts) p.dispose();
  return all;
}

async function* captionBatches(modality: Modality<string>, captions: string[], batchSize: number): AsyncIterable<Tensor> {
  for (let i = 0; i < captions.length; i += batchSize) yield await modality.collate(captions.slice(i, i + batchSize));
}

/**
 * @example
 * const { metrics, chance } = await evaluateRetrieval(model, { imageModality, textModality, imageBatches, captions, captionToImage });
 * console.log(metrics.t2i.r10, chance.t2i.r10);
 */
export async function evaluateRetrieval(model: AlignModel, options: RetrievalEvalOptions): Promise<RetrievalEvaluation> {
  const space = options.space ?? 'projection';
  const batchSize = options.batchSize ?? 512;
  const image = options.imageModality;
  const text = options.textModality;
  const chance = retrievalChance(options.captionToImage, Math.max(...options.captionToImage) + 1);
  if (space !== 'pairing') {
    const stage: EmbeddingStage = space;
    const imageEmbeddings = await embedAll(model, image, options.imageBatches, stage);
    const textEmbeddings = await embedAll(model, text, captionBatches(text, options.captions, batchSize), stage);
    try {
      return { metrics: retrievalMetrics(imageEmbeddings, textEmbeddings, options.captionToImage), chance, space };
    } finally {
      imageEmbeddings.dispose();
      textEmbeddings.dispose();
    }
  }
  // The pairing space needs both stages of both sides; the images are read once.
  const imageParts: [Tensor[], Tensor[]] = [[], []];
  for await (const batch of options.imageBatches) {
    const input = tidy(() => keep(image.evalInput(batch)));
    imageParts[0].push(keep(model.embed(image.name, input, 'prediction')));
    imageParts[1].push(keep(model.embed(image.name, input, 'target-projection')));
    input.dispose();
    batch.dispose();
  }
  const textParts: [Tensor[], Tensor[]] = [[], []];
  for await (const batch of captionBatches(text, options.captions, batchSize)) {
    const input = tidy(() => keep(text.evalInput(batch)));
    textParts[0].push(keep(model.embed(text.name, input, 'prediction')));
    textParts[1].push(keep(model.embed(text.name, input, 'target-projection')));
    input.dispose();
    batch.dispose();
  }
  const [imageQuery, imageGallery, textQuery, textGallery] = [...imageParts, ...textParts].map((parts) => {
    const all = keep(cat(parts));
    for (const p of parts) p.dispose();
    return all;
  }) as [Tensor, Tensor, Tensor, Tensor];
  try {
    const i2t = retrievalMetrics(imageQuery, textGallery, options.captionToImage).i2t;
    const t2i = retrievalMetrics(imageGallery, textQuery, options.captionToImage).t2i;
    const rsum = i2t.r1 + i2t.r5 + i2t.r10 + t2i.r1 + t2i.r5 + t2i.r10;
    return { metrics: { i2t, t2i, rsum, nImages: imageQuery.shape[0]!, nCaptions: textQuery.shape[0]! }, chance, space };
  } finally {
    for (const t of [imageQuery, imageGallery, textQuery, textGallery]) t.dispose();
  }
}
