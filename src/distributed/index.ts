// Data-parallel training of the aligner (docs/distributed.md): the wrapper around AlignTrainer, its
// synchronised BatchNorm and gathered outputs, and joining a job from a launcher's environment.
export { DataParallel, broadcastTrainerState, type DataParallelOptions } from './data_parallel.js';
export { convertSyncBatchNorm, type SyncControl } from './sync_batch_norm.js';
export { gatherOutputsOverRanks } from './global_outputs.js';
export {
  joinTraining,
  launchEnvironment,
  threadsPerProcess,
  LaunchEnvironmentError,
  type LaunchEnvironment,
  type TrainingGroups,
} from './join.js';
export { launchLocal, type LocalLaunchOptions } from './launch_local.js';
