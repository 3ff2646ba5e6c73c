// The options of the streaming batch loader (manifest_loader.ts), with their defaults and checks.
import type { ImageDecodePool } from './image_pool.js';
import type { ImageFit } from './image_decode.js';
import type { DatasetError, OnBadRecord, PairedItem } from './paired.js';

export interface LoaderOptions {
  batchSize: number;
  /** Side length of the decoded square images, in pixels. */
  size: number;
  /** 3 (RGB, default) or 1 (greyscale). */
  channels?: 1 | 3;
  /** 'cover' (default: scale and centre-crop) or 'fill' (stretch); see {@link ImageFit}. */
  fit?: ImageFit;
  /** Seeds the order of every epoch and the caption drawn per image per epoch; default 0. */
  seed?: number;
  /** Shuffle each epoch (default true); false keeps the data set's order (e.g. for embedding it). */
  shuffle?: boolean;
  /**
   * Leave out the last batch of an epoch when it would be smaller than batchSize (default true,
   * as usual for training: a tiny last batch gives BatchNorm and BYOL's loss noisy statistics).
   * False yields it, so every item is seen.
   */
  dropLast?: boolean;
  /** Batches decoded ahead while the consumer works on the current one (default 2; 0: none). */
  prefetch?: number;
  /**
   * What to do with an image that cannot be decoded (found when its batch is): 'fail' (default)
   * throws the ImageDecodeError naming the file; 'skip' drops the image for good and counts it in
   * the loader's `skipped`; the item keeps its other modalities, and an item left with none is
   * left out of the epochs after. (An item with no modality at all is refused when the loader is
   * made, under either policy; the data-set parsers apply the policy to bad records.) The same
   * policy holds for another modality's raw item that its collate refuses (ManifestLoader.collated).
   */
  onBadRecord?: OnBadRecord;
  /** Called with each image (or other raw item) that 'skip' drops, e.g. to log the first few. */
  onSkip?: (error: DatasetError) => void;
  /**
   * Whether an item has a modality besides its image (default: captions or `extra.vector`); a run
   * with a plug-in modality passes one that asks every configured modality (its rawItems). An item
   * with neither an image nor another modality is refused; one whose image fails under 'skip'
   * stays if it has another.
   */
  hasOtherModality?: (item: PairedItem) => boolean;
  /**
   * Data-parallel training (src/distributed/): this rank loads only its shard of each batch of
   * `batchSize` (epoch_order.ts shardOfBatch). Needs dropLast, so that every batch splits evenly.
   */
  shard?: { rank: number; worldSize: number };
  /** A pool to decode on (shared, so close() leaves it open); default: the loader's own. */
  pool?: ImageDecodePool;
  /** Worker threads of the loader's own pool; default {@link ImageDecodePool.defaultSize}. */
  poolSize?: number;
}

/** The options every loader shares, with their defaults, checked; `where` names the loader in errors. */
export function resolveLoaderOptions(
  where: string,
  options: LoaderOptions,
): Required<Omit<LoaderOptions, 'onBadRecord' | 'onSkip' | 'pool' | 'poolSize' | 'hasOtherModality' | 'shard'>> {
  const { batchSize, size, channels = 3, fit = 'cover', seed = 0, shuffle = true, dropLast = true, prefetch = 2 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TypeError(`${where}: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(prefetch) || prefetch < 0)
    throw new TypeError(`${where}: prefetch must be a non-negative integer, got ${prefetch}`);
  if (!Number.isSafeInteger(seed)) throw new TypeError(`${where}: seed must be an integer, got ${seed}`);
  return { batchSize, size, channels, fit, seed, shuffle, dropLast, prefetch };
}
