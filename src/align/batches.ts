// Batches as the aligner's trainer takes them, from the manifest loader: the decoded images as
// they are (the image modality's collated form), every other modality's raw items collated by it
// (a bad one, such as a clip that does not decode, left out under onBadRecord 'skip'), and the
// rows that have each modality, one batch ahead (the next batch's collation runs while the step does).
import { tensor, type Tensor } from '../engine/index.js';
import type { ManifestBatch, ManifestLoader } from '../data/manifest_loader.js';
import type { Modality } from '../modalities/modality.js';
import { modalityFactory } from '../modalities/registry.js';
import type { AlignBatch } from './train.js';

/**
 * Batches of a manifest whose items hold any subset of the modalities: each configured modality
 * gets the rows that have it (`rows` null when all do), so items missing a modality still train
 * their own terms. The images come decoded from the loader's workers; every other modality's raw
 * items are found by its registered factory's rawItems (captions, `vector`, a plug-in's field)
 * and collated by the modality.
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
  const hasImage = modalities.some((m) => m.name === 'image');
  const others = modalities.filter((m) => m.name !== 'image').map((m) => ({ modality: m, rawItems: modalityFactory(m.name).rawItems }));
  const assemble = async (b: ManifestBatch): Promise<AlignBatch | undefined> => {
    const size = b.indices.length;
    const rowsOf = (rows: number[]): Tensor | null => (rows.length === size ? null : tensor(rows, { dtype: 'int64' }));
    const inputs: AlignBatch['inputs'] = new Map();
    if (b.image) {
      if (hasImage) inputs.set('image', { batch: b.image.data, rows: rowsOf(b.image.rows) });
      else b.image.data.dispose();
    }
    // Every modality's collation starts at once: what runs off this thread (the audio feature
    // thread) must be under way before the step that follows takes the thread.
    const collated = await Promise.all(
      others.map(({ modality, rawItems }) => loader.collated(b, modality.name, rawItems, (items) => modality.collate(items))),
    );
    others.forEach(({ modality }, i) => {
      const present = collated[i];
      if (present) inputs.set(modality.name, { batch: present.data, rows: rowsOf(present.rows) });
    });
    return inputs.size > 0 ? { size, inputs, waitMs: b.waitMs } : undefined;
  };
  // One batch ahead: batch k + 1 is fetched and its collation started before batch k is handed
  // over, so that what runs off this thread (the audio feature thread) works while k's step runs;
  // the step holds this thread, so anything started after the hand-over would wait for it.
  let ahead: Promise<AlignBatch | undefined> | undefined;
  try {
    for await (const b of loader.epoch(epoch, fromStep)) {
      const next = assemble(b);
      // A failure of the batch ahead is thrown when its turn comes (never unhandled meanwhile).
      next.catch(() => {});
      const behind = ahead;
      ahead = next;
      const ready = await behind;
      if (ready) yield ready;
    }
    const last = await ahead;
    ahead = undefined;
    if (last) yield last;
  } finally {
    // Stopped early (a step limit, an error): the batch made ahead is not used.
    if (ahead) disposeBatch(await ahead.catch(() => undefined));
  }
}

function disposeBatch(batch: AlignBatch | undefined): void {
  for (const { batch: data, rows } of batch?.inputs.values() ?? []) {
    data.dispose();
    rows?.dispose();
  }
}
