// Which modalities each item of the spoken icon data set keeps (scripts/build-speech-dataset.ts):
// given shares are turned into exact counts per split and handed out in a fixed pseudo-random order
// of the items, so a split's counts are known from its size alone and the same seed picks the same
// items on every machine.
import { orderByHash } from './concept_split.js';

/** The modality combinations a manifest line can have; every icon has an image and captions to start with. */
export type Combination = 'image+text' | 'image+audio' | 'text+audio' | 'image+text+audio';

export const COMBINATIONS: readonly Combination[] = ['image+text', 'image+audio', 'text+audio', 'image+text+audio'];

export interface ModalityShares {
  /** Share of a split's items that get a spoken caption. */
  audio: number;
  /** Share of those with audio that keep image and audio only (their text dropped). */
  imageAudio: number;
  /** Share of those with audio that keep text and audio only (their image dropped). */
  textAudio: number;
}

/**
 * The number of items per combination for a split of `itemCount` items: `round(n × audio)` get
 * audio; of those, `round(a × imageAudio)` are image+audio, `round(a × textAudio)` text+audio and
 * the rest image+text+audio; the items without audio stay image+text. (Math.round: halves round up.)
 *
 * @example
 * combinationCounts(8, { audio: 0.5, imageAudio: 0.5, textAudio: 0.25 });
 * // { 'image+text': 4, 'image+audio': 2, 'text+audio': 1, 'image+text+audio': 1 }
 */
export function combinationCounts(itemCount: number, shares: ModalityShares): Record<Combination, number> {
  checkShares(shares);
  const withAudio = Math.round(itemCount * shares.audio);
  const imageAudio = Math.round(withAudio * shares.imageAudio);
  const textAudio = Math.min(withAudio - imageAudio, Math.round(withAudio * shares.textAudio));
  return {
    'image+text': itemCount - withAudio,
    'image+audio': imageAudio,
    'text+audio': textAudio,
    'image+text+audio': withAudio - imageAudio - textAudio,
  };
}

/**
 * Each id's combination: the ids in SHA-1 order of `${salt}:${id}` take, in turn, the
 * image+audio, text+audio and image+text+audio counts of {@link combinationCounts}; the rest are
 * image+text.
 */
export function assignCombinations(ids: readonly string[], shares: ModalityShares, salt: string): Map<string, Combination> {
  const counts = combinationCounts(ids.length, shares);
  const order = orderByHash(ids, salt);
  const assigned = new Map<string, Combination>();
  let at = 0;
  for (const combination of ['image+audio', 'text+audio', 'image+text+audio'] as const) {
    for (const id of order.slice(at, at + counts[combination])) assigned.set(id, combination);
    at += counts[combination];
  }
  for (const id of order.slice(at)) assigned.set(id, 'image+text');
  return assigned;
}

function checkShares(shares: ModalityShares): void {
  for (const [name, value] of Object.entries(shares)) {
    if (!(value >= 0 && value <= 1)) throw new RangeError(`the ${name} share must be in [0, 1], got ${value}`);
  }
  if (shares.imageAudio + shares.textAudio > 1) {
    throw new RangeError(
      `the image+audio and text+audio shares are shares of the items with audio and add up to ${shares.imageAudio + shares.textAudio}, over 1`,
    );
  }
}
