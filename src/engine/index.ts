// The engine's public surface: tensors, creation, autograd scopes, memory scopes, runtime.
export { Tensor, type Device, type Dims, type NestedArray, type TensorOrNumber, type ValuesIndices } from './tensor.js';
export type { DType, TypedArray } from './dtype.js';
export * from './create.js';
export { noGrad, enableGrad, isGradEnabled } from './autograd.js';
export { autocast, autocastState, type AutocastDType, type AutocastState } from './autocast.js';
export { tidy, keep, dispose, release } from './scope.js';
export {
  manualSeed,
  Generator,
  setNumThreads,
  getNumThreads,
  cuda,
  libtorchVersion,
  cacheCpuBlocks,
  cpuHasBf16,
  type CpuBlockCacheStats,
} from './runtime.js';
export { op, type Op } from './op.js';
export * as F from './functional.js';
export * as distributed from './distributed.js';
export {
  saveSafetensors,
  loadSafetensors,
  serializeSafetensors,
  parseSafetensors,
  SafetensorsError,
  type TensorDict,
  type SafetensorsContents,
} from './safetensors.js';
