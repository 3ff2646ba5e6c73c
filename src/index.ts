// byol-align's public API.
export * from './engine/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as align from './align/index.js';
// Data-parallel training over the engine's process groups (docs/distributed.md).
export * as dataParallel from './distributed/index.js';
export * from './modalities/modality.js';
export * from './modalities/registry.js';
// The command's functions (train, loadModel, evaluate, embed, exportModel, buildReport), configs and checkpoints.
export * from './run/index.js';
export { buildReport, svgToPng, type ReportOptions } from './report/report.js';
// Search indexes over a trained model's space (byol-align index / search / serve).
export * as search from './index/index.js';
export { buildServer, type ServerOptions } from './serve/server.js';
