// Heterogeneous alignment: the model, its losses, the trainer and retrieval evaluation.
export * from './model.js';
export * from './network.js';
export * from './loss.js';
export * from './infonce.js';
export * from './train.js';
export * from './evaluate.js';
export * from './batches.js';
