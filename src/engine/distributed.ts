// torch.distributed's c10d from TypeScript (native/distributed.cc): a TCPStore to meet at, a Gloo
// process group on it with all-reduce, all-gather, broadcast and barrier on CPU tensors (blocking,
// or as a Work to wait on), an all-gather with a gradient for losses over the global batch, and
// the GradReducer that averages gradients in buckets while backward runs. Every rank must call
// the collectives of a group in the same order, as in PyTorch.
import { native, type GroupHandle, type Handle, type ReducerHandle, type StoreHandle, type WorkHandle } from './native.js';
import { Tensor } from './tensor.js';

/** PyTorch's default for a process group's collectives: 30 minutes. */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

/** Thrown when this build of the addon has no torch.distributed; the message says why and what to do. */
export class DistributedUnavailableError extends Error {
  constructor(reason: string) {
    super(`distributed training is unavailable: ${reason}`);
    this.name = 'DistributedUnavailableError';
  }
}

/** null where the addon was built with c10d's Gloo backend; otherwise why it was not. */
export function distributedUnavailableReason(): string | null {
  return native.distSupport === '' ? null : native.distSupport;
}

function checkAvailable(): void {
  const reason = distributedUnavailableReason();
  if (reason !== null) throw new DistributedUnavailableError(reason);
}

export interface StoreOptions {
  host: string;
  /** 0 with isServer: any free port (see Store.port). */
  port: number;
  /** This process hosts the store (rank 0, unless a launcher such as torchrun hosts it). */
  isServer: boolean;
  /** The ranks that meet here; the server waits for all of them. Leave out to join a store a launcher hosts and counts. */
  worldSize?: number;
  /** How long to wait for the server, and for keys (default 30 minutes). */
  timeoutMs?: number;
  /** Keys are read and written under this prefix (a PrefixStore), e.g. torchrun's '/worker/attempt_0'. */
  prefix?: string;
}

/**
 * A key-value store the ranks rendezvous through (c10d's TCPStore).
 *
 * @example
 * const store = Store.connect({ host: '127.0.0.1', port: 29500, isServer: rank === 0, worldSize: 2 });
 */
export class Store {
  private constructor(
    readonly handle: StoreHandle,
    /** The port the store listens on (the one chosen, when the server was asked for port 0). */
    readonly port: number,
  ) {}

  static connect(options: StoreOptions): Store {
    checkAvailable();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const [handle, port] = native.distStore(
      options.host,
      options.port,
      options.isServer,
      options.worldSize ?? null,
      timeoutMs,
      options.prefix ?? '',
    );
    return new Store(handle, port);
  }

  set(key: string, value: string): void {
    native.distStoreSet(this.handle, key, value);
  }

  /** The value of `key`, waiting for some rank to set it (up to the store's timeout). */
  get(key: string): string {
    return native.distStoreGet(this.handle, key);
  }

  /** Adds delta to the integer at `key` (0 when absent); returns the sum. */
  add(key: string, delta: number): number {
    return native.distStoreAdd(this.handle, key, delta);
  }
}

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** Names the group in errors and keys its rendezvous, so that several groups share a store (default 'main'). */
  name?: string;
  /** A collective that takes longer fails (default 30 minutes, PyTorch's). */
  timeoutMs?: number;
  /** The network interface Gloo binds to, e.g. 'eth0' (PyTorch's GLOO_SOCKET_IFNAME). */
  interface?: string;
  /** Or the address (or a hostname resolving to it) Gloo binds to, e.g. '127.0.0.1'. */
  hostname?: string;
  /** Gloo's threads for collectives (default 2). */
  threads?: number;
}

/** An asynchronous collective: wait() completes it (and throws its error). */
export class Work {
  constructor(readonly handle: WorkHandle) {}

  /** Blocks until done; throws, naming the collective and the rank, when it failed or took longer than timeoutMs. */
  wait(timeoutMs?: number): void {
    native.distWait(this.handle, timeoutMs);
  }

  get completed(): boolean {
    return native.distIsCompleted(this.handle);
  }
}

