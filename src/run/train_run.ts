// A training run in a directory: what `byol-align train` does, as a library function.
//
//   RUN_DIR/byol-align-run.json  the marker of a run folder (src/run/run_dir.ts)
//   RUN_DIR/config.json        the validated config (every default filled in, data paths absolute)
//   RUN_DIR/modalities.json    the modalities' specs, RUN_DIR/tokenizer.json the text tokenizer
//   RUN_DIR/metrics.jsonl      one line per step ({"step", "epoch", "loss", terms, lr, tau, ...}) and
//                              one per validated epoch ({"epoch", "space", "val": {i2t, t2i, rsum}
//                              (image–text), "directions" (every pair of modalities, both ways),
//                              "rsum" (over the directions), "rsumBySpace"}); steps and epochs count from 1 everywhere: step N
//                              is the Nth step, whose checkpoint is step-00000000N
//   RUN_DIR/check-samples/     a few training items, the self-check of `export`
//   RUN_DIR/checkpoints/step-NNNNNNNNN.safetensors   every train.checkpointEvery steps and at the end
//
// resume continues from the newest checkpoint that verifies, exactly (AlignTrainer), with the
// checkpoint's config when none is given, and refuses a config that differs (but for train.threads,
// train.device and train.precision: a run may continue on another machine, from its
// device-independent float32 checkpoint, and the message says when it moved). A run directory that already holds checkpoints is never
// trained over without resume, so no checkpoint is lost by a repeated command; a folder that is
// not a run is not written into without force. The run's files
// are written once the first step has trained, so bad data found while starting leaves no files.
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../engine/index.js';
import { loadDataSource } from '../data/source.js';
import { holdOutByConcept } from '../data/holdout.js';
import { ManifestLoader } from '../data/manifest_loader.js';
import type { PairedDataset } from '../data/paired.js';
import { manifestBatches } from '../align/batches.js';
import { AlignTrainer, NonFiniteLossError, type AlignStepRecord, type AlignTrainerMeta } from '../align/train.js';
import type { Modality } from '../modalities/modality.js';
import { modalityFactory } from '../modalities/registry.js';
import type { Config } from '../config/schema.js';
import { ConfigError, parseConfig } from '../config/load.js';
import type { RetrievalSpace } from '../align/evaluate.js';
import { listCheckpoints, resolveCheckpoint, saveCheckpoint, writeFileAtomic, type Checkpoint } from './checkpoint.js';
import {
  buildModel,
  defaultRetrievalSpace,
  encoderSpaceComparable,
  fitModalities,
  restoreModalities,
  runDataOptions,
  trainOptions,
} from './model_setup.js';
import type { EpochLine } from '../report/metrics.js';
import { evaluatePaired } from './evaluate_run.js';
import { sampleCheckItems, saveCheckSamples } from './check_samples.js';
import { checkRunDir, withAbsoluteDataPaths, writeRunFolder } from './run_dir.js';
import { resolveDevice } from './device.js';
import { DataParallel } from '../distributed/data_parallel.js';
import type { TrainingGroups } from '../distributed/join.js';
import { resolvePrecision } from './precision.js';
import { initModalitySpec, initModelFrom, readInitSource } from './init_from.js';
import { planFeatureCache } from './feature_cache_run.js';
import { ccaTrainRun } from './cca_run.js';

