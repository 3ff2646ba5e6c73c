// Image–text retrieval: Recall@K, median and mean rank in both directions, the protocol of
// VSE++ (Faghri et al. 2018, arXiv:1707.05612) and CLIP for COCO 5k and Flickr30k 1k, where an
// image has several captions (about five) and each caption one image. The one implementation for
// final evaluation and per-epoch validation.
import { F, cat, noGrad, tensor, tidy, type Tensor } from '../engine/index.js';

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
  const imageKeys = Array.from({ length: imageEmbeddings.shape[0]! }, (_, i) => i);
  return {
    i2t: rankedByKey(imageEmbeddings, captionEmbeddings, imageKeys, captionToImage, chunkSize),
    t2i: rankedByKey(captionEmbeddings, imageEmbeddings, captionToImage, imageKeys, chunkSize),
  };
}

/**
 * Retrieval between any two sets of embeddings of the same items (image → audio, audio → text, …):
 * for each query, the rank (1-based) of its best correct gallery entry, where gallery entry g is
 * correct for query q when `galleryKeys[g] === queryKeys[q]` (the item both came from). Every
 * query's key must occur in the gallery. Ties count against the query, as in {@link retrievalRanks},
 * which is this function with the image index as the key.
 *
 * @example
 * // three clips and three images of items 7, 8, 9: audio → image ranks
 * keyedRetrievalRanks(audioEmb, imageEmb, [7, 8, 9], [7, 8, 9]); // e.g. [1, 3, 1]
 */
export function keyedRetrievalRanks(
  queries: Tensor,
  gallery: Tensor,
  queryKeys: readonly number[],
  galleryKeys: readonly number[],
  options: RetrievalOptions = {},
): number[] {
  const fn = 'keyedRetrievalRanks';
  const chunkSize = options.chunkSize ?? 1024;
  checkEmbeddings(fn, [
    ['queries', queries],
    ['gallery', gallery],
  ]);
  for (const [name, keys, t] of [
    ['queryKeys', queryKeys, queries],
    ['galleryKeys', galleryKeys, gallery],
  ] as const) {
    if (keys.length !== t.shape[0]) throw new RangeError(`${fn}: ${name} has ${keys.length} entries for ${t.shape[0]} rows`);
    const bad = keys.findIndex((k) => !Number.isSafeInteger(k));
    if (bad !== -1) throw new RangeError(`${fn}: ${name}[${bad}] is ${keys[bad]}, not an integer`);
  }
  const inGallery = new Set(galleryKeys);
  const orphan = queryKeys.findIndex((k) => !inGallery.has(k));
  if (orphan !== -1) throw new RangeError(`${fn}: query ${orphan} (key ${queryKeys[orphan]}) has no correct entry in the gallery`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`${fn}: chunkSize must be a positive integer, got ${chunkSize}`);
  return rankedByKey(queries, gallery, queryKeys, galleryKeys, chunkSize);
}

/**
 * Recall@K (percent) that embeddings carrying no information reach on average in a keyed
 * direction ({@link keyedRetrievalRanks}): a query with m correct entries among G finds one in the
 * top K with probability 1 − C(G−m, K)/C(G, K).
 *
 * @example
 * keyedChance([0, 1], [0, 0, 1], 1); // (2/3 + 1/3) / 2 = 50
 */
export function keyedChance(queryKeys: readonly number[], galleryKeys: readonly number[], k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`keyedChance: k must be a positive integer, got ${k}`);
  if (queryKeys.length === 0) throw new RangeError('keyedChance: no queries');
  const correct = new Map<number, number>();
  for (const key of galleryKeys) correct.set(key, (correct.get(key) ?? 0) + 1);
  let hits = 0;
  for (const key of queryKeys) hits += 1 - allWrongInTopK(galleryKeys.length, correct.get(key) ?? 0, k);
  return (100 * hits) / queryKeys.length;
}

/** P(a uniformly random top K of n entries holds none of the m correct ones) = Π_j (n−m−j)/(n−j). */
function allWrongInTopK(n: number, m: number, k: number): number {
  let allWrong = 1;
  for (let j = 0; j < Math.min(k, n) && allWrong > 0; j++) allWrong *= Math.max(0, n - m - j) / (n - j);
  return allWrong;
}

/** {@link ranksOfCorrect} on normalised embeddings, in float64 when either side is. */
function rankedByKey(
  queries: Tensor,
  gallery: Tensor,
  queryKeys: readonly number[],
  galleryKeys: readonly number[],
  chunkSize: number,
): number[] {
  return noGrad(() =>
    tidy(() => {
      const dtype = queries.dtype === 'float64' || gallery.dtype === 'float64' ? 'float64' : 'float32';
      const q = F.normalize(queries.to(dtype), 1);
      const g = F.normalize(gallery.to(dtype), 1);
      const device = q.device;
      const keys = (k: readonly number[]): Tensor => tensor(k as number[], { dtype: 'int64', device });
      return ranksOfCorrect(q, g, keys(queryKeys), keys(galleryKeys), chunkSize);
    }),
  );
}

/**
 * For each query, the rank of its best correct gallery item, where gallery item g is correct for
 * query q when galleryKeys[g] == queryKeys[q] (the image index, or any item key).
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
  for (const m of counts) i2t += 1 - allWrongInTopK(nCaptions, m, k);
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
  checkEmbeddings(fn, [
    ['imageEmbeddings', images],
    ['captionEmbeddings', captions],
  ]);
  if (captionToImage.length !== captions.shape[0]) {
    throw new RangeError(`${fn}: captionToImage has ${captionToImage.length} entries for ${captions.shape[0]} captions`);
  }
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`${fn}: chunkSize must be a positive integer, got ${chunkSize}`);
  captionsPerImage(captionToImage, images.shape[0]!, fn);
}

/** Both are [N, d] of one width d, and finite. */
function checkEmbeddings(fn: string, named: readonly (readonly [string, Tensor])[]): void {
  for (const [name, t] of named) {
    if (t.ndim !== 2) throw new RangeError(`${fn}: ${name} must be [N, d], got [${t.shape.join(', ')}]`);
  }
  const [[nameA, a], [nameB, b]] = named as [readonly [string, Tensor], readonly [string, Tensor]];
  if (a.shape[1] !== b.shape[1]) {
    throw new RangeError(`${fn}: ${nameA} [${a.shape.join(', ')}] and ${nameB} [${b.shape.join(', ')}] differ in width`);
  }
  for (const [name, t] of named) {
    if (!tidy(() => t.isfinite().all().item())) throw new RangeError(`${fn}: ${name} holds NaN or infinite values`);
  }
}
