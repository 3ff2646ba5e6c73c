// Data-parallel training of the aligner: a wrapper around an unchanged AlignTrainer, as PyTorch's
// DistributedDataParallel wraps a module. Every rank builds the same trainer over its shard of each
// batch (ManifestLoader's `shard`, src/data/epoch_order.ts shardOfBatch); the wrapper then
//   - makes the ranks start identical: rank 0's whole training state (weights, EMA target,
//     BatchNorm statistics, optimizer state, step) is broadcast to the others, so a run resumed on
//     rank 0 continues on all of them;
//   - synchronises BatchNorm over the ranks (sync_batch_norm.ts), so the statistics the network
//     normalises with, and the running averages the EMA target copies, are the global batch's;
//   - gathers the model's outputs, so the losses see the global batch (global_outputs.ts);
//   - averages the gradients in buckets while backward runs (GradReducer, native/distributed.cc);
//   - where every rank runs on this machine, runs these collectives through shared memory instead
//     of Gloo (same_host.ts);
//   - makes the ranks agree on stopping (a SIGINT that reached one rank stops all after the same step).
// With the same global batch and seed, the weights then follow one process's training of that
// batch, to rounding (tests/data_parallel.test.ts), when the views draw no randomness: each rank
// draws its own views (AlignTrainOptions.rank).
import { noGrad, tensor, zeros, cat, type Tensor } from '../engine/index.js';
import type { GradReducer, GradReducerStats, ProcessGroup } from '../engine/distributed.js';
import type { DType } from '../engine/dtype.js';
import type { AlignRunHooks, AlignStepRecord, AlignTrainer, AlignTrainerMeta } from '../align/train.js';
import { convertSyncBatchNorm, type SyncControl } from './sync_batch_norm.js';
import { gatherOutputsOverRanks } from './global_outputs.js';
import { gradientReducer, shareCollectiveMemory } from './same_host.js';

export interface DataParallelOptions {
  /** The forward pass's collectives: the gathers of outputs and BatchNorm statistics, the start's broadcast, stopping. */
  group: ProcessGroup;
  /**
   * The gradients' all-reduces, on a group of their own so that a bucket in flight never holds up
   * a forward collective queued behind it (default: `group`).
   */
  gradientGroup?: ProcessGroup;
  /** Normalise with the global batch's statistics (default true). */
  syncBatchNorm?: boolean;
  /**
   * Gradient bucket size (default 4 MiB). DDP's 25 MiB would hold the default model's 18 MB of
   * gradients in one bucket, which can only start when backward has ended; smaller ones start
   * while it runs.
   */
  bucketBytes?: number;
  /**
   * Where every rank runs on this machine, average the gradients and run the step's collectives
   * through shared memory (default true; same_host.ts); false: always through Gloo, as between
   * machines.
   */
  sameHostMemory?: boolean;
}

/**
 * @example
 * const trainer = new AlignTrainer(model, { ...options, batches: shardedBatches, rank });
 * const parallel = new DataParallel(trainer, { group, gradientGroup });
 * await parallel.run({ stopAfter: 100 });
 */
export class DataParallel {
  readonly group: ProcessGroup;
  readonly reducer: GradReducer;
  readonly syncControl: SyncControl = { enabled: true };

  constructor(
    readonly trainer: AlignTrainer,
    options: DataParallelOptions,
  ) {
    const { group } = options;
    this.group = group;
    if (trainer.device !== 'cpu') {
      throw new RangeError(
        `DataParallel: data-parallel training runs on the CPU (Gloo); the trainer is on ${trainer.device}. Use --device cpu`,
      );
    }
    if (trainer.options.batchSize % group.worldSize !== 0) {
      throw new RangeError(
        `DataParallel: the global batch of ${trainer.options.batchSize} does not split into ${group.worldSize} equal shards; ` +
          `choose a train.batchSize divisible by the number of processes`,
      );
    }
    const sameHostMemory = options.sameHostMemory ?? true;
    if (sameHostMemory) shareCollectiveMemory(group);
    broadcastTrainerState(trainer, group);
    const syncBatchNorm = options.syncBatchNorm ?? true;
    if (syncBatchNorm) convertSyncBatchNorm(trainer.model, group, this.syncControl);
    gatherOutputsOverRanks(trainer.model, group, this.syncControl, syncBatchNorm);
    const trained = [...trainer.model.online.parameters(), ...(trainer.logitScale?.parameters() ?? [])].filter((p) => p.requiresGrad);
    this.reducer = gradientReducer(trained, {
      group,
      gradientGroup: options.gradientGroup ?? group,
      bucketBytes: options.bucketBytes ?? 4 * 2 ** 20,
      sameHost: sameHostMemory,
    });
  }

