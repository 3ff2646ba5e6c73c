// A streaming image–caption batch loader over a PairedDataset: each epoch visits the items in a
// seeded shuffled order, decodes each batch's images on an ImageDecodePool while the trainer works
// on the previous batch, and pairs every image with one of its captions, drawn afresh each epoch
// (as CLIP-style trainers sample one of COCO's five captions per step). Only the batches in flight
// are ever decoded, so memory does not grow with the data set.
import { performance } from 'node:perf_hooks';
import { tensor, type Tensor } from '../engine/index.js';
import { ImageDecodePool } from './image_pool.js';
import type { ImageFit } from './image_decode.js';
import { BadRecords, DatasetError, type OnBadRecord, type PairedDataset, type PairedItem } from './paired.js';
import { captionFor, epochOrder, prefetched } from './epoch_order.js';

export interface PairedLoaderOptions {
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
   * What to do with an item that has no image or no caption (found when the loader is made) or
   * whose image cannot be decoded (found when its batch is): 'fail' (default) throws the
   * {@link DatasetError} (an ImageDecodeError for images) naming the file; 'skip' leaves
   * the item out, counts it in {@link PairedImageLoader.skipped}, and never tries it again.
   */
  onBadRecord?: OnBadRecord;
  /** Called with each item that 'skip' leaves out, e.g. to log the first few. */
  onSkip?: (error: DatasetError) => void;
  /** A pool to decode on (shared, so close() leaves it open); default: the loader's own. */
  pool?: ImageDecodePool;
  /** Worker threads of the loader's own pool; default {@link ImageDecodePool.defaultSize}. */
  poolSize?: number;
}

