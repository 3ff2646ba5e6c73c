// The compiled addon (native/*.cc), loaded once. Everything above this file speaks Tensor;
// only engine/ touches raw handles.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** An opaque libtorch tensor owned by the addon. */
export type Handle = { readonly __handle: unique symbol };
/** An opaque libtorch generator owned by the addon. */
export type GeneratorHandle = { readonly __generator: unique symbol };

/** Opaque handles of torch.distributed's objects (native/distributed.cc). */
export type StoreHandle = { readonly __store: unique symbol };
export type GroupHandle = { readonly __group: unique symbol };
export type WorkHandle = { readonly __work: unique symbol };
export type ReducerHandle = { readonly __reducer: unique symbol };

/** Autocast's thread-local state for one device type: [enabled, dtype code, cache enabled]. */
export type AutocastNativeState = [boolean, number, boolean];

export interface NativeAddon {
  fromBuffer(data: ArrayBufferView, shape: number[], dtypeCode: number): Handle;
  toBuffer(t: Handle): ArrayBuffer;
  meta(t: Handle): [number[], number, string, boolean];
  isContiguous(t: Handle): boolean;
  dispose(t: Handle): void;
  isDisposed(t: Handle): boolean;
  reportMemory(t: Handle): void;
  dataPtr(t: Handle): number;
  opHandle(name: string, overload: string): number;
  callOp(index: number, args: unknown[], discardResult?: boolean): unknown;
  schemaOf(index: number): string;
  grad(t: Handle): Handle | null;
  setGrad(t: Handle, g: Handle | null): void;
  requiresGrad(t: Handle): boolean;
  isLeaf(t: Handle): boolean;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  manualSeed(seed: number | bigint): void;
  createGenerator(seed: number, device: string): GeneratorHandle;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaDeviceCount(): number;
  cacheCpuBlocks(limitBytes: number): [number, number, number];
  libtorchVersion: string;
  autocastState(deviceType: 'cpu' | 'cuda'): AutocastNativeState;
  autocastEnter(deviceType: 'cpu' | 'cuda', dtypeCode: number): AutocastNativeState;
  autocastExit(deviceType: 'cpu' | 'cuda', enabled: boolean, dtypeCode: number, cacheEnabled: boolean): void;
  /** '' where torch.distributed's Gloo backend was compiled in; otherwise why it was not. */
  distSupport: string;
  distStore(
    host: string,
    port: number,
    isServer: boolean,
    worldSize: number | null,
    timeoutMs: number,
    prefix: string,
  ): [StoreHandle, number];
  distStoreSet(store: StoreHandle, key: string, value: string): void;
  distStoreGet(store: StoreHandle, key: string): string;
  distStoreAdd(store: StoreHandle, key: string, delta: number): number;
  distGroup(
    store: StoreHandle,
    rank: number,
    size: number,
    timeoutMs: number,
    name: string,
    iface: string | null,
    hostname: string | null,
    threads: number,
  ): GroupHandle;
  distDestroyGroup(group: GroupHandle): void;
  distAllReduce(group: GroupHandle, t: Handle, op: string, async: boolean): WorkHandle | undefined;
  distBroadcast(group: GroupHandle, t: Handle, root: number, async: boolean): WorkHandle | undefined;
  distWait(work: WorkHandle, timeoutMs?: number): void;
  distIsCompleted(work: WorkHandle): boolean;
  distAllGather(group: GroupHandle, t: Handle, withGrad: boolean): Handle;
  distBarrier(group: GroupHandle): void;
  distSyncBatchNorm(
    group: GroupHandle,
    layers: {
      input: Handle;
      weight: Handle | null;
      bias: Handle | null;
      runningMean: Handle | null;
      runningVar: Handle | null;
      momentum: number;
      eps: number;
    }[],
  ): Handle[];
  distReducer(group: GroupHandle, params: Handle[], bucketBytes: number, sharedName?: string, create?: boolean): ReducerHandle;
  distUnlinkShared(name: string): void;
  distGroupShareMemory(group: GroupHandle, name: string, create: boolean, capacityBytes: number): void;
  distGroupSharesMemory(group: GroupHandle): boolean;
  distReducerSetEnabled(reducer: ReducerHandle, enabled: boolean): void;
  distReducerStats(reducer: ReducerHandle): [number[], number, number, number, 'gloo' | 'shared-memory'];
  distReducerRemove(reducer: ReducerHandle): void;
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  // dist/src/engine/native.js and src/engine/native.ts both sit three or four levels below the root.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'build', 'Release', 'byol_align_native.node');
    if (existsSync(candidate)) return require(candidate) as NativeAddon;
    dir = path.dirname(dir);
  }
  throw new Error(
    'byol-align: the native addon is not built (build/Release/byol_align_native.node is missing). ' +
      'Install libtorch (`apt-get install libtorch-dev`) and run `npm ci` or `npm run install` in the package.',
  );
}

export const native: NativeAddon = load();
