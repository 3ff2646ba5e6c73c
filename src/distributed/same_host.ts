// Gradient averaging for data-parallel training: through a shared-memory segment when every rank
// runs on this machine (same host, boot, mount and PID namespaces), through Gloo otherwise. On one
// machine Gloo's all-reduce sends the gradients through loopback TCP on helper threads that take
// the CPU from the ranks themselves; the shared segment has each rank sum its share on its own
// thread (native/same_host_memory.cc, bench/RESULTS.md). The ranks agree on the choice over
// `group`; a segment that cannot be made (e.g. a /dev/shm too small) falls back to Gloo on all.
import { createHash, randomInt } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { tensor, type Tensor } from '../engine/index.js';
import { GradReducer, unlinkSharedMemory, type ProcessGroup } from '../engine/distributed.js';

export interface GradientAveragingOptions {
  /** The collectives that agree on the choice (every rank calls this together). */
  group: ProcessGroup;
  /** The group whose ranks average (Gloo's all-reduces run on it). */
  gradientGroup: ProcessGroup;
  bucketBytes: number;
  /** Use shared memory where all ranks are on this machine (default true). */
  sameHost?: boolean;
}

/**
 * @example
 * const reducer = gradientReducer(trained, { group, gradientGroup, bucketBytes: 4 * 2 ** 20 });
 * reducer.stats().transport; // 'shared-memory' when every rank runs here
 */
export function gradientReducer(params: readonly Tensor[], options: GradientAveragingOptions): GradReducer {
  const { group, gradientGroup, bucketBytes } = options;
  const viaGloo = (): GradReducer => new GradReducer(gradientGroup, params, { bucketBytes });
  if (group.worldSize === 1 || options.sameHost === false || !allRanks(group, sameMachineKey())) return viaGloo();
  // Rank 0 makes the segment and broadcasts its name; the others open it; then it is unlinked, so
  // that no name is left behind in /dev/shm however the ranks end.
  let reducer: GradReducer | null = null;
  const open = (name: string): void => {
    try {
      reducer = new GradReducer(gradientGroup, params, { bucketBytes, sharedMemory: { name, create: group.rank === 0 } });
    } catch {
      reducer = null;
    }
  };
  const nameOf = (pid: number, nonce: number): string => `/byol-align-${pid}-${nonce.toString(16)}`;
  const nonce = randomInt(2 ** 40);
  if (group.rank === 0) open(nameOf(process.pid, nonce));
  const made = tensor(group.rank === 0 ? [process.pid, nonce, reducer === null ? 0 : 1] : [0, 0, 0], { dtype: 'int64' });
  group.broadcast(made, 0);
  const [pid, madeNonce, created] = made.toFlatArray() as number[];
  made.dispose();
  if (created === 0) return viaGloo();
  if (group.rank !== 0) open(nameOf(pid!, madeNonce!));
  const opened = allRanks(group, reducer === null ? 0 : 1);
  if (group.rank === 0) unlinkSharedMemory(nameOf(pid!, madeNonce!));
  if (opened) return reducer!;
  (reducer as GradReducer | null)?.remove();
  return viaGloo();
}

/** True on every rank when every rank passed the same number (max = min over the group). */
function allRanks(group: ProcessGroup, value: number): boolean {
  const min = tensor([value], { dtype: 'int64' });
  const max = tensor([value], { dtype: 'int64' });
  group.allReduce(min, 'min');
  group.allReduce(max, 'max');
  const same = min.item() === max.item() && min.item() !== 0;
  min.dispose();
  max.dispose();
  return same;
}

/**
 * A number that processes share when they can share memory and see each other's PIDs: a hash of
 * the host name, boot id and mount and PID namespaces (0 where one cannot be read). Two ranks in
 * different network namespaces (`ip netns exec` also gives a mount namespace) get different ones.
 */
function sameMachineKey(): number {
  try {
    const identity = [
      hostname(),
      readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      readlinkSync('/proc/self/ns/mnt'),
      readlinkSync('/proc/self/ns/pid'),
    ].join('\n');
    // 6 bytes: an integer that int64 and a JS number both hold exactly; never 0.
    return createHash('sha256').update(identity).digest().readUIntBE(0, 6) || 1;
  } catch {
    return 0;
  }
}