  get rank(): number {
    return this.group.rank;
  }

  get worldSize(): number {
    return this.group.worldSize;
  }

  /** AlignTrainer.run on every rank; a stop that any rank asks for stops all after the same step. */
  async run(hooks: AlignRunHooks = {}): Promise<AlignStepRecord[]> {
    const shouldStop = (): boolean => {
      const flag = tensor([hooks.shouldStop?.() ? 1 : 0], { dtype: 'int64' });
      const stop = this.group.allReduce(flag, 'max').item() > 0;
      flag.dispose();
      return stop;
    };
    return this.trainer.run({ ...hooks, shouldStop });
  }

  /** The gradient averaging's last backward: what waited at its end, and the buckets. */
  gradientStats(): GradReducerStats {
    return this.reducer.stats();
  }

  /** Takes the gradient hooks off (the model's layers stay converted). */
  close(): void {
    this.reducer.remove();
  }
}

/** The dtypes Gloo carries; others travel as one of these. */
const CARRIED: Partial<Record<DType, DType>> = { bool: 'uint8', bfloat16: 'float32' };

/**
 * Rank 0's trainer state on every rank: the names, shapes and meta as JSON bytes, then the tensors
 * of each dtype flattened into one broadcast.
 */
export function broadcastTrainerState(trainer: AlignTrainer, group: ProcessGroup): void {
  noGrad(() => {
    const root = group.rank === 0;
    const state = root ? trainer.stateDict() : undefined;
    const spec = broadcastJson(group, root ? describeState(state!.tensors, state!.meta) : undefined) as StateSpec;
    const tensors = new Map<string, Tensor>();
    const dtypes = [...new Set(spec.tensors.map((t) => t.dtype))];
    for (const dtype of dtypes) {
      const entries = spec.tensors.filter((t) => t.dtype === dtype);
      const carried = CARRIED[dtype] ?? dtype;
      const numel = entries.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      const flat = root ? cat(entries.map((t) => state!.tensors.get(t.name)!.reshape(-1).to(carried))) : zeros([numel], { dtype: carried });
      group.broadcast(flat, 0);
      if (root) continue;
      let offset = 0;
      for (const t of entries) {
        const size = t.shape.reduce((a, b) => a * b, 1);
        tensors.set(
          t.name,
          flat
            .narrow(0, offset, size)
            .reshape(...t.shape)
            .to(dtype),
        );
        offset += size;
      }
    }
    if (root) {
      for (const t of state!.tensors.values()) t.dispose();
      return;
    }
    trainer.loadStateDict({ tensors, meta: spec.meta });
    for (const t of tensors.values()) t.dispose();
  });
}

interface StateSpec {
  tensors: { name: string; shape: number[]; dtype: DType }[];
  meta: AlignTrainerMeta;
}

function describeState(tensors: ReadonlyMap<string, Tensor>, meta: AlignTrainerMeta): StateSpec {
  return { tensors: [...tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype })), meta };
}

/** A JSON value from rank 0 to every rank: its byte length, then its UTF-8 bytes. */
export function broadcastJson(group: ProcessGroup, value: unknown): unknown {
  const bytes = group.rank === 0 ? Buffer.from(JSON.stringify(value)) : undefined;
  const length = tensor([bytes?.length ?? 0], { dtype: 'int64' });
  group.broadcast(length, 0);
  const payload = bytes ? tensor(new Uint8Array(bytes), { dtype: 'uint8' }) : zeros([length.item()], { dtype: 'uint8' });
  group.broadcast(payload, 0);
  return JSON.parse(Buffer.from(Uint8Array.from(payload.toFlatArray())).toString('utf8'));
}
