// A streaming batch loader for data sets whose items hold any subset of the modalities (a JSONL
// manifest: image, text, vector). Each batch says, per modality, which of its rows have it, so the
// aligner can train every item's own intra-modal terms and the cross-modal terms of the pairs that
// are present. Images are decoded on worker threads while the trainer works on the previous batch;
// one caption per item is drawn afresh each epoch.
import { performance } from 'node:perf_hooks';
import { tensor, type Tensor } from '../engine/index.js';
import { ImageDecodePool } from './image_pool.js';
import type { ImageFit } from './image_decode.js';
import { BadRecords, DatasetError, type PairedDataset, type PairedItem } from './paired.js';
import { resolveLoaderOptions, type LoaderOptions } from './loader_options.js';
import { captionFor, epochOrder, prefetched, shardOfBatch } from './epoch_order.js';
import { BadItemError } from '../modalities/bad_item.js';

/** The rows of a batch that have a modality (positions within the batch, ascending) and their data. */
export interface ModalityRows<T> {
  rows: number[];
  data: T;
}

/** One batch of a manifest: its items and, per modality present in it, the rows that have it. */
export interface ManifestBatch {
  epoch: number;
  step: number;
  /** Each row's index in `dataset.items`. */
  indices: number[];
  /** uint8 [k, C, size, size] for the k rows with an image; the consumer owns the tensor. */
  image?: ModalityRows<Tensor>;
  /** One caption per row with text. */
  text?: ModalityRows<string[]>;
  /** The vectors of the rows with one (`extra.vector` of a JSONL manifest). */
  vector?: ModalityRows<number[][]>;
  /** Milliseconds the consumer waited for this batch. */
  waitMs: number;
}

interface LoadedBatch {
  step: number;
  indices: number[];
  /** Rows with a decoded image, and their pixels in that order. */
  imageRows: number[];
  pixels: Uint8Array;
}

const vectorOf = (item: PairedItem): number[] | undefined => item.extra?.vector as number[] | undefined;
// captionFor's draw (from seed, epoch and item) picks from any list, not only captions.
const drawFor = captionFor as <T>(list: readonly T[], seed: number, epoch: number, index: number) => T;

/**
 * Iterates a data set of items with any subset of image, text and vector, one epoch at a time;
 * epochs are reproducible from the seed. Under onBadRecord 'skip', an image that cannot be decoded
 * is counted and dropped from its item for good; the item keeps its other modalities (and leaves
 * the batch only if it had nothing else). Other modalities' bad raw items: see collated.
 *
 * @example
 * const loader = new ManifestLoader(loadJsonlManifest('pairs.jsonl'), { batchSize: 256, size: 64 });
 * for await (const batch of loader.epoch(0)) {
 *   batch.image?.rows; // e.g. [0, 1, 3]: rows 0, 1 and 3 have an image, batch.image.data its pixels
 *   batch.image?.data.dispose();
 * }
 * await loader.close();
 */
export class ManifestLoader {
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly #items: readonly PairedItem[];
  readonly #records: BadRecords;
  readonly #pool: ImageDecodePool;
  readonly #ownsPool: boolean;
  readonly #decode: { size: number; channels: 1 | 3; fit: ImageFit };
  readonly #seed: number;
  readonly #shuffle: boolean;
  readonly #hasOther: (item: PairedItem) => boolean;
  readonly #shard: { rank: number; worldSize: number } | undefined;
  /** Items whose image failed under 'skip'; they are treated as having none. */
  readonly #badImages = new Set<number>();
  /** Per modality, the raw items (file paths) its collate refused under 'skip'; items are treated as not having them. */
  readonly #badRawItems = new Map<string, Set<unknown>>();

  constructor(dataset: PairedDataset, options: LoaderOptions) {
    const { batchSize, size, channels, fit, seed, shuffle, dropLast, prefetch } = resolveLoaderOptions('ManifestLoader', options);
    const hasOther = options.hasOtherModality ?? ((item: PairedItem) => item.captions.length > 0 || vectorOf(item) !== undefined);
    dataset.items.forEach((item, index) => {
      if (item.image === undefined && !hasOther(item)) {
        throw new DatasetError(dataset.source, 'no-modality', 'has no image and no other modality', {
          record: `items[${index}] (id ${JSON.stringify(item.id)})`,
        });
      }
    });
    this.batchSize = batchSize;
    this.dropLast = dropLast;
    this.prefetch = prefetch;
    this.#items = dataset.items;
    this.#decode = { size, channels, fit };
    this.#seed = seed >>> 0;
    this.#shuffle = shuffle;
    this.#hasOther = hasOther;
    if (options.shard !== undefined) {
      const { rank, worldSize } = options.shard;
      shardOfBatch([], 0, batchSize, rank, worldSize); // checks the shard
      if (!dropLast) throw new RangeError('ManifestLoader: a shard needs dropLast, so that every batch splits into equal shards');
    }
    this.#shard = options.shard;
    this.#records = new BadRecords({ onBadRecord: options.onBadRecord, onSkip: options.onSkip });
    this.#ownsPool = options.pool === undefined;
    this.#pool = options.pool ?? new ImageDecodePool({ size: options.poolSize });
  }

