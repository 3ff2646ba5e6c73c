// What every loader needs to visit a data set reproducibly: a well-mixed seed from (seed, epoch,
// ...), a small seeded generator, a Fisher–Yates shuffle, and a prefetching loop that keeps a few
// batches loading while the consumer works on the current one.

/** MurmurHash3's 32-bit finaliser folded over the words: a well-mixed seed from (seed, epoch, ...). */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const word of words) {
    h = Math.imul(h ^ (word >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates. */
export function shuffleInPlace(values: number[], random: () => number): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
}

/** The order an epoch visits `indices` in: shuffled from (seed, epoch), or as given. */
export function epochOrder(indices: readonly number[], seed: number, epoch: number, shuffle: boolean): number[] {
  const order = [...indices];
  if (shuffle) shuffleInPlace(order, mulberry32(hash32(seed, epoch)));
  return order;
}

/**
 * The items of batch `step` of an epoch's `order` that data-parallel rank `rank` of `worldSize`
 * trains: the rank-th of worldSize equal slices of that batch. The ranks' slices of a batch are
 * disjoint and together are the batch one process trains, so an epoch's shards add up to the
 * single-process epoch (src/distributed/). batchSize must be a multiple of worldSize.
 *
 * @example
 * shardOfBatch([7, 3, 5, 1, 0, 2, 4, 6], 1, 4, 1, 2); // [0, 2]: batch 1 is [0, 2, 4, 6], rank 1 of 2 takes its second half
 */
export function shardOfBatch(order: readonly number[], step: number, batchSize: number, rank: number, worldSize: number): number[] {
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new RangeError(`shardOfBatch: rank must be an integer from 0 to worldSize − 1, got rank ${rank} of ${worldSize}`);
  if (batchSize % worldSize !== 0)
    throw new RangeError(`shardOfBatch: a batch of ${batchSize} does not split into ${worldSize} equal shards`);
  const perRank = batchSize / worldSize;
  const start = step * batchSize + rank * perRank;
  return order.slice(start, Math.min(start + perRank, (step + 1) * batchSize));
}

/** The caption an item gets in an epoch: one of its captions, drawn from (seed, epoch, index). */
export function captionFor(captions: readonly string[], seed: number, epoch: number, index: number): string {
  return captions[hash32(seed, epoch, index, 0x63617074) % captions.length]!;
}

/**
 * load(start), load(start + 1), ... load(count − 1) in order, with up to `depth` loads running
 * ahead of the one being consumed. A failed load rejects when its turn comes, not before (and is
 * never an unhandled rejection meanwhile).
 */
export async function* prefetched<T>(
  count: number,
  load: (step: number) => Promise<T>,
  depth: number,
  start = 0,
): AsyncGenerator<T, void, undefined> {
  const inFlight: Promise<T>[] = [];
  let launched = start;
  const launch = (): void => {
    const loading = load(launched++);
    loading.catch(() => {}); // rethrown when awaited
    inFlight.push(loading);
  };
  while (launched < count || inFlight.length > 0) {
    if (inFlight.length === 0) launch();
    const loaded = await inFlight.shift()!;
    while (launched < count && inFlight.length < depth) launch();
    yield loaded;
  }
}