/**
 * A Gloo process group: collectives over the same tensors on every rank, on the CPU.
 *
 * @example
 * const group = ProcessGroup.create(store, { rank, worldSize: 2, hostname: '127.0.0.1' });
 * const t = tensor([rank + 1]);
 * group.allReduce(t);                 // t is [3] on both ranks
 * group.allGather(tensor([[rank]])); // [[0], [1]] on both ranks
 */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly name: string;
  readonly timeoutMs: number;
  #handle: GroupHandle | null;

  private constructor(handle: GroupHandle, options: Required<Pick<ProcessGroupOptions, 'rank' | 'worldSize' | 'name' | 'timeoutMs'>>) {
    this.#handle = handle;
    ({ rank: this.rank, worldSize: this.worldSize, name: this.name, timeoutMs: this.timeoutMs } = options);
  }

  /** Joins the group; blocks until every rank has (or the timeout). */
  static create(store: Store, options: ProcessGroupOptions): ProcessGroup {
    checkAvailable();
    const { rank, worldSize } = options;
    if (!Number.isInteger(worldSize) || worldSize < 1)
      throw new RangeError(`ProcessGroup: worldSize must be an integer ≥ 1, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
      throw new RangeError(`ProcessGroup: rank must be an integer from 0 to ${worldSize - 1}, got ${rank}`);
    const name = options.name ?? 'main';
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const handle = native.distGroup(
      store.handle,
      rank,
      worldSize,
      timeoutMs,
      name,
      options.interface ?? null,
      options.hostname ?? null,
      options.threads ?? 2,
    );
    return new ProcessGroup(handle, { rank, worldSize, name, timeoutMs });
  }

  get handle(): GroupHandle {
    if (this.#handle === null) throw new Error(`process group '${this.name}' was destroyed`);
    return this.#handle;
  }

  /** Reduces `t` over the ranks in place ('avg': the sum divided by worldSize); returns t. */
  allReduce(t: Tensor, op: ReduceOp = 'sum'): Tensor {
    native.distAllReduce(this.handle, t.handle, op, false);
    return t;
  }

  /** allReduce started in the background; `t` holds the result once the Work's wait() returns. */
  allReduceAsync(t: Tensor, op: ReduceOp = 'sum'): Work {
    return new Work(native.distAllReduce(this.handle, t.handle, op, true)!);
  }

  /** Copies rank `root`'s `t` into every rank's `t`; returns t. */
  broadcast(t: Tensor, root = 0): Tensor {
    native.distBroadcast(this.handle, t.handle, root, false);
    return t;
  }

  broadcastAsync(t: Tensor, root = 0): Work {
    return new Work(native.distBroadcast(this.handle, t.handle, root, true)!);
  }

  /** Every rank's `t` [n, ...] stacked in rank order: [worldSize·n, ...], without gradient. */
  allGather(t: Tensor): Tensor {
    return new Tensor(native.distAllGather(this.handle, t.handle, false));
  }

  /**
   * allGather with a gradient: for a loss every rank computes over the gathered rows, the gradient
   * reaching `t` is the sum over the ranks of each one's gradient of these rows (the backward is
   * an all-reduce, so every rank must run backward through it). Averaging the parameters'
   * gradients over the ranks then gives the gradient of the loss over the global batch, as in
   * VICReg's and solo-learn's FullGatherLayer.
   */
  allGatherWithGrad(t: Tensor): Tensor {
    return new Tensor(native.distAllGather(this.handle, t.handle, true));
  }

  /**
   * Batch normalisation with the statistics of every rank's batch (PyTorch's SyncBatchNorm, which
   * refuses CPU tensors), for several layers in one collective: each layer's `input` [N, C, ...]
   * normalised per channel with the mean and variance of all ranks' rows, scaled and shifted by
   * its weight and bias; its running averages (when given) move towards the global mean and
   * unbiased variance by `momentum` (default 0.1; eps default 1e-5). Its backward all-reduces Σdy
   * and Σdy·x̂ of the layers that need a gradient, so every rank must run backward through it;
   * weight and bias get this rank's share of their gradient (the ranks' sum is theirs). A layer
   * whose input, weight and bias need no gradient (a BYOL target's) gives an output without one.
   * Every rank must pass the same layers, with the same channels, in the same order.
   *
   * @example
   * const [y] = group.syncBatchNorm([{ input: x, weight: bn.weight, bias: bn.bias, runningMean, runningVar }]);
   */
  syncBatchNorm(layers: readonly SyncBatchNormLayer[]): Tensor[] {
    const handle = (t: Tensor | null | undefined): Handle | null => (t ? t.handle : null);
    const handles = native.distSyncBatchNorm(
      this.handle,
      layers.map((layer) => ({
        input: layer.input.handle,
        weight: handle(layer.weight),
        bias: handle(layer.bias),
        runningMean: handle(layer.runningMean),
        runningVar: handle(layer.runningVar),
        momentum: layer.momentum ?? 0.1,
        eps: layer.eps ?? 1e-5,
      })),
    );
    return handles.map((h) => new Tensor(h));
  }

  /**
   * From now on the blocking allGather and allReduce of tensors up to `capacityBytes` (and the
   * collectives inside allGatherWithGrad and syncBatchNorm) go through this shared-memory segment
   * instead of Gloo: ranks on one machine (src/distributed/same_host.ts). null: through Gloo again.
   */
  shareMemory(segment: SharedMemoryOptions | null, capacityBytes = 0): void {
    native.distGroupShareMemory(this.handle, segment?.name ?? '', segment?.create ?? false, capacityBytes);
  }

  /** Whether shareMemory is in effect. */
  get sharesMemory(): boolean {
    return native.distGroupSharesMemory(this.handle);
  }

  /** Returns when every rank has called it. */
  barrier(): void {
    native.distBarrier(this.handle);
  }

  /** Closes the group's connections and threads. */
  destroy(): void {
    if (this.#handle === null) return;
    native.distDestroyGroup(this.#handle);
    this.#handle = null;
  }
}

/** One layer of ProcessGroup.syncBatchNorm. */
export interface SyncBatchNormLayer {
  input: Tensor;
  weight?: Tensor | null;
  bias?: Tensor | null;
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  momentum?: number;
  eps?: number;
}

export interface GradReducerStats {
  /** The values each bucket all-reduces (its gradients, and one flag per parameter). */
  bucketSizes: number[];
  /** Milliseconds the last backward waited at its end for the all-reduces: what did not hide behind it. */
  lastWaitMs: number;
  /** Buckets the last backward had started before it ended. */
  lastStartedEarly: number;
  /** Backward passes averaged so far. */
  backwards: number;
  /** What carries the sums: Gloo's all-reduce, or a shared-memory segment of ranks on one machine. */
  transport: 'gloo' | 'shared-memory';
}

/** A shared-memory segment in place of Gloo (ranks on one machine; src/distributed/same_host.ts). */
export interface SharedMemoryOptions {
  /** The segment's name under /dev/shm, e.g. '/byol-align-1234-5f3a'. */
  name: string;
  /** Rank 0 creates it (the name must be free); the others open it after. */
  create: boolean;
}

/** Removes a shared-memory segment's name once every rank has opened it; their mappings stay. */
export function unlinkSharedMemory(name: string): void {
  native.distUnlinkShared(name);
}

/**
 * Data-parallel gradient averaging (PyTorch DDP's buckets): from construction on, every backward
 * through `params` ends with each parameter's .grad the mean over the ranks of that backward's
 * gradient. Gradients are copied into flat buckets as backward produces them, and a bucket's
 * all-reduce runs while backward goes on. .grad must be cleared (zeroGrad) before each backward;
 * a parameter no rank used keeps no gradient. With `sharedMemory`, the ranks (all on one machine)
 * sum the buckets in a shared segment on their own threads instead.
 *
 * @example
 * const reducer = new GradReducer(group, model.parameters());
 * optimizer.zeroGrad();
 * loss.backward(); // grads are now averaged over the ranks
 * optimizer.step();
 */
export class GradReducer {
  #handle: ReducerHandle | null;

  constructor(
    readonly group: ProcessGroup,
    params: readonly Tensor[],
    options: { bucketBytes?: number; sharedMemory?: SharedMemoryOptions } = {},
  ) {
    // DDP's default bucket cap: 25 MiB.
    const bucketBytes = options.bucketBytes ?? 25 * 1024 * 1024;
    const { sharedMemory } = options;
    this.#handle = native.distReducer(
      group.handle,
      params.map((p) => p.handle),
      bucketBytes,
      sharedMemory?.name,
      sharedMemory?.create,
    );
  }

  get #live(): ReducerHandle {
    if (this.#handle === null) throw new Error('GradReducer: removed');
    return this.#handle;
  }

  /** Off: backward leaves gradients local (e.g. a backward that is not a training step). */
  set enabled(enabled: boolean) {
    native.distReducerSetEnabled(this.#live, enabled);
  }

  stats(): GradReducerStats {
    const [bucketSizes, lastWaitMs, lastStartedEarly, backwards, transport] = native.distReducerStats(this.#live);
    return { bucketSizes, lastWaitMs, lastStartedEarly, backwards, transport };
  }

  /** Takes the hooks off the parameters. */
  remove(): void {
    if (this.#handle === null) return;
    native.distReducerRemove(this.#handle);
    this.#handle = null;
  }
}
