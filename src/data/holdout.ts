// A validation split held out of the training data by concept: an item goes to validation when
// the hash of its concept (the data set's `concept` field, else its id) falls below the fraction,
// so every drawing of one concept lands on the same side and validation concepts are unseen in
// training, as the test split's are. The hash is the one the icon data set's train/test split uses.
import { hashFraction } from './stable_hash.js';
import type { PairedDataset, PairedItem } from './paired.js';

/** The concept an item belongs to. */
function conceptOf(item: PairedItem): string {
  const concept = item.extra?.concept;
  return typeof concept === 'string' ? concept : item.id;
}

/**
 * Splits `dataset` into training and validation items by concept.
 *
 * @example
 * const { train, val } = holdOutByConcept(loadDataSource('coco:captions_train.json', { images }), 0.05);
 */
export function holdOutByConcept(dataset: PairedDataset, fraction: number): { train: PairedDataset; val: PairedDataset } {
  const isVal = (item: PairedItem): boolean => hashFraction(`val:${conceptOf(item)}`) < fraction;
  return {
    train: { ...dataset, items: dataset.items.filter((i) => !isVal(i)) },
    val: { ...dataset, items: dataset.items.filter(isVal), source: `${dataset.source} (validation: ${fraction} of its concepts)` },
  };
}
