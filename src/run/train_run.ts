// A training run in a directory: what `byol-align train` does, as a library function.
//
//   RUN_DIR/config.json        the validated config (every default filled in)
//   RUN_DIR/modalities.json    the modalities' specs, RUN_DIR/tokenizer.json the text tokenizer
//   RUN_DIR/metrics.jsonl      one line per step ({"step", "epoch", "loss", terms, lr, tau, ...}) and
//                              one per validated epoch ({"epoch", "val": {i2t, t2i, rsum}})
//   RUN_DIR/checkpoints/step-NNNNNNNNN.safetensors   every train.checkpointEvery steps and at the end
//
// resume continues from the newest checkpoint that verifies, exactly (AlignTrainer), and refuses
// a checkpoint whose config differs. A run directory that already holds checkpoints is never
// trained over without resume, so no checkpoint is lost by a repeated command.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../engine/index.js';
import { loadDataSource } from '../data/source.js';
import { ManifestLoader } from '../data/manifest_loader.js';
import type { PairedDataset } from '../data/paired.js';
import { manifestBatches } from '../align/batches.js';
import { AlignTrainer, NonFiniteLossError, type AlignStepRecord, type AlignTrainerMeta } from '../align/train.js';
import type { Modality } from '../modalities/modality.js';
import type { Config } from '../config/schema.js';
import { listCheckpoints, resolveCheckpoint, saveCheckpoint, writeFileAtomic } from './checkpoint.js';
import { buildModel, fitModalities, restoreModalities, trainOptions } from './model_setup.js';
import { evaluatePaired } from './evaluate_run.js';

