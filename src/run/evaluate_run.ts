// Retrieval evaluation of a trained aligner on a data set: every direction between two of its
// modalities (image–text with COCO's protocol): what `byol-align eval` prints, and what a run
// validates after each epoch.
import type { PairedDataset } from '../data/paired.js';
import { decodedImages } from '../data/manifest_loader.js';
import type { ImageFit } from '../data/image_decode.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel } from '../align/model.js';
import { evaluateRetrieval, type RetrievalEvaluation, type RetrievalSpace } from '../align/evaluate.js';
import { collatedBatches } from '../align/embed_batches.js';
import { modalityFactory } from '../modalities/registry.js';

export interface PairedEvalOptions {
  size: number;
  channels: 1 | 3;
  fit?: ImageFit;
  /** The spaces to measure, from one pass over the data (default: projection). */
  spaces?: readonly RetrievalSpace[];
}

/**
 * Recall@1/5/10, median and mean rank in every direction between two of the model's modalities
 * that some items of the data set have both of (image ↔ text with COCO's protocol, and image ↔
 * audio, text ↔ audio, … on the items having both), in each of the spaces asked for (in that
 * order). Items with only one of the modalities take no part. The model is left in eval mode.
 *
 * @example
 * const [projection] = await evaluatePaired(model, modalities, loadDataSource('coco:val.json', { images }), { size: 64, channels: 3 });
 * projection.metrics!.t2i.r10; // image–text, COCO's protocol
 */
export async function evaluatePaired(
  model: AlignModel,
  modalities: readonly Modality[],
  dataset: PairedDataset,
  options: PairedEvalOptions,
): Promise<RetrievalEvaluation[]> {
  const factories = modalities.map((m) => modalityFactory(m.name));
  const items = dataset.items.filter((item) => factories.filter((f) => f.rawItems(item).length > 0).length >= 2);
  if (items.length === 0) {
    throw new TypeError(
      `${dataset.source}: no item has two of the model's modalities (${modalities.map((m) => m.name).join(', ')}) to evaluate retrieval on`,
    );
  }
  const rows = modalities.map((modality, m) => {
    const withIt = items.flatMap((item, key) => factories[m]!.rawItems(item).map((raw) => ({ raw, key })));
    const keys = withIt.map((r) => r.key);
    // Images decode on the worker threads that training uses; the other modalities collate here.
    const batches =
      modality.name === 'image'
        ? decodedImages(
            { ...dataset, items: items.filter((item) => item.image !== undefined) },
            { size: options.size, channels: options.channels, fit: options.fit },
          )
        : collatedBatches(
            modality,
            withIt.map((r) => r.raw),
            EVAL_BATCH_SIZE,
          );
    return { modality, batches, keys };
  });
  model.eval();
  return evaluateRetrieval(model, { rows: rows.filter((r) => r.keys.length > 0), spaces: options.spaces });
}

/** Rows of a modality other than images collated per forward. */
const EVAL_BATCH_SIZE = 256;
