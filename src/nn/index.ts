// byol-align's neural-network layer: the Module base, PyTorch-compatible layers and initialisers.
export { Module, type StateDict } from './module.js';
export { Linear, type LinearOptions } from './linear.js';
export { Conv2d, type Conv2dOptions, type Size2d } from './conv.js';
export {
  BatchNorm,
  BatchNorm1d,
  BatchNorm2d,
  batchNormTogether,
  type BatchNormCall,
  type BatchNormOptions,
  type BatchNormTogether,
} from './batch_norm.js';
export { LayerNorm, type LayerNormOptions } from './layer_norm.js';
export { GroupNorm, type GroupNormOptions } from './group_norm.js';
export { Embedding, type EmbeddingOptions } from './embedding.js';
export { Dropout } from './dropout.js';
export { ReLU, GELU, SiLU, Tanh, Sigmoid } from './activation.js';
export { Flatten } from './flatten.js';
export { Identity } from './identity.js';
export { Sequential, type TensorModule } from './sequential.js';
export {
  MultiheadAttention,
  type MultiheadAttentionOptions,
  type AttentionMasks,
  type AttentionForwardOptions,
  type AttentionWithWeights,
} from './attention.js';
export {
  TransformerEncoderLayer,
  encodeFused,
  type TransformerEncoderLayerOptions,
  type TransformerEncoderLayerMasks,
  type Activation,
} from './transformer.js';
export * as init from './init.js';
