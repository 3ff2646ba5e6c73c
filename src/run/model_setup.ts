// Building the pieces of a run from a validated config: the modalities a data set has (fitted on
// its training items, or restored from a checkpoint), the aligner over them, the trainer's
// options, and a trained model back from a checkpoint.
import { manualSeed, type Device } from '../engine/index.js';
import type { OnBadRecord, PairedItem, ParseOptions } from '../data/paired.js';
import type { Modality, ModalitySpec } from '../modalities/modality.js';
import { modalityFactory, registeredMediaFields, registeredModalities, restoreModality } from '../modalities/registry.js';
import { AlignModel } from '../align/model.js';
import type { AlignmentLossWeights } from '../align/loss.js';
import { ALIGNMENT_OBJECTIVES } from '../config/objectives.js';
import type { AlignTrainOptions } from '../align/train.js';
import type { RetrievalSpace } from '../align/evaluate.js';
import type { Config } from '../config/schema.js';
import { resolveCheckpoint, type Checkpoint } from './checkpoint.js';
import { ConfigError, importPlugins, parseConfig } from '../config/load.js';
import { moveModule } from '../align/device.js';
import { resolveDevice } from './device.js';
import { modalityOwnSettings, towerSettings } from '../config/tower.js';
import { withoutViews } from '../align/fixed_views.js';

/** A modality's settings: its config section (`image`, `text`, `vector`, or a plug-in's own), `{}` without one. */
export function modalitySettings(config: Config, name: string): Record<string, unknown> {
  const section = (config as Record<string, unknown>)[name];
  return typeof section === 'object' && section !== null && !Array.isArray(section) ? (section as Record<string, unknown>) : {};
}

/**
 * The registered modalities the training items have (only those of data.modalities when it is
 * set), in registration order (image, text, vector, then plug-ins), each fitted on its raw items (factory.rawItems) with its config section: the
 * tokenizer is trained on the captions, a vector modality's width is read from the data. Under
 * data.onBadRecord 'skip', fit leaves out raw items it cannot use (FitOptions.skipBadItems).
 */
export async function fitModalities(
  config: Config,
  items: readonly PairedItem[],
  /** A modality to restore rather than fit (train.initFrom's, with its tokenizer), by name. */
  restoredSpec: (name: string) => ModalitySpec | undefined = () => undefined,
): Promise<Modality[]> {
  const out: Modality[] = [];
  const chosen = config.data.modalities;
  const unknown = chosen?.find((name) => !registeredModalities().includes(name));
  if (unknown !== undefined)
    throw new TypeError(`data.modalities: '${unknown}' is not a registered modality (${registeredModalities().join(', ')})`);
  for (const name of registeredModalities().filter((n) => chosen === undefined || chosen.includes(n))) {
    const factory = modalityFactory(name);
    const raw = items.flatMap((i) => factory.rawItems(i));
    // Under 'skip' a bad raw item is left out of fitting; training counts it when its batch meets it.
    const skipBadItems = config.data.onBadRecord === 'skip';
    const restored = raw.length > 0 ? restoredSpec(name) : undefined;
    if (restored !== undefined) out.push(factory.restore(restored));
    else if (raw.length > 0) out.push(await factory.fit(modalityOwnSettings(modalitySettings(config, name)), raw, { skipBadItems }));
    else if (chosen !== undefined) throw new TypeError(`data.modalities: the training data has no '${name}'`);
  }
  if (out.length === 0)
    throw new TypeError(`the training data has none of the registered modalities (${registeredModalities().join(', ')})`);
  return out;
}

/** The modalities saved in a checkpoint. */
export function restoreModalities(specs: unknown): Modality[] {
  if (!Array.isArray(specs)) throw new TypeError('checkpoint: modalities must be a list of modality specs');
  return specs.map((spec) => restoreModality(spec as ModalitySpec));
}

/**
 * The aligner over `modalities` with the config's heads, EMA and locked towers (each section's
 * `freeze`); its initial weights come from train.seed.
 */
export function buildModel(config: Config, modalities: readonly Modality[]): AlignModel {
  manualSeed(config.train.seed);
  // loss.objective cca: one linear head per modality into min(projectionDim, tower widths) dimensions (src/run/cca_run.ts).
  const cca = config.loss.objective === 'cca';
  const heads = cca
    ? { sharedHeads: false, linearHeads: true, projectionDim: Math.min(config.model.projectionDim, ...modalities.map((m) => m.featureDim)) }
    : {};
  return new AlignModel(
    modalities.map((m) => ({
      name: m.name,
      create: () => m.createEncoder(),
      featureDim: m.featureDim,
      freeze: towerSettings(modalitySettings(config, m.name)).freeze,
    })),
    { ...config.model, ...heads },
  );
}

/** The loss weights of an objective with the config's explicit weights over it. */
export function lossWeights(config: Config, objective = config.loss.objective): AlignmentLossWeights {
  if (objective === 'cca') throw new ConfigError('loss.objective cca has no loss weights: it fits closed-form heads (src/run/cca_run.ts)');
  const preset: AlignmentLossWeights = { ...ALIGNMENT_OBJECTIVES[objective] };
  if (objective !== config.loss.objective) return preset; // explicit weights belong to the main objective
  for (const key of ['intraWeight', 'crossWeight', 'infoNceWeight', 'varianceWeight', 'covarianceWeight', 'invarianceWeight'] as const) {
    const value = config.loss[key];
    if (value !== undefined) preset[key] = value;
  }
  if (config.loss.invarianceDistance !== undefined) preset.invarianceDistance = config.loss.invarianceDistance;
  return preset;
}

