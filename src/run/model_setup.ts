// Building the pieces of a run from a validated config: the modalities a data set has (fitted on
// its training items, or restored from a checkpoint), the aligner over them, the trainer's
// options, and a trained model back from a checkpoint.
import { manualSeed } from '../engine/index.js';
import type { PairedItem } from '../data/paired.js';
import type { Modality, ModalitySpec } from '../modalities/modality.js';
import { imageModality } from '../modalities/image/index.js';
import { textModality } from '../modalities/text/index.js';
import { vectorModality, type VectorItem } from '../modalities/vector/index.js';
import { restoreModality } from '../modalities/registry.js';
import { AlignModel } from '../align/model.js';
import { ALIGNMENT_OBJECTIVES, type AlignmentLossWeights } from '../align/loss.js';
import type { AlignTrainOptions } from '../align/train.js';
import type { RetrievalSpace } from '../align/evaluate.js';
import type { Config } from '../config/schema.js';
import { resolveCheckpoint, type Checkpoint } from './checkpoint.js';
import { parseConfig } from '../config/load.js';

/**
 * The modalities the training items have, in the order image, text, vector: image settings and
 * text settings from the config; the tokenizer is trained on the captions; a vector modality's
 * width is read from the data.
 */
export async function fitModalities(config: Config, items: readonly PairedItem[]): Promise<Modality[]> {
  const out: Modality[] = [];
  if (items.some((i) => i.image !== undefined)) out.push((await imageModality.fit(config.image, [])) as Modality);
  const captions = items.flatMap((i) => i.captions);
  if (captions.length > 0) out.push((await textModality.fit(config.text, captions)) as Modality);
  const vectors = items.map((i) => i.extra?.vector as VectorItem | undefined).filter((v): v is VectorItem => v !== undefined);
  if (vectors.length > 0) out.push((await vectorModality.fit(config.vector, vectors)) as Modality);
  if (out.length === 0) throw new TypeError('the training data has no image, caption or vector');
  return out;
}

/** The modalities saved in a checkpoint. */
export function restoreModalities(specs: unknown): Modality[] {
  if (!Array.isArray(specs)) throw new TypeError('checkpoint: modalities must be a list of modality specs');
  return specs.map((spec) => restoreModality(spec as ModalitySpec));
}

/** The aligner over `modalities` with the config's heads and EMA; its initial weights come from train.seed. */
export function buildModel(config: Config, modalities: readonly Modality[]): AlignModel {
  manualSeed(config.train.seed);
  return new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    config.model,
  );
}

/** The loss weights of an objective with the config's explicit weights over it. */
export function lossWeights(config: Config, objective = config.loss.objective): AlignmentLossWeights {
  const preset: AlignmentLossWeights = { ...ALIGNMENT_OBJECTIVES[objective] };
  if (objective !== config.loss.objective) return preset; // explicit weights belong to the main objective
  for (const key of ['intraWeight', 'crossWeight', 'infoNceWeight', 'varianceWeight', 'covarianceWeight', 'invarianceWeight'] as const) {
    const value = config.loss[key];
    if (value !== undefined) preset[key] = value;
  }
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
    modalities,
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
  /** The space `eval` and `embed` use by default: the one the run measured best, else 'encoder'. */
  retrievalSpace: RetrievalSpace;
}

const SPACES: readonly RetrievalSpace[] = ['projection', 'encoder', 'pairing'];

/**
 * The model of a checkpoint file or run directory (its newest good checkpoint), ready to embed.
 *
 * @example
 * const { model, modalities } = loadModel('runs/icons');
 */
export function loadModel(path: string, onSkip?: (message: string) => void): LoadedModel {
  const checkpoint = resolveCheckpoint(path, (err) => onSkip?.(err.message));
  const config = parseConfig(checkpoint.config, `${checkpoint.file} (its config)`);
  const modalities = restoreModalities(checkpoint.modalities);
  const model = buildModel(config, modalities);
  const weights = new Map([...checkpoint.tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice('model.'.length), t]));
  model.loadStateDict(weights);
  model.eval();
  const recorded = checkpoint.retrievalSpace as RetrievalSpace | undefined;
  // Runs that recorded no space: the encoder space, where every objective that aligns retrieves best (docs/align.md).
  const retrievalSpace = recorded !== undefined && SPACES.includes(recorded) ? recorded : 'encoder';
  return { checkpoint, config, modalities, model, retrievalSpace };
}