export interface TrainRunOptions {
  /** The run's config; with `resume` it may be left out, and the checkpoint's is used. */
  config?: Config;
  /** The run directory (created if missing). */
  out: string;
  /** Continue from the newest good checkpoint in `out`. */
  resume?: boolean;
  /** Write into a non-empty folder that is not a byol-align run. */
  force?: boolean;
  /** libtorch threads for this invocation (may differ from the run's train.threads on resume). */
  threads?: number;
  /** The device for this invocation: auto, cpu, cuda or cuda:N (default the config's train.device; may differ from it on resume). */
  device?: string;
  /** The forward pass's precision for this invocation: fp32, bf16 or fp16 (default the config's train.precision; may differ from it on resume). */
  precision?: string;
  /** End this invocation after this many steps, with a checkpoint; the schedules stay the full run's. */
  stopAfter?: number;
  /** Checked after every step; true ends the run there with a checkpoint (SIGINT, SIGTERM). */
  shouldStop?: () => boolean;
  /** Each step's record and where training stands, e.g. for a progress bar. */
  onStep?: (record: AlignStepRecord, progress: TrainProgress) => void;
  /**
   * Data-parallel training over these process groups (src/distributed/, docs/distributed.md): this
   * process trains its shard of every batch, and only rank 0 writes the run (files, metrics,
   * checkpoints, validation).
   */
  distributed?: Pick<TrainingGroups, 'rank' | 'worldSize' | 'group' | 'gradientGroup'>;
  /** Messages for the user: skipped records, skipped broken checkpoints, validation results. */
  onMessage?: (message: string) => void;
}

export interface TrainProgress {
  /** The step just trained, from 1. */
  step: number;
  totalSteps: number;
  /** Its epoch, from 1. */
  epoch: number;
  epochs: number;
  /** Items per second over this step (data wait included). */
  itemsPerSecond: number;
}

export interface TrainRunResult {
  /** Steps trained in total (this invocation and earlier ones). */
  step: number;
  totalSteps: number;
  /** The whole schedule is done (not stopped early). */
  finished: boolean;
  /** The checkpoint written last. */
  checkpoint: string;
}

/** Keys a resumed run may change: where and in what precision it runs, not what it trains. */
const RESUME_MAY_CHANGE: readonly string[] = ['train.threads', 'train.device', 'train.precision'];

