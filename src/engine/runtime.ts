// Process-wide settings: seeds, random generators, threads and devices.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { native, type GeneratorHandle } from './native.js';

/**
 * Seeds libtorch's global generators (CPU and every CUDA device), as torch.manual_seed: an
 * integer from −2^63 to 2^64 − 1 (a BigInt beyond 2^53), negatives taken modulo 2^64. Anything
 * else (1.5, NaN, a BigInt that does not fit) is a RangeError, never rounded.
 */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}

/**
 * An independent random stream: pass it to rand/randn/randint/randperm so a component (data order,
 * augmentations) is reproducible without touching the global stream.
 *
 * @example
 * const g = new Generator(42);
 * const a = randn([3], { generator: g });
 */
export class Generator {
  readonly generatorHandle: GeneratorHandle;
  constructor(
    readonly seed: number,
    readonly device = 'cpu',
  ) {
    this.generatorHandle = native.createGenerator(seed, device);
  }
}

/** Sets how many threads libtorch's intra-op parallelism uses (the default is every core). */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** What the CPU block cache has done so far (cacheCpuBlocks). */
export interface CpuBlockCacheStats {
  /** Requests served by a cached block. */
  hits: number;
  /** Requests of 256 KiB or more that found none and were allocated afresh. */
  misses: number;
  /** Freed bytes the cache holds now. */
  cachedBytes: number;
}

/**
 * Keeps freed CPU tensor blocks of 256 KiB and more, up to `limitBytes` of them (default a
 * quarter of the machine's memory), for the next tensor of about their size, as PyTorch's caching
 * allocator does on CUDA (native/cpu_block_cache.cc). Training calls it: a step frees and
 * allocates the same large activations every step, and glibc returns large blocks to the system,
 * so each came back as page faults (the kernel zeroes every page again, with the step's threads
 * queueing on the process's memory map): about 150,000 faults per alignment step. The cost: the
 * process keeps up to the limit of freed memory. Process-wide; 0 turns caching off and frees what
 * is cached. Returns what the cache has done so far.
 *
 * @example
 * cacheCpuBlocks();                 // training: keep freed blocks
 * cacheCpuBlocks(0);                // give them back
 */
export function cacheCpuBlocks(limitBytes = Math.floor(os.totalmem() / 4)): CpuBlockCacheStats {
  const [hits, misses, cachedBytes] = native.cacheCpuBlocks(limitBytes);
  return { hits, misses, cachedBytes };
}

/**
 * Whether this CPU has bfloat16 arithmetic (AVX-512 BF16 or AMX), from Linux's /proc/cpuinfo; false
 * where that file is absent. With it, libtorch's bfloat16 product of a batch of queries with an
 * index's rows took about 0.7 of float32's time here (bench/index_recall.ts); without it the
 * product is emulated, which was not measured, so callers keep float32 there.
 */
export function cpuHasBf16(): boolean {
  let info: string;
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return false;
  }
  return /^flags\s*:.*\b(avx512_bf16|amx_bf16)\b/m.test(info);
}

/** The version of the libtorch the addon was built against. */
export const libtorchVersion: string = native.libtorchVersion;

export const cuda = {
  /** Whether the linked libtorch has CUDA and a GPU is visible. */
  isAvailable(): boolean {
    return native.cudaDeviceCount() > 0;
  },
  deviceCount(): number {
    return native.cudaDeviceCount();
  },
};

// Default: every core. libtorch's own default depends on how it was built (Debian's OpenMP build
// starts at 1 here), so it is set explicitly once, unless the user chose through OMP_NUM_THREADS.
if (process.env.OMP_NUM_THREADS === undefined) native.setNumThreads(os.availableParallelism());