/** The options every loader shares, with their defaults, checked; `where` names the loader in errors. */
export function resolveLoaderOptions(
  where: string,
  options: PairedLoaderOptions,
): Required<Omit<PairedLoaderOptions, 'onBadRecord' | 'onSkip' | 'pool' | 'poolSize'>> {
  const { batchSize, size, channels = 3, fit = 'cover', seed = 0, shuffle = true, dropLast = true, prefetch = 2 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TypeError(`${where}: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(prefetch) || prefetch < 0)
    throw new TypeError(`${where}: prefetch must be a non-negative integer, got ${prefetch}`);
  if (!Number.isSafeInteger(seed)) throw new TypeError(`${where}: seed must be an integer, got ${seed}`);
  return { batchSize, size, channels, fit, seed, shuffle, dropLast, prefetch };
}

/** One batch: N images, their captions, and where they came from. */
export interface ImageTextBatch {
  epoch: number;
  /** Position of the batch within its epoch, from 0. */
  step: number;
  /** Each image's index in `dataset.items`. */
  indices: number[];
  /** uint8 [N, C, size, size]; the consumer owns it (dispose it, or create it inside a tidy scope's caller). */
  images: Tensor;
  /** One caption per image, drawn from its captions with the loader's seed, the epoch and the index. */
  captions: string[];
  /**
   * Milliseconds the consumer waited for this batch: from asking for it (the iterator's next())
   * to getting it. Summed over an epoch and divided by the epoch's time, the data-wait fraction.
   */
  waitMs: number;
}

/** Pixels of one batch in flight, before they become a tensor (so abandoned batches need no disposal). */
interface LoadedBatch {
  step: number;
  indices: number[];
  pixels: Uint8Array;
}

/**
 * Iterates a paired data set as batches of decoded images and captions, one epoch at a time.
 * Epochs are independent and reproducible: epoch e's order and captions depend only on the
 * seed, e and the items (and on which items an earlier 'skip' left out).
 *
 * Bad images under 'skip': an item whose image fails is dropped from its batch, so that batch is
 * one short (a batch left empty is not yielded); from the next epoch on the item is left out
 * before batching. A short batch caused this way is yielded even with dropLast.
 *
 * @example
 * const loader = new PairedImageLoader(loadCocoCaptions(file, dir), { batchSize: 256, size: 64, seed: 1 });
 * for (let epoch = 0; epoch < 100; epoch++) {
 *   for await (const { images, captions, waitMs } of loader.epoch(epoch)) {
 *     trainStep(images, captions); // images: uint8 [256, 3, 64, 64]
 *     images.dispose();
 *   }
 * }
 * await loader.close();
 */
export class PairedImageLoader {
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly #items: readonly PairedItem[];
  /** Indices of the items with an image and a caption, in data-set order. */
  readonly #usable: number[];
  /** Items whose image failed under 'skip'; left out of later epochs. */
  readonly #bad = new Set<number>();
  readonly #records: BadRecords;
  readonly #pool: ImageDecodePool;
  readonly #ownsPool: boolean;
  readonly #decode: { size: number; channels: 1 | 3; fit: ImageFit };
  readonly #seed: number;
  readonly #shuffle: boolean;
  #batches = 0;
  #waitMs = 0;

  constructor(dataset: PairedDataset, options: PairedLoaderOptions) {
    const { batchSize, size, channels, fit, seed, shuffle, dropLast, prefetch } = resolveLoaderOptions('PairedImageLoader', options);
    this.batchSize = batchSize;
    this.dropLast = dropLast;
    this.prefetch = prefetch;
    this.#decode = { size, channels, fit };
    this.#seed = seed >>> 0;
    this.#shuffle = shuffle;
    this.#records = new BadRecords({ onBadRecord: options.onBadRecord, onSkip: options.onSkip });
    this.#items = dataset.items;
    this.#usable = [];
    dataset.items.forEach((item, index) => {
      const record = `items[${index}] (id ${JSON.stringify(item.id)})`;
      if (item.image === undefined) {
        this.#records.report(
          new DatasetError(dataset.source, 'missing-field', 'has no image; the image–caption loader needs one', { record }),
        );
      } else if (item.captions.length === 0) {
        this.#records.report(
          new DatasetError(dataset.source, 'no-captions', 'has no caption; the image–caption loader needs one', { record }),
        );
      } else this.#usable.push(index);
    });
    this.#ownsPool = options.pool === undefined;
    this.#pool = options.pool ?? new ImageDecodePool({ size: options.poolSize });
  }

  /** Items an epoch visits now (those with an image and a caption, less images found bad). */
  get itemCount(): number {
    return this.#usable.length - this.#bad.size;
  }

  /** Batches the next epoch yields (fewer if images turn out bad during it). */
  get batchesPerEpoch(): number {
    return this.dropLast ? Math.floor(this.itemCount / this.batchSize) : Math.ceil(this.itemCount / this.batchSize);
  }

  /** Items left out under 'skip', by reason ('not-an-image' includes corrupt files); `{}` when none. */
  get skipped(): Readonly<Record<string, number>> {
    return { ...this.#records.skipped };
  }

  /** Total of {@link skipped}. */
  get skippedCount(): number {
    return Object.values(this.#records.skipped).reduce((a, b) => a + b, 0);
  }

  /** Batches yielded and milliseconds spent waiting for them, since the loader was made. */
  get stats(): { batches: number; waitMs: number } {
    return { batches: this.#batches, waitMs: this.#waitMs };
  }

  /** The item indices of an epoch, in the order it visits them (before any 'skip' during it). */
  order(epoch: number): number[] {
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new TypeError(`PairedImageLoader: epoch must be a non-negative integer, got ${epoch}`);
    return epochOrder(
      this.#usable.filter((i) => !this.#bad.has(i)),
      this.#seed,
      epoch,
      this.#shuffle,
    );
  }

  /** The caption an item gets in an epoch. */
  caption(index: number, epoch: number): string {
    const captions = this.#items[index]?.captions;
    if (captions === undefined || captions.length === 0) throw new RangeError(`PairedImageLoader: item ${index} has no captions`);
    return captionFor(captions, this.#seed, epoch, index);
  }

  /**
   * The batches of one epoch. Up to `prefetch` batches after the current one are decoded while
   * the consumer works. Iterate one epoch at a time; breaking out early is fine. `fromStep`
   * starts the epoch at that batch without loading the ones before (to resume a run).
   */
  async *epoch(epoch: number, fromStep = 0): AsyncGenerator<ImageTextBatch, void, undefined> {
    const order = this.order(epoch);
    const count = this.dropLast ? Math.floor(order.length / this.batchSize) : Math.ceil(order.length / this.batchSize);
    const batches = prefetched(
      count,
      (step) => this.#load(step, order.slice(step * this.batchSize, (step + 1) * this.batchSize)),
      this.prefetch,
      fromStep,
    );
    let asked = performance.now();
    for await (const loaded of batches) {
      if (loaded.indices.length === 0) continue;
      const { size, channels } = this.#decode;
      const images = tensor(loaded.pixels, { shape: [loaded.indices.length, channels, size, size] });
      const captions = loaded.indices.map((i) => this.caption(i, epoch));
      const waitMs = performance.now() - asked;
      this.#batches++;
      this.#waitMs += waitMs;
      yield { epoch, step: loaded.step, indices: loaded.indices, images, captions, waitMs };
      asked = performance.now();
    }
  }

  /** Ends the loader's own decode workers (a pool passed in stays open). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.close();
  }

  /** Decodes one batch; under 'skip', drops the failed images and packs the rest together. */
  async #load(step: number, indices: number[]): Promise<LoadedBatch> {
    const { pixels, failures } = await this.#pool.decodeBatch(
      indices.map((i) => this.#items[i]!.image!),
      this.#decode,
    );
    if (failures.length === 0) return { step, indices, pixels };
    for (const { index, error } of failures) {
      this.#records.report(error); // throws under 'fail'
      this.#bad.add(indices[index]!);
    }
    const perImage = pixels.length / indices.length;
    const failed = new Set(failures.map((f) => f.index));
    const kept: number[] = [];
    indices.forEach((itemIndex, position) => {
      if (failed.has(position)) return;
      pixels.copyWithin(kept.length * perImage, position * perImage, (position + 1) * perImage);
      kept.push(itemIndex);
    });
    return { step, indices: kept, pixels: pixels.subarray(0, kept.length * perImage) };
  }
}
