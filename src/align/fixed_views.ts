// A modality with its views turned off (a section's `views: false`): both training views are the
// un-augmented input that eval and embed see. With the tower frozen whole, its features then
// depend on the item alone, which is what lets them be computed once (feature_cache.ts).
import type { Modality } from '../modalities/modality.js';

/**
 * `modality` whose views() returns evalInput(batch) twice, drawing nothing from the generator.
 *
 * @example
 * const [a, b] = withoutViews(image).views(batch, generator); // a === b, image.evalInput(batch)
 */
export function withoutViews<Raw>(modality: Modality<Raw>): Modality<Raw> {
  return {
    name: modality.name,
    get featureDim() {
      return modality.featureDim;
    },
    collate: (items) => modality.collate(items),
    views: (batch) => {
      const input = modality.evalInput(batch);
      return [input, input];
    },
    evalInput: (batch) => modality.evalInput(batch),
    createEncoder: () => modality.createEncoder(),
    toJSON: () => modality.toJSON(),
    close: () => modality.close(),
  };
}
