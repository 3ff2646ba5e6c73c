// Shared memory in place of Gloo for data-parallel ranks that all run on this machine (same host,
// boot, mount and PID namespaces): on one machine Gloo sends every collective through loopback TCP
// on helper threads that take the CPU from the ranks themselves (bench/RESULTS.md, issue 15). Two
// uses, each a segment of its own (native/same_host_memory.cc):
//   - the gradient buckets: each rank sums its share of every bucket on its own thread;
//   - a group's blocking all-gathers and all-reduces (synchronised BatchNorm's statistics, the
//     gathered outputs, the stop all-reduce): each rank reads all ranks' tensors itself.
// The ranks agree on each over `group`; a segment that cannot be made (e.g. a /dev/shm too small)
// leaves all ranks on Gloo for that use.
import { createHash, randomInt } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { tensor, type Tensor } from '../engine/index.js';
import { GradReducer, unlinkSharedMemory, type ProcessGroup } from '../engine/distributed.js';

/**
 * The largest tensor a group's shared memory carries (larger ones go through Gloo): 2 MiB holds
 * every collective of the default configuration's step, the largest being the gathered outputs'
 * backward ([256, 2048] float32). Two ranks then use 8 MiB of /dev/shm for it, and 54 MiB for the
 * default model's gradients: together under the 64 MiB a container gets by default.
 */
export const COLLECTIVE_CAPACITY_BYTES = 2 * 2 ** 20;

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
  let shared: GradReducer | null = null;
  const opened =
    options.sameHost !== false &&
    openOnEveryRank(group, (name, create) => {
      shared = new GradReducer(gradientGroup, params, { bucketBytes, sharedMemory: { name, create } });
    });
  if (opened) return shared!;
  (shared as GradReducer | null)?.remove();
  return new GradReducer(gradientGroup, params, { bucketBytes });
}

/**
 * Makes `group`'s blocking all-gathers and all-reduces go through shared memory where all its ranks
 * run on this machine; returns whether they do. Every rank calls it together.
 *
 * @example
 * shareCollectiveMemory(group); // true on one machine
 */
export function shareCollectiveMemory(group: ProcessGroup): boolean {
  const opened = openOnEveryRank(group, (name, create) => group.shareMemory({ name, create }, COLLECTIVE_CAPACITY_BYTES));
  if (!opened) group.shareMemory(null);
  return opened;
}

/**
 * Rank 0 makes a segment (`open(name, true)`) and broadcasts its name; the others open it
 * (`open(name, false)`); then its name is unlinked, so that none is left in /dev/shm however the
 * ranks end. True where every rank is on this machine and every `open` succeeded.
 */
function openOnEveryRank(group: ProcessGroup, open: (name: string, create: boolean) => void): boolean {
  if (group.worldSize === 1 || !allRanks(group, sameMachineKey())) return false;
  const tryOpen = (name: string): number => {
    try {
      open(name, group.rank === 0);
      return 1;
    } catch {
      return 0;
    }
  };
  const nameOf = (pid: number, nonce: number): string => `/byol-align-${pid}-${nonce.toString(16)}`;
  const nonce = randomInt(2 ** 40);
  const created = group.rank === 0 ? tryOpen(nameOf(process.pid, nonce)) : 0;
  const made = tensor(group.rank === 0 ? [process.pid, nonce, created] : [0, 0, 0], { dtype: 'int64' });
  group.broadcast(made, 0);
  const [pid, madeNonce, madeThere] = made.toFlatArray() as number[];
  made.dispose();
  if (madeThere === 0) return false;
  const name = nameOf(pid!, madeNonce!);
  const here = group.rank === 0 ? created : tryOpen(name);
  const everyRank = allRanks(group, here);
  if (group.rank === 0) unlinkSharedMemory(name);
  return everyRank;
}

/**
 * True on every rank when every rank passed the same non-zero number. Through broadcasts, which
 * always go through Gloo: the agreement holds while a group's shared memory is open on some ranks
 * and not on others.
 */
function allRanks(group: ProcessGroup, value: number): boolean {
  let same = value !== 0;
  for (let root = 0; root < group.worldSize; root++) {
    const theirs = tensor([value], { dtype: 'int64' });
    group.broadcast(theirs, root);
    same &&= theirs.item() === value;
    theirs.dispose();
  }
  return same;
}

/**
 * A number that processes share when they can share memory and see each other's PIDs: a hash of
 * the host name, boot id and mount and PID namespaces (0 where one cannot be read, or where
 * BYOL_ALIGN_SHM_DISABLE=1 asks for Gloo alone, as NCCL_SHM_DISABLE does for NCCL). Two ranks in
 * different network namespaces (`ip netns exec` also gives a mount namespace) get different ones.
 */
function sameMachineKey(): number {
  if (process.env.BYOL_ALIGN_SHM_DISABLE === '1') return 0;
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