  /** Batches per epoch, over the items that still have something to train (see order). */
  get batchesPerEpoch(): number {
    const n = this.#usableItems().length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Images and other modalities' raw items (see collated) left out under 'skip', by reason; `{}` when none. */
  get skipped(): Readonly<Record<string, number>> {
    return { ...this.#records.skipped };
  }

  /**
   * The item indices of an epoch, in the order it visits them: every item but those whose only
   * modality was an image that 'skip' dropped in an earlier epoch (so later batches stay full).
   */
  order(epoch: number): number[] {
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new TypeError(`ManifestLoader: epoch must be a non-negative integer, got ${epoch}`);
    return epochOrder(this.#usableItems(), this.#seed, epoch, this.#shuffle);
  }

  /** The batches of one epoch, from batch `fromStep` on (to resume a run). */
  async *epoch(epoch: number, fromStep = 0): AsyncGenerator<ManifestBatch, void, undefined> {
    const order = this.order(epoch);
    const batches = prefetched(
      this.batchesPerEpoch,
      (step) =>
        this.#load(
          step,
          this.#shard === undefined
            ? order.slice(step * this.batchSize, (step + 1) * this.batchSize)
            : shardOfBatch(order, step, this.batchSize, this.#shard.rank, this.#shard.worldSize),
        ),
      this.prefetch,
      fromStep,
    );
    let asked = performance.now();
    for await (const loaded of batches) {
      const batch = this.#assemble(loaded, epoch);
      if (batch.indices.length === 0) continue;
      batch.waitMs = performance.now() - asked;
      yield batch;
      asked = performance.now();
    }
  }

  /**
   * The rows of `batch` whose items have raw items of a modality (`rawItems`, a factory's), each
   * with one of them: the only one, or one drawn afresh each epoch (as captions are); undefined
   * when no row has any. This is how every modality but the image (decoded ahead, on workers)
   * gets its batch.
   *
   * @example
   * loader.rowsOf(batch, (item) => item.captions); // the same rows and captions as batch.text
   */
  rowsOf<T>(batch: ManifestBatch, rawItems: (item: PairedItem) => readonly T[]): ModalityRows<T[]> | undefined {
    const lists = batch.indices.map((index) => rawItems(this.#items[index]!));
    const rows = lists.map((_, row) => row).filter((row) => lists[row]!.length > 0);
    if (rows.length === 0) return undefined;
    return { rows, data: rows.map((row) => drawFor(lists[row]!, this.#seed, batch.epoch, batch.indices[row]!)) };
  }

  /**
   * A modality's rows of `batch` (as {@link rowsOf}) collated by `collate`: one call when every raw
   * item is good. A raw item that `collate` refuses with a {@link BadItemError} naming its position
   * is thrown under onBadRecord 'fail'; under 'skip' it is counted, dropped for good (from every
   * item naming it: the next epochs do not read it again) and the rest collated again. Its item keeps
   * its other modalities and its other raw items of this one (drawn instead), and trains without
   * it where it has none left. Any other error is thrown. Undefined when no row has a raw item left.
   *
   * @example
   * const audio = await loader.collated(batch, 'audio', audioModality.rawItems, (clips) => modality.collate(clips));
   */
  async collated<T, B>(
    batch: ManifestBatch,
    name: string,
    rawItems: (item: PairedItem) => readonly T[],
    collate: (items: T[]) => Promise<B>,
  ): Promise<ModalityRows<B> | undefined> {
    let dropped = this.#badRawItems.get(name);
    if (dropped === undefined) this.#badRawItems.set(name, (dropped = new Set()));
    const bad = dropped;
    const usable = (item: PairedItem): readonly T[] => (bad.size === 0 ? rawItems(item) : rawItems(item).filter((raw) => !bad.has(raw)));
    for (let present = this.rowsOf(batch, usable); present !== undefined; present = this.rowsOf(batch, usable)) {
      try {
        return { rows: present.rows, data: await collate(present.data) };
      } catch (err) {
        const index = err instanceof BadItemError ? err.index : undefined;
        if (index === undefined || !Number.isInteger(index) || index < 0 || index >= present.data.length) throw err;
        this.#records.report(err as BadItemError); // throws under 'fail'
        bad.add(present.data[index]);
      }
    }
    return undefined;
  }

  /** Ends the loader's own decode workers (a pool passed in stays open). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.close();
  }

  /** Indices of the items with an image not dropped, or another modality. */
  #usableItems(): number[] {
    const all = this.#items.map((_, i) => i);
    return this.#badImages.size === 0 ? all : all.filter((i) => this.#hasImage(i) || this.#hasOther(this.#items[i]!));
  }

  #hasImage(index: number): boolean {
    return this.#items[index]!.image !== undefined && !this.#badImages.has(index);
  }

  /** Decodes the batch's images; under 'skip', drops the failed ones and packs the rest together. */
  async #load(step: number, indices: number[]): Promise<LoadedBatch> {
    const withImage = indices.map((_, row) => row).filter((row) => this.#hasImage(indices[row]!));
    const { pixels, failures } = await this.#pool.decodeBatch(
      withImage.map((row) => this.#items[indices[row]!]!.image!),
      this.#decode,
    );
    const failed = new Set<number>();
    for (const { index, error } of failures) {
      this.#records.report(error); // throws under 'fail'
      this.#badImages.add(indices[withImage[index]!]!);
      failed.add(index);
    }
    if (failed.size === 0) return { step, indices, imageRows: withImage, pixels };
    const perImage = pixels.length / withImage.length;
    const kept: number[] = [];
    withImage.forEach((row, position) => {
      if (failed.has(position)) return;
      pixels.copyWithin(kept.length * perImage, position * perImage, (position + 1) * perImage);
      kept.push(row);
    });
    return { step, indices, imageRows: kept, pixels: pixels.subarray(0, kept.length * perImage) };
  }

  /** The batch as the consumer sees it: rows that lost their only modality are left out. */
  #assemble(loaded: LoadedBatch, epoch: number): ManifestBatch {
    const hasImage = new Set(loaded.imageRows);
    const keep = loaded.indices
      .map((_, row) => row)
      .filter((row) => {
        const item = this.#items[loaded.indices[row]!]!;
        return hasImage.has(row) || this.#hasOther(item);
      });
    const position = new Map(keep.map((row, i) => [row, i]));
    const indices = keep.map((row) => loaded.indices[row]!);
    const batch: ManifestBatch = { epoch, step: loaded.step, indices, waitMs: 0 };
    if (loaded.imageRows.length > 0) {
      const { size, channels } = this.#decode;
      batch.image = {
        rows: loaded.imageRows.map((row) => position.get(row)!),
        data: tensor(loaded.pixels, { shape: [loaded.imageRows.length, channels, size, size] }),
      };
    }
    const text = this.rowsOf(batch, (item) => item.captions);
    if (text) batch.text = text;
    const vector = this.rowsOf(batch, (item) => {
      const v = vectorOf(item);
      return v === undefined ? [] : [v];
    });
    if (vector) batch.vector = vector;
    return batch;
  }
}

/**
 * The images of `dataset`'s items (each must have one), decoded on worker threads in data-set
 * order, in batches: what evaluation and the report embed. An image that cannot be decoded is an
 * error naming its file even under onBadRecord 'skip', since images are paired with their captions
 * by position and none may go missing.
 *
 * @example
 * for await (const images of decodedImages(dataset, { size: 64, channels: 3 })) embed(images); // uint8 [≤256, 3, 64, 64]
 */
export async function* decodedImages(
  dataset: PairedDataset,
  decode: { size: number; channels: 1 | 3; fit?: ImageFit },
  batchSize = 256,
): AsyncGenerator<Tensor, void, undefined> {
  const missing = dataset.items.findIndex((item) => item.image === undefined);
  if (missing >= 0) {
    const item = dataset.items[missing]!;
    throw new DatasetError(dataset.source, 'missing-field', 'has no image to decode', {
      record: `items[${missing}] (id ${JSON.stringify(item.id)})`,
    });
  }
  const loader = new ManifestLoader(dataset, { ...decode, batchSize, shuffle: false, dropLast: false, onBadRecord: 'fail' });
  try {
    for await (const batch of loader.epoch(0)) yield batch.image!.data;
  } finally {
    await loader.close();
  }
}
