// Batches as manifestBatches makes them (batches.ts), but a modality with cached tower features
// (feature_cache.ts) gets the features of the raw item each row draws instead of its collated
// input. The rows and draws are the loader's own (ManifestLoader.rowsOf: the same caption per item
// and epoch as without the cache), so training on the cache sees what training through the frozen
// tower sees. When the image's features are cached, the loader is given the items without their
// image (cachedDataset), so no image is decoded at all.
import { tensor, type Tensor } from '../engine/index.js';
import type { ManifestLoader } from '../data/manifest_loader.js';
import type { PairedDataset, PairedItem } from '../data/paired.js';
import type { Modality } from '../modalities/modality.js';
import { modalityFactory } from '../modalities/registry.js';
import { rawItemKey, type FeatureTable } from './feature_cache.js';
import type { AlignBatch } from './train.js';

/**
 * The data set the loader reads when the image's features are cached: the same items in the same
 * order without their image (so the loader decodes none), and the items as they were, by the
 * loader's item, for the raw items the cached modalities draw from.
 */
export interface CachedDataset {
  dataset: PairedDataset;
  original: WeakMap<PairedItem, PairedItem>;
  /** For ManifestLoader's hasOtherModality: the item had an image, or another of `modalities`. */
  hasOtherModality: (item: PairedItem) => boolean;
}

export function cachedDataset(dataset: PairedDataset, modalities: readonly Modality[], cached: ReadonlySet<string>): CachedDataset {
  const original = new WeakMap<PairedItem, PairedItem>();
  const stripImage = cached.has('image');
  const items = dataset.items.map((item) => {
    const loaded = stripImage ? { ...item, image: undefined } : item;
    original.set(loaded, item);
    return loaded;
  });
  const others = modalities.filter((m) => m.name !== 'image').map((m) => modalityFactory(m.name).rawItems);
  const hasOtherModality = (item: PairedItem): boolean => {
    const was = original.get(item) ?? item;
    return (stripImage && was.image !== undefined) || others.some((rawItems) => rawItems(was).length > 0);
  };
  return { dataset: { ...dataset, items }, original, hasOtherModality };
}

/**
 * The epoch's batches from `fromStep` on: each cached modality's rows as encoded features
 * (`encoded: true`, float32 [rows, featureDim]), the others as manifestBatches gives them. A row
 * whose drawn raw item has no features (left out as unreadable) counts as lacking the modality.
 *
 * @example
 * const source = cachedDataset(dataset, modalities, new Set(['image']));
 * const loader = new ManifestLoader(source.dataset, { ...options, hasOtherModality: source.hasOtherModality });
 * trainer options: batches: (e, s) => cachedManifestBatches(loader, source, modalities, tables, e, s)
 */
export async function* cachedManifestBatches(
  loader: ManifestLoader,
  source: CachedDataset,
  modalities: readonly Modality[],
  tables: ReadonlyMap<string, FeatureTable>,
  epoch: number,
  fromStep = 0,
): AsyncGenerator<AlignBatch> {
  const uncachedImage = modalities.some((m) => m.name === 'image') && !tables.has('image');
  const others = modalities.filter((m) => m.name !== 'image' || tables.has('image'));
  for await (const b of loader.epoch(epoch, fromStep)) {
    const size = b.indices.length;
    const rowsOf = (rows: number[]): Tensor | null => (rows.length === size ? null : tensor(rows, { dtype: 'int64' }));
    const inputs: AlignBatch['inputs'] = new Map();
    if (b.image) {
      if (uncachedImage) inputs.set('image', { batch: b.image.data, rows: rowsOf(b.image.rows) });
      else b.image.data.dispose();
    }
    for (const modality of others) {
      const rawItems = modalityFactory(modality.name).rawItems;
      const table = tables.get(modality.name);
      if (table === undefined) {
        const present = await loader.collated(b, modality.name, rawItems, (items) => modality.collate(items));
        if (present) inputs.set(modality.name, { batch: present.data, rows: rowsOf(present.rows) });
        continue;
      }
      const drawn = loader.rowsOf(b, (item) => rawItems(source.original.get(item) ?? item));
      if (drawn === undefined) continue;
      const found = drawn.rows
        .map((row, i) => [row, table.index.get(rawItemKey(drawn.data[i]))] as const)
        .filter(([, at]) => at !== undefined);
      if (found.length === 0) continue;
      const at = tensor(
        found.map(([, i]) => i!),
        { dtype: 'int64' },
      );
      inputs.set(modality.name, { batch: table.features.indexSelect(0, at), rows: rowsOf(found.map(([row]) => row)), encoded: true });
      at.dispose();
    }
    if (inputs.size > 0) yield { size, inputs, waitMs: b.waitMs };
  }
}
