// Starting a run from another byol-align run (train.initFrom, `--init-from`): its towers, and with
// train.initHeads its necks and heads, become this run's initial weights, so a run trained on one
// data set is reused as "pretrained" (and locked with `freeze`) on another. The modalities come
// from the checkpoint too (the tokenizer, a vector's width, audio's normalisation), since the
// towers were trained on them; their settings must match this run's but for the views.
import { noGrad, type Tensor } from '../engine/index.js';
import type { AlignModel } from '../align/model.js';
import type { ModalitySpec } from '../modalities/modality.js';
import type { Config } from '../config/schema.js';
import { ConfigError, parseConfig } from '../config/load.js';
import { modalityOwnSettings } from '../config/tower.js';
import { copyState } from '../byol/ema.js';
import { resolveCheckpoint, type Checkpoint } from './checkpoint.js';
import { modalitySettings } from './model_setup.js';

/** Keys of a modality's section that may differ from the source run's: the augmentations. */
const MAY_DIFFER = ['view1', 'view2'];

/** The run or checkpoint a new run starts from. */
export interface InitSource {
  checkpoint: Checkpoint;
  config: Config;
  /** Its modalities by name. */
  specs: Map<string, ModalitySpec>;
}

/** Reads `path` (a run folder, its newest good checkpoint, or a checkpoint file). */
export function readInitSource(path: string, onSkip?: (message: string) => void): InitSource {
  let checkpoint: Checkpoint;
  try {
    checkpoint = resolveCheckpoint(path, (err) => onSkip?.(`skipping a broken checkpoint: ${err.message}`));
  } catch (err) {
    throw new ConfigError(`train.initFrom: ${(err as Error).message}`);
  }
  const config = parseConfig(checkpoint.config, `${checkpoint.file} (its config)`);
  const specs = new Map((checkpoint.modalities as ModalitySpec[]).map((spec) => [spec.name, spec]));
  return { checkpoint, config, specs };
}

/**
 * The spec modality `name` of this run is restored from instead of fitted: the source's, with this
 * run's views; undefined when the source has no such modality. A setting that shapes the tower or
 * its input (text.dModel, image.size, text.vocabSize ...) must be the source's; a difference is a
 * ConfigError naming the key and both values.
 */
export function initModalitySpec(config: Config, source: InitSource, name: string): ModalitySpec | undefined {
  const spec = source.specs.get(name);
  if (spec === undefined) return undefined;
  const here = modalityOwnSettings(modalitySettings(config, name));
  const there = modalityOwnSettings(modalitySettings(source.config, name));
  const differences = [...new Set([...Object.keys(here), ...Object.keys(there)])]
    .filter((key) => !MAY_DIFFER.includes(key) && JSON.stringify(here[key]) !== JSON.stringify(there[key]))
    .sort();
  if (differences.length > 0) {
    const described = differences.map(
      (key) => `${name}.${key} is ${JSON.stringify(here[key])} here but ${JSON.stringify(there[key])} in ${source.checkpoint.file}`,
    );
    throw new ConfigError(`train.initFrom: ${described.join('; ')}; the towers must be built alike`);
  }
  const views = Object.fromEntries(MAY_DIFFER.filter((k) => k in here && k in spec.settings).map((k) => [k, here[k]]));
  return { ...spec, settings: { ...spec.settings, ...views } };
}

/**
 * Copies the source's towers (online encoders) into `model`'s online and target towers, and with
 * `heads` every other online weight (necks, projectors, predictors) too, the target starting equal
 * to the online network as in a fresh run; a modality the source lacks then keeps its fresh weights
 * (a new tower joining a trained space, model.freezeHeads). Every key is checked: missing, unexpected and
 * wrong-shape keys are a ConfigError naming them. Returns the modalities initialised; the others
 * (absent from the source) keep their fresh weights.
 */
export function initModelFrom(model: AlignModel, source: InitSource, heads: boolean): string[] {
  const where = `train.initFrom (${source.checkpoint.file})`;
  const online = new Map<string, Tensor>();
  for (const [key, t] of source.checkpoint.tensors) if (key.startsWith('model.online.')) online.set(key.slice('model.online.'.length), t);
  const initialised = model.modalities.filter((name) => source.specs.has(name));
  if (heads) {
    // A modality the source lacks keeps its fresh tower, neck and head statistics; every other key must be there.
    const added = model.modalities.filter((name) => !source.specs.has(name));
    const own = new Map([...model.online.stateDict()].filter(([key]) => !added.some((name) => isModalityKey(key, name))));
    loadChecked(own, online, where, 'model.online.');
    copyState(model.target, model.online);
    return initialised;
  }
  for (const name of initialised) {
    const prefix = `encoders.${name}.0.`;
    const tower = new Map([...online].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
    loadChecked(model.online.tower(name).stateDict(), tower, where, `model.online.${prefix}`);
    if (!model.sharedTowers.has(name)) model.target.tower(name).loadStateDict(model.online.tower(name).stateDict());
  }
  return initialised;
}

/**
 * Whether a key of a branch's state belongs to modality `name` alone: its tower and neck
 * (`encoders.NAME.`), its own head (`projectors.NAME.`, `predictors.NAME.`) or its statistics in a
 * shared head (`....statistics.NAME.`).
 */
function isModalityKey(key: string, name: string): boolean {
  const parts = key.split('.');
  if (['encoders', 'projectors', 'predictors'].includes(parts[0]!) && parts[1] === name) return true;
  return parts.some((part, i) => part === 'statistics' && parts[i + 1] === name);
}

/** Copies `source` into `own` (live tensors) after checking every key and shape; errors name the keys with `keyPrefix`. */
function loadChecked(own: Map<string, Tensor>, source: Map<string, Tensor>, where: string, keyPrefix: string): void {
  const missing = [...own.keys()].filter((k) => !source.has(k));
  const unexpected = [...source.keys()].filter((k) => !own.has(k));
  const shapes = [...own]
    .filter(([k, t]) => source.has(k) && source.get(k)!.shape.join() !== t.shape.join())
    .map(([k, t]) => `${keyPrefix}${k} is [${source.get(k)!.shape.join(', ')}] there, [${t.shape.join(', ')}] here`);
  const problems = [
    missing.length > 0 ? `missing: ${missing.map((k) => keyPrefix + k).join(', ')}` : '',
    unexpected.length > 0 ? `unexpected: ${unexpected.map((k) => keyPrefix + k).join(', ')}` : '',
    shapes.length > 0 ? `wrong shape: ${shapes.join('; ')}` : '',
  ].filter((p) => p !== '');
  if (problems.length > 0) throw new ConfigError(`${where}: the weights do not fit this run's model: ${problems.join('; ')}`);
  noGrad(() => {
    for (const [k, t] of own) t.copy_(source.get(k)!);
  });
}
