// Retrieval evaluation of a trained aligner on a paired data set (the images that have captions),
// with COCO's protocol: what `byol-align eval` prints, and what a run validates after each epoch.
import type { PairedDataset } from '../data/paired.js';
import { decodedImages } from '../data/manifest_loader.js';
import type { ImageFit } from '../data/image_decode.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel } from '../align/model.js';
import { evaluateRetrieval, type RetrievalEvaluation, type RetrievalSpace } from '../align/evaluate.js';

export interface PairedEvalOptions {
  size: number;
  channels: 1 | 3;
  fit?: ImageFit;
  /** The spaces to measure, from one pass over the data (default: projection). */
  spaces?: readonly RetrievalSpace[];
}

/**
 * Recall@1/5/10, median and mean rank both ways over the data set's images with captions, in each
 * of the spaces asked for (in that order). The model is left in eval mode.
 *
 * @example
 * const [projection] = await evaluatePaired(model, modalities, loadDataSource('coco:val.json', { images }), { size: 64, channels: 3 });
 */
export async function evaluatePaired(
  model: AlignModel,
  modalities: readonly Modality[],
  dataset: PairedDataset,
  options: PairedEvalOptions,
): Promise<RetrievalEvaluation[]> {
  const image = modalities.find((m) => m.name === 'image');
  const text = modalities.find((m) => m.name === 'text') as Modality<string> | undefined;
  if (!image || !text)
    throw new TypeError(`retrieval needs an image and a text modality; the model has ${modalities.map((m) => m.name).join(', ')}`);
  const items = dataset.items.filter((i) => i.image !== undefined && i.captions.length > 0);
  if (items.length === 0) throw new TypeError(`${dataset.source}: no item has both an image and a caption to evaluate retrieval on`);
  model.eval();
  return evaluateRetrieval(model, {
    imageModality: image,
    textModality: text,
    imageBatches: decodedImages({ ...dataset, items }, { size: options.size, channels: options.channels, fit: options.fit }),
    captions: items.flatMap((i) => i.captions),
    captionToImage: items.flatMap((i, index) => i.captions.map(() => index)),
    spaces: options.spaces,
  });
}