/** Keys (dotted) whose values differ between two configs; train.threads, train.device and train.precision may differ on resume. */
export function configDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDifferences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${prefix}${k}.`));
  }
  const key = prefix.slice(0, -1);
  return JSON.stringify(a) === JSON.stringify(b) || RESUME_MAY_CHANGE.includes(key) ? [] : [key];
}

/**
 * Keeps the metrics lines of the steps (and validated epochs) up to `step`; a resumed run writes
 * the later ones again. A torn last line (a crash during its write) is dropped with a message; a
 * broken line before it is an error naming the file and line.
 */
function truncateMetrics(file: string, step: number, stepsPerEpoch: number, say: (message: string) => void): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, 'utf8').split('\n');
  const kept: string[] = [];
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let entry: { step?: number; epoch: number };
    try {
      entry = JSON.parse(line) as { step?: number; epoch: number };
    } catch {
      const last = lines.slice(index + 1).every((l) => l.trim() === '');
      if (!last) throw new Error(`train: ${file}:${index + 1}: not a JSON line; the metrics file is damaged`);
      say(`${file}:${index + 1}: dropped a torn last line (the previous run ended during its write)`);
      continue;
    }
    if (entry.step !== undefined ? entry.step <= step : entry.epoch * stepsPerEpoch <= step) kept.push(line);
  }
  writeFileAtomic(file, Buffer.from(kept.map((l) => `${l}\n`).join('')));
}

/** Flushes a file to disk, so that a checkpoint never stands for metrics that a power loss took. */
function fsyncFile(file: string): void {
  if (!existsSync(file)) return;
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Trains (or resumes) the run in `options.out`.
 *
 * @example
 * const config = resolveConfig({ preset: 'cpu-small', flags: { data: { train: 'coco:captions.json', images: 'images' } } });
 * const result = await train({ config, out: 'runs/icons', onStep: (r, p) => console.log(p.step, r.loss) });
 */
export async function train(options: TrainRunOptions): Promise<TrainRunResult> {
  const { out, distributed } = options;
  const writes = (distributed?.rank ?? 0) === 0;
  const say = options.onMessage ?? (() => {});
  const checkpointDir = join(out, 'checkpoints');
  if (!options.resume && listCheckpoints(checkpointDir).length > 0) {
    throw new Error(`train: ${out} already holds checkpoints; pass --resume to continue that run, or choose another --out`);
  }
  if (!options.resume) checkRunDir(out, options.force ?? false);
  const checkpoint = options.resume ? resolveCheckpoint(out, (err) => say(`skipping a broken checkpoint: ${err.message}`)) : undefined;
  const resumed = resumedConfig(options.config, checkpoint);
  // Before any data is read: asking for a GPU this libtorch lacks is a ConfigError at once.
  // --device, else the config given (which may set train.device on resume too), else the saved one.
  const device = resolveDevice(
    options.device ?? (options.config ?? resumed).train.device,
    options.device === undefined ? 'train.device' : '--device',
  );
  // fp16 where there is no CUDA is refused here too, before any data is read.
  const precision = resolvePrecision(
    options.precision ?? (options.config ?? resumed).train.precision,
    device,
    options.precision === undefined ? 'train.precision' : '--precision',
  );
  // A new run's config records the device asked for; a resumed run keeps its config, and each
  // checkpoint records the device that trained it.
  const config =
    checkpoint === undefined && options.device !== undefined
      ? { ...resumed, train: { ...resumed.train, device: options.device } }
      : resumed;
  if (config.data.train === undefined) throw new ConfigError('train: no training data; give --data (or data.train in the config)');
  const threads = options.threads ?? config.train.threads;
  if (threads !== undefined) setNumThreads(threads);

  const readOptions = { ...runDataOptions(config), onSkip: (e: Error) => say(`skipped: ${e.message}`) };
  const allTraining = loadDataSource(config.data.train, { ...readOptions, images: config.data.images, defaultSplit: 'train' });
  const heldOut =
    config.data.val === undefined && config.data.valFraction > 0 ? holdOutByConcept(allTraining, config.data.valFraction) : undefined;
  const dataset = heldOut?.train ?? allTraining;
  // train.initFrom: a new run's towers (and tokenizer) from another run; a resumed run has its own.
  const init = checkpoint === undefined && config.train.initFrom !== undefined ? readInitSource(config.train.initFrom, say) : undefined;
  const modalities: Modality[] = checkpoint
    ? restoreModalities(checkpoint.modalities)
    : await fitModalities(config, dataset.items, (name) => init && initModalitySpec(config, init, name));
  const model = buildModel(config, modalities);
  if (init) say(`initialised ${initModelFrom(model, init, config.train.initHeads).join(', ')} from ${init.checkpoint.file}`);
  const others = modalities.filter((m) => m.name !== 'image').map((m) => modalityFactory(m.name).rawItems);
  // Towers frozen whole with views off train on their cached features (feature_cache_run.ts).
  const featureCache = planFeatureCache(config, model, modalities, dataset, { out, beforeWrite: () => writeRunFiles(), onMessage: say });
  const loader = new ManifestLoader(featureCache?.source.dataset ?? dataset, {
    batchSize: config.train.batchSize,
    size: config.image.size,
    channels: config.image.channels,
    fit: config.image.fit,
    seed: config.train.seed,
    onBadRecord: config.data.onBadRecord,
    onSkip: readOptions.onSkip,
    hasOtherModality: featureCache?.source.hasOtherModality ?? ((item) => others.some((rawItems) => rawItems(item).length > 0)),
    ...(distributed ? { shard: { rank: distributed.rank, worldSize: distributed.worldSize } } : {}),
  });
  if (loader.batchesPerEpoch === 0) {
    throw new Error(`train: ${dataset.items.length} items make no batch of ${config.train.batchSize}; lower train.batchSize`);
  }
  const valSet: PairedDataset | undefined =
    config.data.val === undefined
      ? heldOut?.val
      : loadDataSource(config.data.val, { ...readOptions, images: config.data.valImages ?? config.data.images, defaultSplit: 'val' });
  if (heldOut)
    say(`validation: ${heldOut.val.items.length} items of ${config.data.valFraction} of the training concepts, held out of training`);
  // loss.objective cca trains nothing: closed-form heads on the frozen towers' features (cca_run.ts).
  if (config.loss.objective === 'cca') {
    await loader.close();
    if (distributed) throw new ConfigError('train: loss.objective cca is solved in closed form, in one process; leave out --nproc');
    return ccaTrainRun({ config, out, model, modalities, dataset, valSet, device, say, resumed: checkpoint?.file });
  }

  const metricsFile = join(out, 'metrics.jsonl');
  const trainerOptions = trainOptions(
    config,
    modalities,
    (epoch, fromStep) => featureCache?.batches(loader, epoch, fromStep) ?? manifestBatches(loader, modalities, epoch, fromStep),
    loader.batchesPerEpoch,
  );
  trainerOptions.device = device;
  trainerOptions.precision = precision;
  trainerOptions.rank = distributed?.rank;
  if (config.train.steps !== undefined && config.train.epochs !== undefined) {
    say(`train.steps=${config.train.steps} sets the length; train.epochs=${config.train.epochs} is ignored`);
  }
  // The space retrieval is best in, measured at each validation (the encoder space only where its
  // widths match); without validation data, defaultRetrievalSpace.
  let retrievalSpace: RetrievalSpace =
    (checkpoint?.retrievalSpace as RetrievalSpace | undefined) ?? defaultRetrievalSpace(config, modalities);
  const encoderComparable = encoderSpaceComparable(config, modalities);
  trainerOptions.onEpoch = async (epoch) => {
    if (valSet === undefined || !writes) return;
    const spaces: RetrievalSpace[] = encoderComparable ? ['projection', 'encoder'] : ['projection'];
    const [projection, encoder] = await evaluatePaired(model, modalities, valSet, {
      size: config.image.size,
      channels: config.image.channels,
      fit: config.image.fit,
      spaces,
    });
    // rsum sums every direction measured: image ↔ text alone, or all six with a third modality.
    retrievalSpace = encoder !== undefined && encoder.rsum >= projection!.rsum ? 'encoder' : 'projection';
    const best = retrievalSpace === 'encoder' ? encoder! : projection!;
    const rsumBySpace = { projection: projection!.rsum, ...(encoder === undefined ? {} : { encoder: encoder.rsum }) };
    const epochLine: EpochLine = {
      epoch: epoch + 1,
      space: retrievalSpace,
      ...(best.metrics ? { val: best.metrics, chance: best.chance } : {}),
      rsum: best.rsum,
      chanceRsum: best.chanceRsum,
      directions: best.directions,
      rsumBySpace,
    };
    appendFileSync(metricsFile, `${JSON.stringify(epochLine)}\n`);
    say(
      `epoch ${epoch + 1} validation: rsum ${best.rsum.toFixed(2)} in the ${retrievalSpace} space ` +
        `(${Object.entries(rsumBySpace)
          .map(([space, rsum]) => `${space} ${rsum.toFixed(2)}`)
          .join(', ')}; chance ${best.chanceRsum.toFixed(2)})`,
    );
  };
  const trainer = new AlignTrainer(model, trainerOptions);
  // The run's files are written when the first step has trained (or a checkpoint is due), so that
  // data that fails while starting leaves nothing behind.
  let runFilesWritten = checkpoint !== undefined;
  const writeRunFiles = (): void => {
    if (runFilesWritten || !writes) return;
    runFilesWritten = true;
    writeRunFolder(out, config, modalities);
  };
  if (checkpoint) {
    trainer.loadStateDict({ tensors: checkpoint.tensors, meta: checkpoint.trainer as AlignTrainerMeta });
    for (const t of checkpoint.tensors.values()) t.dispose();
    if (writes) truncateMetrics(metricsFile, trainer.step, loader.batchesPerEpoch, say);
    // Checkpoints from before devices were all trained on the CPU.
    const trainedOn = checkpoint.device ?? 'cpu';
    const moved =
      trainedOn === device
        ? ''
        : `; trained on ${trainedOn} so far: the state carries over exactly, the steps from here differ from ${trainedOn}'s (other random views, other rounding)`;
    say(`resuming ${checkpoint.file} at step ${trainer.step} of ${trainer.totalSteps} on ${device}${moved}`);
  }

  let checkSamplesSaved = checkpoint !== undefined;
  let lastCheckpoint = checkpoint?.file ?? '';
  let lastSaved = trainer.step;
  const save = (): void => {
    if (!writes) {
      lastSaved = trainer.step;
      return;
    }
    writeRunFiles();
    fsyncFile(metricsFile);
    const { tensors, meta } = trainer.stateDict();
    const specs = modalities.map((m) => m.toJSON());
    lastCheckpoint = saveCheckpoint(
      checkpointDir,
      tensors,
      { config, modalities: specs, trainer: meta, step: trainer.step, retrievalSpace, device },
      config.train.keepCheckpoints,
    );
    for (const t of tensors.values()) t.dispose();
    lastSaved = trainer.step;
  };
  trainerOptions.onStep = (record) => {
    writeRunFiles();
    const numbered = { ...record, step: record.step + 1, epoch: record.epoch + 1 };
    if (writes) appendFileSync(metricsFile, `${JSON.stringify(numbered)}\n`);
    options.onStep?.(numbered, {
      step: numbered.step,
      totalSteps: trainer.totalSteps,
      epoch: numbered.epoch,
      epochs: trainerOptions.epochs,
      itemsPerSecond: (1000 * config.train.batchSize) / (record.stepMs + record.waitMs),
    });
  };
  // Data-parallel: the same trainer, wrapped (rank 0's state broadcast, BatchNorm synchronised
  // unless train.syncBatchNorm is false, the losses over the global batch, gradients averaged).
  const runner = distributed ? new DataParallel(trainer, { ...distributed, syncBatchNorm: config.train.syncBatchNorm }) : trainer;
  try {
    await runner.run({
      stopAfter: options.stopAfter,
      shouldStop: options.shouldStop,
      afterStep: async (t) => {
        if (!checkSamplesSaved && writes) {
          // A few training items in the run, so that `export` can check itself without the data.
          checkSamplesSaved = true;
          await saveCheckSamples(out, sampleCheckItems(dataset.items));
        }
        if (t.step % config.train.checkpointEvery === 0) save();
      },
    });
    if (lastSaved !== trainer.step || lastCheckpoint === '') save();
  } catch (err) {
    if (!(err instanceof NonFiniteLossError)) throw err;
    // The refused step wrote neither a metrics line nor a checkpoint; say what is left and that
    // --resume would repeat the same steps (every draw is seeded), so the fix is a new run.
    const kept =
      lastCheckpoint === ''
        ? 'No checkpoint was written.'
        : `The newest checkpoint, ${lastCheckpoint}, holds the last finite state (step ${lastSaved}).`;
    const advice = `${kept} Start a new run with a lower optim.baseLr or with optim.clipGradNorm set; --resume would repeat the same steps.`;
    throw new NonFiniteLossError(err.step, err.epoch, err.terms, err.gradients, 'train', advice);
  } finally {
    await loader.close();
  }
  return { step: trainer.step, totalSteps: trainer.totalSteps, finished: trainer.step >= trainer.totalSteps, checkpoint: lastCheckpoint };
}

/** The config to train with: the given one, or on resume the checkpoint's; a given one must match the checkpoint's. */
function resumedConfig(given: Config | undefined, checkpoint: Checkpoint | undefined): Config {
  const saved = checkpoint === undefined ? undefined : parseConfig(checkpoint.config, `${checkpoint.file} (its config)`);
  if (given === undefined) {
    if (saved === undefined) throw new TypeError('train: no config; give one, or resume a run (which uses its saved config)');
    return saved;
  }
  const config = withAbsoluteDataPaths(given);
  if (saved !== undefined) {
    // Runs saved before data paths were made absolute compare with the paths as given.
    const differences = configDifferences(withAbsoluteDataPaths(saved), config);
    if (differences.length > 0)
      throw new Error(`train: cannot resume from ${checkpoint!.file}: its config differs in ${differences.join(', ')}`);
    return saved;
  }
  return config;
}
