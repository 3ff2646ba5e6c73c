// Batches as the aligner's trainer takes them, from the streaming loaders: the decoded images as
// they are (the image modality's collated form), captions tokenized, vectors stacked, and for
// manifests the rows that have each modality.
import { tensor, type Tensor } from '../engine/index.js';
import type { PairedImageLoader } from '../data/loader.js';
import type { ManifestLoader } from '../data/manifest_loader.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignBatch } from './train.js';

/**
 * @example
 * await trainAlignment(model, { batches: (epoch) => imageTextBatches(loader, text, epoch), stepsPerEpoch: loader.batchesPerEpoch, ... });
 */
export async function* imageTextBatches(
  loader: PairedImageLoader,
  text: Modality<string>,
  epoch: number,
  imageName = 'image',
  fromStep = 0,
): AsyncGenerator<AlignBatch> {
  for await (const b of loader.epoch(epoch, fromStep)) {
    const captions = await text.collate(b.captions);
    yield {
      size: b.images.shape[0]!,
      inputs: new Map([
        [imageName, { batch: b.images, rows: null }],
        [text.name, { batch: captions, rows: null }],
      ]),
    };
  }
}

/**
 * Batches of a manifest whose items hold any subset of the modalities: each configured modality
 * gets the rows that have it (`rows` null when all do), so items missing a modality still train
 * their own terms. The manifest's fields map to modalities by name: 'image', 'text', 'vector'.
 *
 * @example
 * const loader = new ManifestLoader(loadJsonlManifest('pairs.jsonl'), { batchSize: 256, size: 64 });
 * await trainAlignment(model, { batches: (epoch) => manifestBatches(loader, [image, text, vector], epoch), ... });
 */
export async function* manifestBatches(
  loader: ManifestLoader,
  modalities: readonly Modality[],
  epoch: number,
  fromStep = 0,
): AsyncGenerator<AlignBatch> {
  const byName = new Map(modalities.map((m) => [m.name, m]));
  for await (const b of loader.epoch(epoch, fromStep)) {
    const size = b.indices.length;
    const rowsOf = (rows: number[]): Tensor | null => (rows.length === size ? null : tensor(rows, { dtype: 'int64' }));
    const inputs: AlignBatch['inputs'] = new Map();
    if (b.image) {
      if (byName.has('image')) inputs.set('image', { batch: b.image.data, rows: rowsOf(b.image.rows) });
      else b.image.data.dispose();
    }
    for (const part of ['text', 'vector'] as const) {
      const modality = byName.get(part);
      const present = b[part];
      if (modality && present) inputs.set(part, { batch: await modality.collate(present.data), rows: rowsOf(present.rows) });
    }
    if (inputs.size > 0) yield { size, inputs, waitMs: b.waitMs };
  }
}
