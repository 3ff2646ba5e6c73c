// Cross-modal retrieval with a trained aligner: embed every row of every modality once, then, for
// each ordered pair of modalities that some items have both of, rank the gallery modality's rows
// for each query row (src/eval/retrieval.ts; the correct answers are the rows of the same item).
// Image–text is also summarised with COCO's protocol (an image has several captions). The same
// function serves final evaluation and per-epoch validation. The embeddings are compared on the
// model's device (a GPU ranks the similarity blocks); only the ranks are read back.
import { tensor, type Tensor } from '../engine/index.js';
import {
  keyedChance,
  keyedRetrievalRanks,
  summarizeRanks,
  type DirectionMetrics,
  type RecallAtK,
  type RetrievalMetrics,
} from '../eval/retrieval.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, EmbeddingStage } from './model.js';
import { embedBatches } from './embed_batches.js';

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

/** One modality's rows to embed: its collated batches, and the item each row belongs to. */
export interface ModalityRowsToEmbed {
  modality: Modality;
  /** Collated batches, in the order of `keys`. */
  batches: AsyncIterable<Tensor> | Iterable<Tensor>;
  /** The item (any integer id) of each row; rows of one item are each other's correct answers. */
  keys: number[];
}

export interface RetrievalEvalOptions {
  /** Two or more modalities, each named once. */
  rows: ModalityRowsToEmbed[];
  /** The spaces to measure, from one pass over the rows (default: projection). */
  spaces?: readonly RetrievalSpace[];
}

/** Retrieval from one modality's rows (queries) to another's (gallery), on the items having both. */
export interface RetrievalDirection {
  /** The query modality's name. */
  query: string;
  /** The gallery modality's name. */
  gallery: string;
  metrics: DirectionMetrics;
  /** What random embeddings reach in this direction. */
  chance: RecallAtK;
  nQueries: number;
  nGallery: number;
}

export interface RetrievalEvaluation {
  space: RetrievalSpace;
  /**
   * Every direction between two modalities that some items have both of, in the order of the
   * modalities given (image → text, image → audio, text → image, text → audio, …).
   */
  directions: RetrievalDirection[];
  /** The sum of every direction's Recall@1, @5 and @10 (600 at most for two modalities, 1800 for three). */
  rsum: number;
  /** The same sum for random embeddings. */
  chanceRsum: number;
  /** Image–text with COCO's protocol, when both are among the modalities. */
  metrics?: RetrievalMetrics;
  /** What random embeddings reach on image–text. */
  chance?: { i2t: RecallAtK; t2i: RecallAtK; rsum: number };
}

const recallSum = (r: RecallAtK): number => r.r1 + r.r5 + r.r10;

/**
 * Retrieval metrics in each of `spaces`, in that order; every row is embedded once.
 *
 * @example
 * const [projection] = await evaluateRetrieval(model, {
 *   rows: [
 *     { modality: image, batches: imageBatches, keys: [0, 1, 2] },
 *     { modality: text, batches: captionBatches, keys: [0, 0, 1, 2, 2] },
 *   ],
 * });
 * console.log(projection.metrics!.t2i.r10, projection.directions.map((d) => `${d.query}→${d.gallery} ${d.metrics.r10}`));
 */
export async function evaluateRetrieval(model: AlignModel, options: RetrievalEvalOptions): Promise<RetrievalEvaluation[]> {
  const spaces = options.spaces ?? ['projection'];
  const names = options.rows.map((r) => r.modality.name);
  if (new Set(names).size !== names.length || names.length < 2)
    throw new TypeError(`retrieval needs two or more distinct modalities, got ${names.join(', ') || 'none'}`);
  const stages = [...new Set(spaces.flatMap((space) => [SPACE_STAGES[space].query, SPACE_STAGES[space].gallery]))];
  const embedded: Map<EmbeddingStage, Tensor>[] = [];
  try {
    for (const r of options.rows) embedded.push(await embedBatches(model, r.modality, r.batches, stages));
    return spaces.map((space) => {
      const directions: RetrievalDirection[] = [];
      options.rows.forEach((query, qi) =>
        options.rows.forEach((gallery, gi) => {
          if (qi === gi) return;
          const direction = measureDirection(
            { ...query, embeddings: embedded[qi]!.get(SPACE_STAGES[space].query)! },
            { ...gallery, embeddings: embedded[gi]!.get(SPACE_STAGES[space].gallery)! },
          );
          if (direction) directions.push(direction);
        }),
      );
      if (directions.length === 0) throw new TypeError(`no item has two of the modalities ${names.join(', ')} to evaluate retrieval on`);
      return { space, directions, ...imageTextSummary(directions), ...sums(directions) };
    });
  } finally {
    for (const byStage of embedded) for (const t of byStage.values()) t.dispose();
  }
}

/** One direction over the items both sides have; undefined when they share none. */
function measureDirection(
  query: ModalityRowsToEmbed & { embeddings: Tensor },
  gallery: ModalityRowsToEmbed & { embeddings: Tensor },
): RetrievalDirection | undefined {
  const shared = (keys: number[], other: number[]): number[] => {
    const set = new Set(other);
    return keys.flatMap((k, row) => (set.has(k) ? [row] : []));
  };
  const queryRows = shared(query.keys, gallery.keys);
  if (queryRows.length === 0) return undefined;
  const galleryRows = shared(gallery.keys, query.keys);
  const select = (t: Tensor, rows: number[]): Tensor => t.indexSelect(0, tensor(rows, { dtype: 'int64', device: t.device }));
  const queries = select(query.embeddings, queryRows);
  const galleryEmbeddings = select(gallery.embeddings, galleryRows);
  try {
    const queryKeys = queryRows.map((r) => query.keys[r]!);
    const galleryKeys = galleryRows.map((r) => gallery.keys[r]!);
    const metrics = summarizeRanks(keyedRetrievalRanks(queries, galleryEmbeddings, queryKeys, galleryKeys));
    const [r1, r5, r10] = [1, 5, 10].map((k) => keyedChance(queryKeys, galleryKeys, k)) as [number, number, number];
    const names = { query: query.modality.name, gallery: gallery.modality.name };
    return { ...names, metrics, chance: { r1, r5, r10 }, nQueries: queryRows.length, nGallery: galleryRows.length };
  } finally {
    queries.dispose();
    galleryEmbeddings.dispose();
  }
}

/** COCO's image–text summary from the image → text and text → image directions, when both were measured. */
function imageTextSummary(directions: RetrievalDirection[]): Pick<RetrievalEvaluation, 'metrics' | 'chance'> {
  const find = (query: string, gallery: string): RetrievalDirection | undefined =>
    directions.find((d) => d.query === query && d.gallery === gallery);
  const i2t = find('image', 'text');
  const t2i = find('text', 'image');
  if (!i2t || !t2i) return {};
  return {
    metrics: {
      i2t: i2t.metrics,
      t2i: t2i.metrics,
      rsum: recallSum(i2t.metrics) + recallSum(t2i.metrics),
      nImages: i2t.nQueries,
      nCaptions: t2i.nQueries,
    },
    chance: { i2t: i2t.chance, t2i: t2i.chance, rsum: recallSum(i2t.chance) + recallSum(t2i.chance) },
  };
}

function sums(directions: RetrievalDirection[]): { rsum: number; chanceRsum: number } {
  return {
    rsum: directions.reduce((s, d) => s + recallSum(d.metrics), 0),
    chanceRsum: directions.reduce((s, d) => s + recallSum(d.chance), 0),
  };
}
