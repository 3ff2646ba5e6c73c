// What the byol-align command does, as library functions: train a run directory, load its model,
// evaluate retrieval, embed new data, export for PyTorch; configs and checkpoints. (The report,
// which builds on these, is exported beside them by src/index.ts, so that run/ does not import report/.)
export { train, configDifferences, type TrainRunOptions, type TrainRunResult, type TrainProgress } from './train_run.js';
export {
  loadModel,
  loadModelWithPlugins,
  fitModalities,
  restoreModalities,
  buildModel,
  lossWeights,
  trainOptions,
  type LoadedModel,
} from './model_setup.js';
export { evaluatePaired, evaluatePaired as evaluate, type PairedEvalOptions } from './evaluate_run.js';
export { resolveDevice, libtorchDescription, type DeviceSetting } from './device.js';
export { embedInputs, embedInputs as embed, readEmbedInputs, EmbedInputError, type EmbedInputs } from './embed_run.js';
export { writeEmbeddings, jsonlText, npyBytes } from './embedding_files.js';
export { exportModel, EXPORT_FORMAT } from './export_run.js';
export {
  loadCheckpoint,
  resolveCheckpoint,
  saveCheckpoint,
  listCheckpoints,
  checkpointName,
  writeFileAtomic,
  CheckpointError,
  CHECKPOINT_FORMAT,
  type Checkpoint,
  type CheckpointMeta,
} from './checkpoint.js';
export {
  resolveConfig,
  resolveConfigWithPlugins,
  importPlugins,
  parseConfig,
  readConfigFile,
  parseOverride,
  ConfigError,
  type ConfigSources,
} from '../config/load.js';
export { configSchema, type Config, type ConfigInput } from '../config/schema.js';
export { PRESETS, type PresetName } from '../config/presets.js';
export { ALIGNMENT_OBJECTIVES, type ObjectiveName } from '../config/objectives.js';
export { configReference } from '../config/docs.js';
export { loadDataSource, type DataSourceOptions } from '../data/source.js';
