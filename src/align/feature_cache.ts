// The features of a tower frozen whole whose views are off: the tower is then a fixed function of
// the item (eval mode, no augmentation), so its output is computed once per distinct raw item (an
// image file, a caption) and training reads it instead of running the tower, which leaves only the
// necks and heads to compute (LiT's "locked image tuning" with precomputed features, Zhai et al.
// 2022, arXiv:2111.07991, §3; FuseMix, Vouitsis et al. 2023, arXiv:2312.10144, trains on cached
// unimodal features alone). The features live in one safetensors file per modality, keyed by a
// SHA-256 of everything they depend on: the tower's weights and buffers, the modality's spec
// (preprocessing, tokenizer), and the raw items with each file's size and modification time. A
// file whose key differs is computed again and replaced.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { cat, noGrad, tidy, type Device, type Tensor } from '../engine/index.js';
import { loadSafetensors, saveSafetensors } from '../engine/safetensors.js';
import type { TensorModule } from '../nn/index.js';
import { BadItemError, type Modality } from '../modalities/modality.js';
import { cpuCopy, onDevice } from './device.js';

const FORMAT = 'byol-align-feature-cache/1';

/** A modality's cached tower features: row `index.get(rawItemKey(raw))` of `features`. */
export interface FeatureTable {
  modality: string;
  /** float32 [items, featureDim] on the CPU. */
  features: Tensor;
  index: Map<string, number>;
  file: string;
  /** The file was read (its key matched), not computed. */
  reused: boolean;
  /** Raw items left out because the modality could not read them (onBadRecord 'skip'). */
  skipped: number;
}

/** The lookup key of a raw item: a string (path, caption) as it is, anything else (a vector) as JSON. */
export function rawItemKey(raw: unknown): string {
  return typeof raw === 'string' ? raw : JSON.stringify(raw);
}

export interface TowerFeaturesOptions {
  /** The folder of the cache files (a run's feature-cache/). */
  dir: string;
  modality: Modality;
  /** The frozen tower (in eval mode), on `device`. */
  tower: TensorModule;
  /** Every raw item training may draw (duplicates are computed once). */
  rawItems: readonly unknown[];
  /** Items per forward pass (default 256). */
  batchSize?: number;
  device?: Device;
  /** Leave out raw items the modality refuses with a BadItemError (onBadRecord 'skip'); default: throw. */
  skipBadItems?: boolean;
  /** After each computed batch. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The tower's features of every raw item: read from `dir` when its file's key matches, else
 * computed (in eval mode, without gradient, float32) and written.
 *
 * @example
 * const table = await towerFeatures({ dir: 'runs/lit/feature-cache', modality: image, tower, rawItems: paths });
 * table.features.indexSelect(0, tensor([table.index.get(paths[3])!], { dtype: 'int64' }));
 */
export async function towerFeatures(options: TowerFeaturesOptions): Promise<FeatureTable> {
  const { dir, modality, tower } = options;
  const keys = [...new Set(options.rawItems.map(rawItemKey))].sort();
  const byKey = new Map(options.rawItems.map((raw) => [rawItemKey(raw), raw]));
  const raws = keys.map((k) => byKey.get(k));
  const key = cacheKey(modality, tower, keys, raws);
  const file = join(dir, `${modality.name}.safetensors`);
  if (existsSync(file)) {
    const saved = loadSafetensors(file);
    const kept = saved.metadata.items === undefined ? undefined : (JSON.parse(saved.metadata.items) as number[] | null);
    if (saved.metadata.format === FORMAT && saved.metadata.key === key && saved.tensors.has('features')) {
      const rows = kept ?? keys.map((_, i) => i);
      return {
        modality: modality.name,
        features: saved.tensors.get('features')!,
        index: new Map(rows.map((i, row) => [keys[i]!, row])),
        file,
        reused: true,
        skipped: keys.length - rows.length,
      };
    }
    for (const t of saved.tensors.values()) t.dispose();
  }
  const { features, kept } = await computeFeatures(options, raws);
  mkdirSync(dir, { recursive: true });
  const all = kept.length === keys.length;
  saveSafetensors(file, { features }, { format: FORMAT, key, modality: modality.name, items: all ? 'null' : JSON.stringify(kept) });
  return {
    modality: modality.name,
    features,
    index: new Map(kept.map((i, row) => [keys[i]!, row])),
    file,
    reused: false,
    skipped: keys.length - kept.length,
  };
}

/** The features of `raws` in order, batch by batch; `kept` are the positions computed (all but refused ones). */
async function computeFeatures(options: TowerFeaturesOptions, raws: unknown[]): Promise<{ features: Tensor; kept: number[] }> {
  const { modality, tower } = options;
  const batchSize = options.batchSize ?? 256;
  const device = options.device ?? 'cpu';
  const wasTraining = tower.training;
  tower.eval();
  const parts: Tensor[] = [];
  const kept: number[] = [];
  try {
    for (let start = 0; start < raws.length; start += batchSize) {
      let positions = raws.slice(start, start + batchSize).map((_, i) => start + i);
      let batch: Tensor | undefined;
      while (batch === undefined && positions.length > 0) {
        try {
          batch = await modality.collate(positions.map((p) => raws[p]));
        } catch (err) {
          const index = err instanceof BadItemError ? err.index : undefined;
          if (options.skipBadItems !== true || index === undefined || index < 0 || index >= positions.length) throw err;
          positions = positions.filter((_, i) => i !== index);
        }
      }
      if (batch === undefined) continue;
      const input = batch;
      parts.push(noGrad(() => tidy(() => cpuCopy(tower.forward(modality.evalInput(onDevice(input, device)))).float())));
      input.dispose();
      kept.push(...positions);
      options.onProgress?.(Math.min(start + batchSize, raws.length), raws.length);
    }
    if (parts.length === 0) throw new Error(`feature cache: no ${modality.name} item could be read`);
    return { features: cat(parts), kept };
  } finally {
    for (const t of parts) t.dispose();
    tower.train(wasTraining);
  }
}

/**
 * SHA-256 of what the features depend on: the format, the modality's spec, the tower's tensors
 * (names, dtypes, shapes, bytes) and the raw items with the size and modification time of those
 * that are files.
 */
function cacheKey(modality: Modality, tower: TensorModule, keys: readonly string[], raws: readonly unknown[]): string {
  const hash = createHash('sha256');
  const field = (text: string): void => {
    hash.update(`${Buffer.byteLength(text)}:`);
    hash.update(text);
  };
  field(FORMAT);
  field(JSON.stringify(modality.toJSON()));
  for (const [name, t] of tower.stateDict()) {
    field(`${name} ${t.dtype} [${t.shape.join(',')}]`);
    const data = t.device === 'cpu' ? t.data() : noGrad(() => tidy(() => t.to('cpu').data()));
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  keys.forEach((key, i) => {
    field(key);
    const raw = raws[i];
    if (typeof raw === 'string' && isAbsolute(raw) && existsSync(raw)) {
      const stat = statSync(raw);
      field(`${stat.size} ${stat.mtimeMs}`);
    }
  });
  return hash.digest('hex');
}
