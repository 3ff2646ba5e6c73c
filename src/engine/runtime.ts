// Process-wide settings: seeds, random generators, threads and devices.
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