/** The length of training: epochs and optional total steps, from train.epochs or train.steps. */
export function trainingLength(config: Config, stepsPerEpoch: number): { epochs: number; steps?: number } {
  if (config.train.steps !== undefined) return { epochs: Math.ceil(config.train.steps / stepsPerEpoch), steps: config.train.steps };
  return { epochs: config.train.epochs ?? 10 };
}

/** The trainer's options from the config, for the given data source. */
export function trainOptions(
  config: Config,
  modalities: Modality[],
  batches: AlignTrainOptions['batches'],
  stepsPerEpoch: number,
): AlignTrainOptions {
  const { epochs, steps } = trainingLength(config, stepsPerEpoch);
  const totalSteps = steps ?? epochs * stepsPerEpoch;
  return {
    // A section's `views: false`: both views are the un-augmented input.
    modalities: modalities.map((m) => (towerSettings(modalitySettings(config, m.name)).views ? m : withoutViews(m))),
    batches,
    stepsPerEpoch,
    epochs,
    steps,
    batchSize: config.train.batchSize,
    weights: lossWeights(config),
    firstStageEpochs: config.loss.firstStageEpochs,
    firstStageWeights: lossWeights(config, config.loss.firstStageObjective),
    optimizer: config.optim.optimizer,
    baseLr: config.optim.baseLr,
    weightDecay: config.optim.weightDecay,
    predictorLrScale: config.optim.predictorLrScale,
    warmupSteps: Math.round(config.optim.warmupFraction * totalSteps),
    clipGradNorm: config.optim.clipGradNorm,
    seed: config.train.seed,
  };
}

/** A trained model: its config, modalities and the aligner with the checkpoint's weights, in eval mode. */
export interface LoadedModel {
  checkpoint: Checkpoint;
  config: Config;
  modalities: Modality[];
  model: AlignModel;
  /** Where the model is ('cpu', 'cuda:0'); embedding copies each batch there. */
  device: Device;
  /** The space `eval` and `embed` use by default: the one the run measured best, else 'encoder'. */
  retrievalSpace: RetrievalSpace;
}

const SPACES: readonly RetrievalSpace[] = ['projection', 'encoder', 'pairing'];

/**
 * The model of a checkpoint file or run directory (its newest good checkpoint), ready to embed, on
 * `device` (a device setting: cpu, the default, auto, cuda or cuda:N; whatever trained it).
 *
 * @example
 * const { model, modalities } = loadModel('runs/icons');
 * const onGpu = loadModel('runs/icons', undefined, 'auto');
 */
export function loadModel(path: string | Checkpoint, onSkip?: (message: string) => void, device = 'cpu'): LoadedModel {
  // Before the checkpoint is read: a device this libtorch lacks is refused at once.
  const on = resolveDevice(device, 'device');
  const checkpoint = typeof path === 'string' ? resolveCheckpoint(path, (err) => onSkip?.(err.message)) : path;
  const config = parseConfig(checkpoint.config, `${checkpoint.file} (its config)`);
  const modalities = restoreModalities(checkpoint.modalities);
  const model = buildModel(config, modalities);
  const weights = new Map([...checkpoint.tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice('model.'.length), t]));
  model.loadStateDict(weights);
  moveModule(model, on);
  model.eval();
  const recorded = checkpoint.retrievalSpace as RetrievalSpace | undefined;
  const mixedStatistics = checkpoint.tensors.has('model.online.projectors.shared.1.running_mean');
  const retrievalSpace =
    recorded !== undefined && SPACES.includes(recorded) ? recorded : defaultRetrievalSpace(config, modalities, mixedStatistics);
  return { checkpoint, config, modalities, model, device: on, retrievalSpace };
}

/** Whether the encoders' outputs share one width (shared heads add a neck to the widest), so they can be compared. */
export function encoderSpaceComparable(config: Config, modalities: readonly Modality[]): boolean {
  return (config.model.sharedHeads && config.loss.objective !== 'cca') || new Set(modalities.map((m) => m.featureDim)).size <= 1;
}

/**
 * The space of a run that measured none (no validation data): the projections, which the heads are
 * trained for and which retrieve best for every objective measured (docs/align.md). A run written
 * before shared heads kept BatchNorm statistics per modality (`mixedStatistics`) gets the encoder
 * space where its widths match, as then: that bug held its projections back.
 */
export function defaultRetrievalSpace(config: Config, modalities: readonly Modality[], mixedStatistics = false): RetrievalSpace {
  return mixedStatistics && encoderSpaceComparable(config, modalities) ? 'encoder' : 'projection';
}

/**
 * {@link loadModel} after importing the plug-ins the run's config names (its `plugins`), so that a
 * run with a modality of the user's own loads with no more than its path.
 *
 * @example
 * const { model, modalities } = await loadModelWithPlugins('runs/tones');
 */
export async function loadModelWithPlugins(path: string, onSkip?: (message: string) => void, device = 'cpu'): Promise<LoadedModel> {
  const checkpoint = resolveCheckpoint(path, (err) => onSkip?.(err.message));
  const plugins = (checkpoint.config as { plugins?: unknown } | undefined)?.plugins;
  if (Array.isArray(plugins))
    await importPlugins(
      plugins.filter((p): p is string => typeof p === 'string'),
      `${checkpoint.file} (its config)`,
    );
  return loadModel(checkpoint, onSkip, device);
}

/**
 * How a command reads a run's data: the config's bad-record policy (or the one given) and rule for
 * images (and plug-ins' media files) outside their folder, every registered modality's name (a
 * plug-in's too) as a JSONL field that makes a line an item, and the plug-ins' media files to check.
 */
export function runDataOptions(config: Config, onBadRecord: OnBadRecord = config.data.onBadRecord): ParseOptions {
  return {
    onBadRecord,
    allowOutsideImages: config.data.allowOutsideImages,
    modalityFields: registeredModalities(),
    mediaFields: registeredMediaFields(),
  };
}
