// A hash that places a string at a fixed point in [0, 1), the same on every machine and Node
// version: the validation hold-out (holdout.ts) and the icon data set's train/test split
// (scripts/concept_split.ts) both decide a concept's side by where its hash falls.
import { createHash } from 'node:crypto';

/** The first 32 bits of SHA-1(text), big-endian. */
export function stableHash32(text: string): number {
  return createHash('sha1').update(text, 'utf8').digest().readUInt32BE(0);
}

/**
 * Where `text` falls in [0, 1): its {@link stableHash32} over 2³².
 *
 * @example
 * hashFraction('val:arrow left') < 0.05; // true for about 5% of concepts, always the same ones
 */
export function hashFraction(text: string): number {
  return stableHash32(text) / 2 ** 32;
}
