// Image–caption batches from the streaming loader, as the aligner's trainer takes them: the
// decoded images as they are (the image modality's collated form) and the captions tokenized.
import type { PairedImageLoader } from '../data/loader.js';
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
): AsyncGenerator<AlignBatch> {
  for await (const b of loader.epoch(epoch)) {
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
