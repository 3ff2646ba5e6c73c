// Image–text retrieval: Recall@K, median and mean rank in both directions, the protocol of
// VSE++ (Faghri et al. 2018, arXiv:1707.05612) and CLIP for COCO 5k and Flickr30k 1k, where an
// image has several captions (about five) and each caption one image. The one implementation for
// final evaluation and per-epoch validation.
import { F, arange, cat, noGrad, tensor, tidy, type Tensor } from '../engine/index.js';

export interface RetrievalOptions {
  /** Queries compared per block, bounding memory to chunkSize × gallery similarities (default 1024). */
  chunkSize?: number;
}

/** Recall@K in percent. */
export interface RecallAtK {
  r1: number;
  r5: number;
  r10: number;
}

/** One direction's summary of ranks (1 is best). */
export interface DirectionMetrics extends RecallAtK {
  /** Median rank: the middle rank, or the floor of the mean of the two middle ones (VSE++'s floor(np.median) convention). */
  medr: number;
  /** Mean rank. */
  meanr: number;
}

export interface RetrievalMetrics {
  /** Image → text: an image's rank is that of its best-ranked caption. */
  i2t: DirectionMetrics;
  /** Text → image: a caption's rank is that of its one image. */
  t2i: DirectionMetrics;
  /** The sum of the six recalls (at most 600). */
  rsum: number;
  nImages: number;
  nCaptions: number;
}

/** The rank (1-based) of every query's correct answer: `i2t[image]`, `t2i[caption]`. */
export interface RetrievalRanks {
  i2t: number[];
  t2i: number[];
}

/**
 * Ranks of the correct answers, by exact cosine similarity, computed for `chunkSize` queries at a
 * time. Ties count against the query: the rank is 1 + the number of wrong gallery items whose
 * similarity is ≥ that of the correct one (for an image, its best caption's similarity), so a
 * duplicate of the right answer, or a degenerate embedding that gives everything the same score,
 * never earns a hit. Similarities are float64 when either embedding tensor is, float32 otherwise.
 *
 * @param imageEmbeddings [Ni, d]
 * @param captionEmbeddings [Nc, d]
 * @param captionToImage the image index (0 ≤ i < Ni) of each caption; every image needs at least one caption
 */
export function retrievalRanks(
  imageEmbeddings: Tensor,
  captionEmbeddings: Tensor,
  captionToImage: readonly number[],
  options: RetrievalOptions = {},
): RetrievalRanks {
  const chunkSize = options.chunkSize ?? 1024;
  checkInputs(imageEmbeddings, captionEmbeddings, captionToImage, chunkSize);
  const nImages = imageEmbeddings.shape[0]!;
  return noGrad(() =>
    tidy(() => {
      const dtype = imageEmbeddings.dtype === 'float64' || captionEmbeddings.dtype === 'float64' ? 'float64' : 'float32';
      const images = F.normalize(imageEmbeddings.to(dtype), 1);
      const captions = F.normalize(captionEmbeddings.to(dtype), 1);
      const device = images.device;
      const imageOfCaption = tensor(captionToImage as number[], { dtype: 'int64', device });
      const imageIndex = arange(0, nImages, 1, { dtype: 'int64', device });
      return {
        i2t: ranksOfCorrect(images, captions, imageIndex, imageOfCaption, chunkSize),
        t2i: ranksOfCorrect(captions, images, imageOfCaption, imageIndex, chunkSize),
      };
    }),
  );
}

/**
 * For each query, the rank of its best correct gallery item, where gallery item g is correct for
 * query q when galleryKeys[g] == queryKeys[q] (the image index, in both directions).
 */
function ranksOfCorrect(queries: Tensor, gallery: Tensor, queryKeys: Tensor, galleryKeys: Tensor, chunkSize: number): number[] {
  const n = queries.shape[0]!;
  const galleryT = gallery.t();
  const galleryRow = galleryKeys.unsqueeze(0);
  const ranks: Tensor[] = [];
  for (let start = 0; start < n; start += chunkSize) {
    ranks.push(
      tidy(() => {
        const end = Math.min(start + chunkSize, n);
        const similarity = queries.slice(0, start, end).matmul(galleryT); // [b, G]
        const wrong = galleryRow.ne(queryKeys.slice(0, start, end).unsqueeze(1)); // [b, G]
        const bestCorrect = similarity.maskedFill(wrong, -Infinity).amax(1, true); // [b, 1]
        return similarity.ge(bestCorrect).logicalAnd(wrong).sum(1).add(1);
      }),
    );
  }
  return cat(ranks).toFlatArray();
}

/**
 * Recall@1/5/10 (percent), median and mean rank of a list of 1-based ranks.
 *
 * @example
 * summarizeRanks([1, 3, 2, 12]); // { r1: 25, r5: 75, r10: 75, medr: 2, meanr: 4.5 }
 */
export function summarizeRanks(ranks: readonly number[]): DirectionMetrics {
  if (ranks.length === 0) throw new Error('summarizeRanks: no ranks');
  const recall = (k: number): number => (100 * ranks.filter((r) => r <= k).length) / ranks.length;
  const sorted = [...ranks].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const medr = sorted.length % 2 === 1 ? sorted[mid]! : Math.floor((sorted[mid - 1]! + sorted[mid]!) / 2);
  const meanr = ranks.reduce((s, r) => s + r, 0) / ranks.length;
  return { r1: recall(1), r5: recall(5), r10: recall(10), medr, meanr };
}

