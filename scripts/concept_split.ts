// The icon data set's two choices made by hash, so that a build is the same on every machine: which
// side (train or test) each concept falls on, and in which fixed pseudo-random order names are taken
// (a set's icons up to its quota, an icon's captions). The concept hash is the library's
// hashFraction, which the validation hold-out (src/data/holdout.ts) uses too.
import { createHash } from 'node:crypto';
import { hashFraction } from '../src/data/stable_hash.js';

/** `names` ordered by SHA-1 of `${salt}:${name}` (ties, which need a SHA-1 collision, by name): a fixed pseudo-random order. */
export function orderByHash(names: readonly string[], salt: string): string[] {
  const keyed = names.map((name) => ({ name, key: createHash('sha1').update(`${salt}:${name}`, 'utf8').digest('hex') }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return keyed.map((k) => k.name);
}

export type Split = 'train' | 'test';

/**
 * Assigns every concept key a side. Each item lists the concept keys it carries (its own name's and
 * those of the synonyms its captions use); keys that share an item are one group (union–find), so a
 * concept never appears on both sides, not even through a synonym. A group goes to test when the
 * hash fraction of its smallest key is below `testFraction`; a group of one key is thus decided by
 * the hash of the key's sorted words alone, independent of which other icons are built.
 *
 * @example
 * const side = splitByConcept([['arrow left'], ['heart'], ['numeric', '123']], 0.1);
 * side.get('123') === side.get('numeric'); // true
 */
export function splitByConcept(items: readonly (readonly string[])[], testFraction: number): Map<string, Split> {
  if (!(testFraction >= 0 && testFraction <= 1))
    throw new RangeError(`splitByConcept: testFraction must be in [0, 1], got ${testFraction}`);
  const parent = new Map<string, string>();
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root)!;
    for (let k = key; k !== root; ) {
      const next = parent.get(k)!;
      parent.set(k, root);
      k = next;
    }
    return root;
  };
  for (const keys of items) {
    for (const key of keys) if (!parent.has(key)) parent.set(key, key);
    for (const key of keys.slice(1)) {
      const a = find(keys[0]!);
      const b = find(key);
      // the smaller key is the root, so a group's root is its smallest key
      if (a < b) parent.set(b, a);
      else if (b < a) parent.set(a, b);
    }
  }
  const sides = new Map<string, Split>();
  for (const key of parent.keys()) sides.set(key, hashFraction(find(key)) < testFraction ? 'test' : 'train');
  return sides;
}
