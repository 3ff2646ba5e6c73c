// The feature cache in a run (train.featureCache): which towers qualify (frozen whole, views off),
// the loader's data set without the images it then need not decode, and the batches, whose
// features are computed (or read) in a first pass when training asks for its first batch — after
// a resumed run has loaded its checkpoint, so the features are always those of the weights trained.
import { join } from 'node:path';
import type { PairedDataset } from '../data/paired.js';
import type { ManifestLoader } from '../data/manifest_loader.js';
import type { AlignModel } from '../align/model.js';
import type { AlignBatch } from '../align/train.js';
import type { Modality } from '../modalities/modality.js';
import { modalityFactory } from '../modalities/registry.js';
import type { Config } from '../config/schema.js';
import { towerSettings } from '../config/tower.js';
import { modelDevice } from '../align/device.js';
import { towerFeatures, type FeatureTable } from '../align/feature_cache.js';
import { cachedDataset, cachedManifestBatches, type CachedDataset } from '../align/cached_batches.js';
import { modalitySettings } from './model_setup.js';

/** A run's feature cache: the modalities cached, the loader's data set, and the batches. */
export interface RunFeatureCache {
  cached: ReadonlySet<string>;
  source: CachedDataset;
  batches(loader: ManifestLoader, epoch: number, fromStep: number): AsyncGenerator<AlignBatch>;
}

export interface FeatureCacheRunOptions {
  /** The run directory; the files go to its feature-cache/. */
  out: string;
  /** Called before the first file is written (the run's own files first). */
  beforeWrite?: () => void;
  onMessage?: (message: string) => void;
}

/** The modalities whose features a run caches: tower frozen whole and views off, with train.featureCache. */
export function cachedModalities(config: Config, model: AlignModel, modalities: readonly Modality[]): Set<string> {
  if (!config.train.featureCache) return new Set();
  return new Set(
    modalities
      .map((m) => m.name)
      .filter((name) => {
        const tower = towerSettings(modalitySettings(config, name));
        return tower.freeze === true && !tower.views && model.sharedTowers.has(name);
      }),
  );
}

/**
 * The feature cache of a run, or undefined when no tower qualifies.
 *
 * @example
 * const cache = planFeatureCache(config, model, modalities, dataset, { out, onMessage: say });
 * const loader = new ManifestLoader(cache?.source.dataset ?? dataset, { ..., hasOtherModality: cache?.source.hasOtherModality });
 */
export function planFeatureCache(
  config: Config,
  model: AlignModel,
  modalities: readonly Modality[],
  dataset: PairedDataset,
  options: FeatureCacheRunOptions,
): RunFeatureCache | undefined {
  const cached = cachedModalities(config, model, modalities);
  if (cached.size === 0) return undefined;
  const say = options.onMessage ?? (() => {});
  const source = cachedDataset(dataset, modalities, cached);
  let tables: Promise<Map<string, FeatureTable>> | undefined;
  const compute = async (): Promise<Map<string, FeatureTable>> => {
    options.beforeWrite?.();
    const out = new Map<string, FeatureTable>();
    for (const modality of modalities.filter((m) => cached.has(m.name))) {
      const rawItems = dataset.items.flatMap((item) => modalityFactory(modality.name).rawItems(item));
      const tower = model.online.tower(modality.name);
      const started = performance.now();
      let nextReport = 0.1;
      const table = await towerFeatures({
        dir: join(options.out, 'feature-cache'),
        modality,
        tower,
        rawItems,
        batchSize: config.train.batchSize,
        device: modelDevice(tower),
        skipBadItems: config.data.onBadRecord === 'skip',
        onProgress: (done, total) => {
          if (done / total < nextReport && done < total) return;
          nextReport = Math.floor((done / total) * 10) / 10 + 0.1;
          say(`feature cache: ${modality.name} ${done}/${total} items`);
        },
      });
      // The image modality's own decode workers are needed no more (collate starts them again if asked).
      await modality.close();
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      say(
        `feature cache: ${modality.name} ${table.reused ? 'read' : 'computed'} ${table.index.size} items in ${seconds} s (${table.file})` +
          (table.skipped > 0 ? `; ${table.skipped} unreadable left out` : ''),
      );
      out.set(modality.name, table);
    }
    return out;
  };
  return {
    cached,
    source,
    async *batches(loader, epoch, fromStep) {
      tables ??= compute();
      yield* cachedManifestBatches(loader, source, modalities, await tables, epoch, fromStep);
    },
  };
}