/**
 * Image→text and text→image retrieval metrics (see {@link retrievalRanks} for the ranking and
 * its handling of ties).
 *
 * @example
 * // COCO 5k: 5000 images, 25000 captions, captionToImage[c] = Math.floor(c / 5)
 * const m = retrievalMetrics(imageEmb, captionEmb, captionToImage);
 * console.log(m.i2t.r1, m.t2i.r1, m.rsum);
 */
export function retrievalMetrics(
  imageEmbeddings: Tensor,
  captionEmbeddings: Tensor,
  captionToImage: readonly number[],
  options: RetrievalOptions = {},
): RetrievalMetrics {
  const ranks = retrievalRanks(imageEmbeddings, captionEmbeddings, captionToImage, options);
  const i2t = summarizeRanks(ranks.i2t);
  const t2i = summarizeRanks(ranks.t2i);
  return {
    i2t,
    t2i,
    rsum: i2t.r1 + i2t.r5 + i2t.r10 + t2i.r1 + t2i.r5 + t2i.r10,
    nImages: ranks.i2t.length,
    nCaptions: ranks.t2i.length,
  };
}

/**
 * Recall@K (percent) that embeddings carrying no information reach on average, i.e. with the
 * gallery in uniformly random order: text→image K/Ni; image→text, for an image with m of the
 * Nc captions, 1 − C(Nc−m, K)/C(Nc, K), averaged over images.
 *
 * @example
 * chanceRecall(Array.from({ length: 25000 }, (_, c) => Math.floor(c / 5)), 5000, 1); // { i2t: 0.02, t2i: 0.02 }
 */
export function chanceRecall(captionToImage: readonly number[], nImages: number, k: number): { i2t: number; t2i: number } {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`chanceRecall: k must be a positive integer, got ${k}`);
  const counts = captionsPerImage(captionToImage, nImages, 'chanceRecall');
  const nCaptions = captionToImage.length;
  let i2t = 0;
  for (const m of counts) {
    let allWrong = 1; // P(the top K holds none of the m correct captions) = Π_j (Nc−m−j)/(Nc−j)
    for (let j = 0; j < Math.min(k, nCaptions) && allWrong > 0; j++) allWrong *= Math.max(0, nCaptions - m - j) / (nCaptions - j);
    i2t += 1 - allWrong;
  }
  return { i2t: (100 * i2t) / nImages, t2i: (100 * Math.min(k, nImages)) / nImages };
}

/** {@link chanceRecall} at 1, 5 and 10 in both directions, and their sum (the chance rsum). */
export function retrievalChance(captionToImage: readonly number[], nImages: number): { i2t: RecallAtK; t2i: RecallAtK; rsum: number } {
  const [c1, c5, c10] = [1, 5, 10].map((k) => chanceRecall(captionToImage, nImages, k)) as [
    { i2t: number; t2i: number },
    { i2t: number; t2i: number },
    { i2t: number; t2i: number },
  ];
  const i2t = { r1: c1.i2t, r5: c5.i2t, r10: c10.i2t };
  const t2i = { r1: c1.t2i, r5: c5.t2i, r10: c10.t2i };
  return { i2t, t2i, rsum: i2t.r1 + i2t.r5 + i2t.r10 + t2i.r1 + t2i.r5 + t2i.r10 };
}

/** How many captions each image has, checking that captionToImage is a valid assignment. */
function captionsPerImage(captionToImage: readonly number[], nImages: number, fn: string): number[] {
  if (!Number.isInteger(nImages) || nImages < 1)
    throw new RangeError(`${fn}: the number of images must be a positive integer, got ${nImages}`);
  const counts = new Array<number>(nImages).fill(0);
  captionToImage.forEach((image, c) => {
    if (!Number.isInteger(image) || image < 0 || image >= nImages) {
      throw new RangeError(`${fn}: captionToImage[${c}] is ${image}, not an image index in [0, ${nImages})`);
    }
    counts[image]!++;
  });
  const lonely = counts.indexOf(0);
  if (lonely !== -1) throw new RangeError(`${fn}: image ${lonely} has no caption in captionToImage (every image needs at least one)`);
  return counts;
}

function checkInputs(images: Tensor, captions: Tensor, captionToImage: readonly number[], chunkSize: number): void {
  const fn = 'retrievalRanks';
  if (images.ndim !== 2) throw new RangeError(`${fn}: imageEmbeddings must be [Ni, d], got [${images.shape.join(', ')}]`);
  if (captions.ndim !== 2) throw new RangeError(`${fn}: captionEmbeddings must be [Nc, d], got [${captions.shape.join(', ')}]`);
  if (images.shape[1] !== captions.shape[1]) {
    throw new RangeError(
      `${fn}: imageEmbeddings [${images.shape.join(', ')}] and captionEmbeddings [${captions.shape.join(', ')}] differ in width`,
    );
  }
  if (captionToImage.length !== captions.shape[0]) {
    throw new RangeError(`${fn}: captionToImage has ${captionToImage.length} entries for ${captions.shape[0]} captions`);
  }
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`${fn}: chunkSize must be a positive integer, got ${chunkSize}`);
  captionsPerImage(captionToImage, images.shape[0]!, fn);
  for (const [name, t] of [
    ['imageEmbeddings', images],
    ['captionEmbeddings', captions],
  ] as const) {
    if (!tidy(() => t.isfinite().all().item())) throw new RangeError(`${fn}: ${name} holds NaN or infinite values`);
  }
}