export interface TrainRunOptions {
  config: Config;
  /** The run directory (created if missing). */
  out: string;
  /** Continue from the newest good checkpoint in `out`. */
  resume?: boolean;
  /** End this invocation after this many steps, with a checkpoint; the schedules stay the full run's. */
  stopAfter?: number;
  /** Checked after every step; true ends the run there with a checkpoint (SIGINT, SIGTERM). */
  shouldStop?: () => boolean;
  /** Each step's record and where training stands, e.g. for a progress bar. */
  onStep?: (record: AlignStepRecord, progress: TrainProgress) => void;
  /** Messages for the user: skipped records, skipped broken checkpoints, validation results. */
  onMessage?: (message: string) => void;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
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

/** Keys (dotted) whose values differ between two configs; train.threads may differ on resume. */
export function configDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDifferences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${prefix}${k}.`));
  }
  const key = prefix.slice(0, -1);
  return JSON.stringify(a) === JSON.stringify(b) || key === 'train.threads' ? [] : [key];
}

/** Drops metrics lines from `fromStep` on (a resumed run writes them again). */
function truncateMetrics(file: string, fromStep: number, stepsPerEpoch: number): void {
  if (!existsSync(file)) return;
  const kept = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (line.trim() === '') return false;
      const entry = JSON.parse(line) as { step?: number; epoch: number };
      return entry.step !== undefined ? entry.step < fromStep : (entry.epoch + 1) * stepsPerEpoch <= fromStep;
    });
  writeFileAtomic(file, Buffer.from(kept.map((l) => `${l}\n`).join('')));
}

/**
 * Trains (or resumes) the run in `options.out`.
 *
 * @example
 * const config = resolveConfig({ preset: 'cpu-small', flags: { data: { train: 'coco:captions.json', images: 'images' } } });
 * const result = await train({ config, out: 'runs/icons', onStep: (r, p) => console.log(p.step, r.loss) });
 */
export async function train(options: TrainRunOptions): Promise<TrainRunResult> {
  const { config, out } = options;
  const say = options.onMessage ?? (() => {});
  if (config.data.train === undefined) throw new TypeError('train: no training data; give --data (or data.train in the config)');
  if (config.train.threads !== undefined) setNumThreads(config.train.threads);
  const checkpointDir = join(out, 'checkpoints');
  if (!options.resume && listCheckpoints(checkpointDir).length > 0) {
    throw new Error(`train: ${out} already holds checkpoints; pass --resume to continue that run, or choose another --out`);
  }
  const checkpoint = options.resume ? resolveCheckpoint(out, (err) => say(`skipping a broken checkpoint: ${err.message}`)) : undefined;
  if (checkpoint) {
    const differences = configDifferences(checkpoint.config, config);
    if (differences.length > 0) {
      throw new Error(`train: cannot resume from ${checkpoint.file}: its config differs in ${differences.join(', ')}`);
    }
  }

  const readOptions = { onBadRecord: config.data.onBadRecord, onSkip: (e: Error) => say(`skipped: ${e.message}`) };
  const dataset = loadDataSource(config.data.train, { ...readOptions, images: config.data.images, defaultSplit: 'train' });
  const modalities: Modality[] = checkpoint ? restoreModalities(checkpoint.modalities) : await fitModalities(config, dataset.items);
  const model = buildModel(config, modalities);
  const loader = new ManifestLoader(dataset, {
    batchSize: config.train.batchSize,
    size: config.image.size,
    channels: config.image.channels,
    fit: config.image.fit,
    seed: config.train.seed,
    onBadRecord: config.data.onBadRecord,
    onSkip: readOptions.onSkip,
  });
  if (loader.batchesPerEpoch === 0) {
    throw new Error(`train: ${dataset.items.length} items make no batch of ${config.train.batchSize}; lower train.batchSize`);
  }
  const valSet: PairedDataset | undefined =
    config.data.val === undefined
      ? undefined
      : loadDataSource(config.data.val, { ...readOptions, images: config.data.valImages ?? config.data.images, defaultSplit: 'val' });

  // Nothing is written before the data and any checkpoint have been read: a bad input leaves no files.
  mkdirSync(checkpointDir, { recursive: true });
  const metricsFile = join(out, 'metrics.jsonl');
  const trainerOptions = trainOptions(
    config,
    modalities,
    (epoch, fromStep) => manifestBatches(loader, modalities, epoch, fromStep),
    loader.batchesPerEpoch,
  );
  trainerOptions.onEpoch = async (epoch) => {
    if (valSet === undefined) return;
    const result = await evaluatePaired(model, modalities, valSet, {
      size: config.image.size,
      channels: config.image.channels,
      fit: config.image.fit,
    });
    appendFileSync(metricsFile, `${JSON.stringify({ epoch, val: result.metrics })}\n`);
    say(`epoch ${epoch + 1} validation: rsum ${result.metrics.rsum.toFixed(2)} (chance ${result.chance.rsum.toFixed(2)})`);
  };
  const trainer = new AlignTrainer(model, trainerOptions);
  if (checkpoint) {
    trainer.loadStateDict({ tensors: checkpoint.tensors, meta: checkpoint.trainer as AlignTrainerMeta });
    for (const t of checkpoint.tensors.values()) t.dispose();
    truncateMetrics(metricsFile, trainer.step, loader.batchesPerEpoch);
    say(`resuming ${checkpoint.file} at step ${trainer.step} of ${trainer.totalSteps}`);
  } else {
    const specs = modalities.map((m) => m.toJSON());
    writeFileAtomic(join(out, 'config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
    writeFileAtomic(join(out, 'modalities.json'), Buffer.from(`${JSON.stringify(specs, null, 2)}\n`));
    const tokenizer = specs.find((s) => s.name === 'text')?.state?.tokenizer;
    if (typeof tokenizer === 'string') writeFileAtomic(join(out, 'tokenizer.json'), Buffer.from(tokenizer));
    writeFileAtomic(metricsFile, Buffer.alloc(0));
  }

  let lastCheckpoint = checkpoint?.file ?? '';
  let lastSaved = trainer.step;
  const save = (): void => {
    const { tensors, meta } = trainer.stateDict();
    const specs = modalities.map((m) => m.toJSON());
    lastCheckpoint = saveCheckpoint(
      checkpointDir,
      tensors,
      { config, modalities: specs, trainer: meta, step: trainer.step },
      config.train.keepCheckpoints,
    );
    for (const t of tensors.values()) t.dispose();
    lastSaved = trainer.step;
  };
  trainerOptions.onStep = (record) => {
    appendFileSync(metricsFile, `${JSON.stringify({ ...record, loss: record.loss })}\n`);
    options.onStep?.(record, {
      step: record.step + 1,
      totalSteps: trainer.totalSteps,
      epoch: record.epoch,
      epochs: trainerOptions.epochs,
      itemsPerSecond: (1000 * config.train.batchSize) / (record.stepMs + record.waitMs),
    });
  };
  try {
    await trainer.run({
      stopAfter: options.stopAfter,
      shouldStop: options.shouldStop,
      afterStep: (t) => {
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
