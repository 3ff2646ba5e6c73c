// Icon sets in the Iconify JSON format (https://iconify.design/docs/types/iconify-json.html) as an
// image–caption source: parse a set, resolve an icon or alias to an SVG document, and derive the
// words, concept key, captions and train/test side of each icon. Everything here is pure; the
// rendering and file writing live in scripts/build-icon-dataset.ts.
//
// The format: `icons` maps a name to {body, left?, top?, width?, height?, rotate?, hFlip?, vFlip?,
// hidden?}; `aliases` maps a name to {parent, ...the same optional fields}; the set's own
// left/top/width/height are the defaults (16×16 where the set names none). An alias's
// transformations compose with its parent's (rotations add, flips cancel in pairs) and its
// dimensions override the parent's. The per-set npm packages (@iconify-json/<prefix>) split one set
// into icons.json, info.json (name, licence, palette), metadata.json (categories, suffixes, prefixes:
// style variants named by a name's ending or beginning) and chars.json (font code points).
import { createHash } from 'node:crypto';

/** Geometry and transformations an icon or alias may carry; absent fields take the set's defaults. */
export interface IconifyOptional {
  left?: number;
  top?: number;
  width?: number;
  height?: number;
  /** Quarter turns clockwise, 0–3. */
  rotate?: number;
  hFlip?: boolean;
  vFlip?: boolean;
  /** Kept only so that old names still resolve; not meant to be shown. */
  hidden?: boolean;
}

export interface IconifyIcon extends IconifyOptional {
  /** SVG content without the <svg> element. */
  body: string;
}

export interface IconifyAlias extends IconifyOptional {
  parent: string;
}

export interface IconifyLicense {
  title: string;
  spdx?: string;
  url?: string;
}

export interface IconifyInfo {
  name: string;
  total?: number;
  version?: string;
  author?: { name: string; url?: string };
  license: IconifyLicense;
  /** True where icons carry their own colours; false for monochrome sets drawn in currentColor. */
  palette?: boolean;
  category?: string;
}

/** One icon set, with the parts the npm packages keep in separate files merged back in. */
export interface IconifyJSON {
  prefix: string;
  icons: Record<string, IconifyIcon>;
  aliases?: Record<string, IconifyAlias>;
  left?: number;
  top?: number;
  width?: number;
  height?: number;
  info?: IconifyInfo;
  /** Category title → icon names. */
  categories?: Record<string, string[]>;
  /** Name ending → style title, e.g. "duotone" → "Duotone"; the "" key titles names with no listed ending. */
  suffixes?: Record<string, string>;
  /** Name beginning → style title, as `suffixes`. */
  prefixes?: Record<string, string>;
  /** Font code point (hex) → icon name. */
  chars?: Record<string, string>;
  lastModified?: number;
}

/** A malformed icon set: names the set and the field. */
export class IconifyFormatError extends Error {
  constructor(source: string, field: string, problem: string) {
    super(`${source}: ${field} ${problem}`);
    this.name = 'IconifyFormatError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const OPTIONAL_NUMBERS = ['left', 'top', 'width', 'height', 'rotate'] as const;
const OPTIONAL_BOOLEANS = ['hFlip', 'vFlip', 'hidden'] as const;

function checkOptional(entry: Record<string, unknown>, source: string, field: string): void {
  for (const key of OPTIONAL_NUMBERS) {
    if (key in entry && (typeof entry[key] !== 'number' || !Number.isFinite(entry[key]))) {
      throw new IconifyFormatError(source, `${field}.${key}`, `must be a finite number, got ${JSON.stringify(entry[key])}`);
    }
  }
  for (const key of OPTIONAL_BOOLEANS) {
    if (key in entry && typeof entry[key] !== 'boolean') {
      throw new IconifyFormatError(source, `${field}.${key}`, `must be a boolean, got ${JSON.stringify(entry[key])}`);
    }
  }
}

function checkStringMap(value: unknown, source: string, field: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw new IconifyFormatError(source, field, 'must be an object');
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new IconifyFormatError(source, `${field}["${key}"]`, `must be a string, got ${JSON.stringify(v)}`);
  }
}

/**
 * Checks that `json` is an Iconify JSON set and returns it typed; `source` (a file name) prefixes errors.
 *
 * @example
 * const set = parseIconSet(JSON.parse(readFileSync('icons.json', 'utf8')), 'icons.json');
 */
export function parseIconSet(json: unknown, source: string): IconifyJSON {
  if (!isObject(json)) throw new IconifyFormatError(source, 'the document', 'must be a JSON object');
  if (typeof json.prefix !== 'string' || json.prefix === '') throw new IconifyFormatError(source, 'prefix', 'must be a non-empty string');
  if (!isObject(json.icons)) throw new IconifyFormatError(source, 'icons', 'must be an object of name → {body, ...}');
  for (const [name, icon] of Object.entries(json.icons)) {
    if (!isObject(icon) || typeof icon.body !== 'string') {
      throw new IconifyFormatError(source, `icons["${name}"].body`, 'must be a string (SVG content)');
    }
    checkOptional(icon, source, `icons["${name}"]`);
  }
  if (json.aliases !== undefined) {
    if (!isObject(json.aliases)) throw new IconifyFormatError(source, 'aliases', 'must be an object of name → {parent, ...}');
    for (const [name, alias] of Object.entries(json.aliases)) {
      if (!isObject(alias) || typeof alias.parent !== 'string') {
        throw new IconifyFormatError(source, `aliases["${name}"].parent`, 'must be a string (the name of an icon or alias)');
      }
      checkOptional(alias, source, `aliases["${name}"]`);
    }
  }
  checkOptional(json, source, 'the set');
  if (json.info !== undefined) {
    const info = json.info;
    if (!isObject(info) || typeof info.name !== 'string') throw new IconifyFormatError(source, 'info.name', 'must be a string');
    if (!isObject(info.license) || typeof info.license.title !== 'string') {
      throw new IconifyFormatError(source, 'info.license.title', 'must be a string');
    }
  }
  if (json.categories !== undefined) {
    if (!isObject(json.categories)) throw new IconifyFormatError(source, 'categories', 'must be an object of title → icon names');
    for (const [title, names] of Object.entries(json.categories)) {
      if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
        throw new IconifyFormatError(source, `categories["${title}"]`, 'must be an array of icon names');
      }
    }
  }
  checkStringMap(json.suffixes, source, 'suffixes');
  checkStringMap(json.prefixes, source, 'prefixes');
  checkStringMap(json.chars, source, 'chars');
  return json as unknown as IconifyJSON;
}

/**
 * Merges the files of an @iconify-json/<prefix> package (icons.json, info.json, metadata.json,
 * chars.json) into one set, as the single-file format holds it, and checks it.
 */
export function mergeIconSetPackage(
  parts: { icons: unknown; info?: unknown; metadata?: unknown; chars?: unknown },
  source: string,
): IconifyJSON {
  if (!isObject(parts.icons)) throw new IconifyFormatError(source, 'icons.json', 'must be a JSON object');
  const metadata = isObject(parts.metadata) ? parts.metadata : {};
  return parseIconSet(
    {
      ...parts.icons,
      ...(parts.info === undefined ? {} : { info: parts.info }),
      ...(metadata.categories === undefined ? {} : { categories: metadata.categories }),
      ...(metadata.suffixes === undefined ? {} : { suffixes: metadata.suffixes }),
      ...(metadata.prefixes === undefined ? {} : { prefixes: metadata.prefixes }),
      ...(parts.chars === undefined ? {} : { chars: parts.chars }),
    },
    source,
  );
}

/** An icon with every field filled in: geometry from the icon, its aliases or the set. */
export interface ResolvedIcon {
  body: string;
  left: number;
  top: number;
  width: number;
  height: number;
  rotate: number;
  hFlip: boolean;
  vFlip: boolean;
  hidden: boolean;
}

const DEFAULT_SIZE = 16;
// Iconify's own resolver gives up after this many alias hops; a longer chain is a cycle in practice.
const MAX_ALIAS_DEPTH = 36;

/** The chain from `name` to the icon it ends at: [name, parent, ..., icon]. Throws on a cycle or a missing parent. */
export function aliasChain(set: IconifyJSON, name: string): string[] {
  const chain = [name];
  let current = name;
  while (!(current in set.icons)) {
    const alias = set.aliases?.[current];
    if (alias === undefined) {
      if (current === name) throw new IconifyFormatError(set.prefix, `"${name}"`, 'is neither an icon nor an alias of this set');
      throw new IconifyFormatError(set.prefix, `aliases["${chain[chain.length - 2]}"].parent`, `names "${current}", which does not exist`);
    }
    current = alias.parent;
    if (chain.includes(current) || chain.length > MAX_ALIAS_DEPTH) {
      throw new IconifyFormatError(set.prefix, `aliases["${name}"]`, `has a cyclic parent chain: ${[...chain, current].join(' → ')}`);
    }
    chain.push(current);
  }
  return chain;
}

/**
 * Resolves an icon or alias to its full data: transformations compose along the alias chain
 * (rotations add modulo 4, each flip toggles), geometry comes from the nearest link that sets it,
 * then from the set, then 16×16 at (0, 0).
 *
 * @example
 * resolveIcon(set, 'arrow-right'); // an alias {parent: 'arrow-left', hFlip: true} → arrow-left's body, hFlip true
 */
export function resolveIcon(set: IconifyJSON, name: string): ResolvedIcon {
  const chain = aliasChain(set, name);
  const links: IconifyOptional[] = chain.map((n) => set.icons[n] ?? set.aliases![n]!);
  const pick = (key: 'left' | 'top' | 'width' | 'height', fallback: number): number => {
    for (const link of links) if (link[key] !== undefined) return link[key];
    return set[key] ?? fallback;
  };
  return {
    body: set.icons[chain.at(-1)!]!.body,
    left: pick('left', 0),
    top: pick('top', 0),
    width: pick('width', DEFAULT_SIZE),
    height: pick('height', DEFAULT_SIZE),
    rotate: ((links.reduce((sum, link) => sum + (link.rotate ?? 0), 0) % 4) + 4) % 4,
    hFlip: links.reduce((flip, link) => flip !== (link.hFlip ?? false), false),
    vFlip: links.reduce((flip, link) => flip !== (link.vFlip ?? false), false),
    hidden: links[0]!.hidden ?? false,
  };
}

/**
 * A standalone SVG document of a resolved icon, `size`×`size` pixels, the icon's box fitted and
 * centred (SVG's default preserveAspectRatio). Flips and rotations become a transform on a group
 * and the viewBox follows the rotated box, as Iconify's iconToSVG does. `currentColor` (the colour
 * of monochrome sets) is replaced by `color`.
 *
 * @example
 * iconToSvg(resolveIcon(set, 'home'), { size: 64 }); // '<svg ... width="64" height="64" viewBox="0 0 24 24">...</svg>'
 */
export function iconToSvg(icon: ResolvedIcon, options: { size?: number; color?: string } = {}): string {
  const size = options.size ?? 64;
  const color = options.color ?? '#000';
  if (!(Number.isInteger(size) && size > 0)) throw new RangeError(`iconToSvg: size must be a positive integer, got ${size}`);
  const box = { left: icon.left, top: icon.top, width: icon.width, height: icon.height };
  const transforms: string[] = [];
  let rotation = icon.rotate;
  if (icon.hFlip && icon.vFlip) {
    rotation += 2; // both flips are a half turn
  } else if (icon.hFlip) {
    transforms.push(`translate(${box.width + box.left} ${-box.top})`, 'scale(-1 1)');
    box.top = box.left = 0;
  } else if (icon.vFlip) {
    transforms.push(`translate(${-box.left} ${box.height + box.top})`, 'scale(1 -1)');
    box.top = box.left = 0;
  }
  rotation = ((rotation % 4) + 4) % 4;
  if (rotation === 1) {
    const centre = box.height / 2 + box.top;
    transforms.unshift(`rotate(90 ${centre} ${centre})`);
  } else if (rotation === 2) {
    transforms.unshift(`rotate(180 ${box.width / 2 + box.left} ${box.height / 2 + box.top})`);
  } else if (rotation === 3) {
    const centre = box.width / 2 + box.left;
    transforms.unshift(`rotate(-90 ${centre} ${centre})`);
  }
  if (rotation % 2 === 1) {
    [box.left, box.top] = [box.top, box.left];
    [box.width, box.height] = [box.height, box.width];
  }
  let body = icon.body.replaceAll('currentColor', color);
  if (transforms.length > 0) body = `<g transform="${transforms.join(' ')}">${body}</g>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${size}" height="${size}" ` +
    `viewBox="${box.left} ${box.top} ${box.width} ${box.height}">${body}</svg>`
  );
}

const SHAPE_ELEMENT = /<(path|circle|rect|ellipse|line|polyline|polygon|use|text|image)\b/;
const ANIMATION_ELEMENT = /<(animate|animateTransform|animateMotion|animateColor|set)\b/;

/** Why an icon's body cannot give a still image, or undefined where it can. */
export function unusableBody(body: string): 'empty' | 'animated' | undefined {
  if (!SHAPE_ELEMENT.test(body)) return 'empty';
  // SMIL animations start from frames that are often blank or partial: a still render misleads.
  if (ANIMATION_ELEMENT.test(body)) return 'animated';
  return undefined;
}

/**
 * The words of an icon name: split on '-', lower-cased, empty parts dropped ("arrow--left" →
 * ["arrow", "left"]), and an export scale glued to a word dropped (Health Icons' old names such as
 * "health-data-sync2x-outline" → ["health", "data", "sync", "outline"]).
 */
export function nameWords(name: string): string[] {
  return name
    .toLowerCase()
    .split('-')
    .map((w) => w.replace(/(?<=.)2x$/, ''))
    .filter((w) => w !== '');
}

/**
 * Words that name a drawing style or a pixel grid rather than what is drawn; removed from concept
 * keys so that "heart", "heart-outline" and "heart-24-filled" are one concept.
 */
export const STYLE_NOISE_WORDS: ReadonlySet<string> = new Set([
  'outline',
  'outlined',
  'filled',
  'fill',
  'solid',
  'bold',
  'light',
  'thin',
  'duotone',
  'twotone',
  'regular',
  'sharp',
  'rounded',
  'variant',
  'alt',
  '10',
  '12',
  '16',
  '20',
  '24',
  '28',
  '32',
  '48',
]);
const PIXEL_SIZE_WORD = /^\d+px$/;

/** A name split into its subject and its style variant, from the set's declared suffixes and prefixes. */
export interface NameVariant {
  /** The name without a declared style suffix or prefix. */
  base: string;
  /** The declared suffix the name ends with ("24-filled"), if any. */
  suffix?: string;
  /** The declared prefix the name starts with, if any. */
  prefix?: string;
  /** The style titles the set gives (e.g. "Duotone", "24 Filled", or the "" key's "Regular"), space-joined, if it declares any. */
  style?: string;
}

/** Splits off the longest style suffix and prefix the set declares ("arrow-left-24-filled" → "arrow-left", "24-filled", "24 Filled"). */
export function splitVariant(name: string, set: Pick<IconifyJSON, 'suffixes' | 'prefixes'>): NameVariant {
  const longestFirst = (map: Record<string, string> | undefined): [string, string][] =>
    Object.entries(map ?? {})
      .filter(([key]) => key !== '')
      .sort((a, b) => b[0].length - a[0].length || (a[0] < b[0] ? -1 : 1));
  const variant: NameVariant = { base: name };
  const styles: string[] = [];
  const suffix = longestFirst(set.suffixes).find(([key]) => name.endsWith(`-${key}`) && name.length > key.length + 1);
  if (suffix !== undefined) {
    variant.base = name.slice(0, -suffix[0].length - 1);
    variant.suffix = suffix[0];
  }
  const base = variant.base;
  const prefix = longestFirst(set.prefixes).find(([key]) => base.startsWith(`${key}-`) && base.length > key.length + 1);
  if (prefix !== undefined) {
    variant.base = base.slice(prefix[0].length + 1);
    variant.prefix = prefix[0];
  }
  const prefixStyle = prefix?.[1] ?? set.prefixes?.[''];
  const suffixStyle = suffix?.[1] ?? set.suffixes?.[''];
  if (prefixStyle !== undefined) styles.push(prefixStyle);
  if (suffixStyle !== undefined) styles.push(suffixStyle);
  if (styles.length > 0) variant.style = styles.join(' ');
  return variant;
}

const GRID_SIZE_WORD = /^\d+(px)?$/;

/**
 * The words captions use for a name: its words, less the pixel-grid sizes inside a declared style
 * suffix or prefix, which a rendering at one size cannot show (Fluent's "more-horizontal-20-regular"
 * → "more horizontal regular"; Material Design's "battery-20" keeps its 20, a charge level).
 */
export function captionWords(name: string, set: Pick<IconifyJSON, 'suffixes' | 'prefixes'> = {}): string[] {
  const variant = splitVariant(name, set);
  const affixWords = (affix: string | undefined): string[] => nameWords(affix ?? '').filter((w) => !GRID_SIZE_WORD.test(w));
  return [...affixWords(variant.prefix), ...nameWords(variant.base), ...affixWords(variant.suffix)];
}

/**
 * The words naming what an icon shows: the name's words without the set's style suffix/prefix and
 * without {@link STYLE_NOISE_WORDS} or pixel sizes ("24px"), first occurrence order. A name made only
 * of such words keeps all of them.
 */
export function conceptWords(name: string, set: Pick<IconifyJSON, 'suffixes' | 'prefixes'> = {}): string[] {
  const words = nameWords(splitVariant(name, set).base).filter((w) => !STYLE_NOISE_WORDS.has(w) && !PIXEL_SIZE_WORD.test(w));
  return [...new Set(words.length > 0 ? words : nameWords(name))];
}

/** The concept key: the distinct concept words, sorted, space-joined ("left-arrow-bold" → "arrow left"). */
export function conceptKey(name: string, set: Pick<IconifyJSON, 'suffixes' | 'prefixes'> = {}): string {
  return [...new Set(conceptWords(name, set))].sort().join(' ');
}

/** The first 32 bits of SHA-1(text), big-endian: a hash that is the same on every machine and Node version. */
export function stableHash32(text: string): number {
  return createHash('sha1').update(text, 'utf8').digest().readUInt32BE(0);
}

/** Where a concept key falls in [0, 1): its hash over 2³². */
export function hashFraction(text: string): number {
  return stableHash32(text) / 2 ** 32;
}

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

/** The categories (set order) an icon is listed in, by its own name or a synonym's. */
export function categoriesOf(set: Pick<IconifyJSON, 'categories'>, names: readonly string[]): string[] {
  return Object.entries(set.categories ?? {})
    .filter(([, members]) => names.some((n) => members.includes(n)))
    .map(([title]) => title);
}

/** A category title as caption words: "Account / User" → "account or user", "Audio & Video" → "audio and video". */
export function categoryPhrase(title: string): string {
  return title
    .toLowerCase()
    .replace(/\s*\/\s*/g, ' or ')
    .replace(/\s*&\s*/g, ' and ')
    .replace(/\s*\+\s*/g, ', ')
    .replace(/\s+/g, ' ')
    .trim();
}

const article = (phrase: string): string => (/^[aeiou]/.test(phrase) ? 'an' : 'a');

/** What the captions of one icon are made from. */
export interface CaptionSource {
  /** The icon's name, e.g. "arrow-left-bold". */
  name: string;
  /** Names of aliases that are other words for the same drawing (no transformation), e.g. ["123"] for "numeric". */
  synonyms: readonly string[];
  /** Category titles the set files the icon under, e.g. ["Arrow"]. */
  categories: readonly string[];
  /** The set's display name, e.g. "Material Design Icons". */
  setName: string;
  /** The set's style declarations (suffixes, prefixes), which give the style title and the size words to leave out. */
  variants?: Pick<IconifyJSON, 'suffixes' | 'prefixes'>;
  /** Whether the icon has its own colours (info.palette), rather than black on white. */
  palette: boolean;
}

/**
 * Every distinct caption the templates give for an icon, the full one first ("an icon of arrow left
 * bold, from the Phosphor set, category arrows"), then one per synonym, then the shorter phrasings.
 */
export function captionCandidates(src: CaptionSource): string[] {
  const variants = src.variants ?? {};
  const phrase = captionWords(src.name, variants).join(' ');
  const concept = conceptWords(src.name, variants).join(' ');
  const category = src.categories.length > 0 ? categoryPhrase(src.categories[0]!) : undefined;
  const style = splitVariant(src.name, variants)
    .style?.toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '' && !GRID_SIZE_WORD.test(w))
    .join(' ');
  const candidates = [
    category === undefined
      ? `an icon of ${phrase}, from the ${src.setName} set`
      : `an icon of ${phrase}, from the ${src.setName} set, category ${category}`,
    ...src.synonyms.map((s) => `an icon of ${captionWords(s, variants).join(' ')}, also called ${phrase}`),
    `${article(phrase)} ${phrase} icon`,
    `${src.palette ? 'a colourful flat' : 'a black and white'} icon of ${phrase}`,
    `the ${phrase} symbol`,
    `${phrase}, an icon from ${src.setName}`,
    ...(category === undefined ? [] : [`${article(category)} ${category} icon showing ${phrase}`]),
    ...(style === undefined || style === '' ? [] : [`${concept} in ${style} style`]),
  ];
  return [...new Set(candidates)];
}

/**
 * The 2–5 captions of an icon, chosen deterministically from {@link captionCandidates}: the full
 * caption, the first synonym's if any, then others in an order fixed by SHA-1 of `seed`, up to a
 * count (2–5) also fixed by the seed.
 *
 * @example
 * const variants = { suffixes: { bold: 'Bold', '': 'Regular' } };
 * iconCaptions({ name: 'arrow-left-bold', synonyms: [], categories: ['Arrows'], setName: 'Phosphor', variants, palette: false }, 'ph:arrow-left-bold');
 */
export function iconCaptions(src: CaptionSource, seed: string): string[] {
  const candidates = captionCandidates(src);
  const fixed = src.synonyms.length > 0 ? candidates.slice(0, 2) : candidates.slice(0, 1);
  const rest = orderByHash(candidates.slice(fixed.length), seed);
  const count = Math.min(candidates.length, Math.max(fixed.length, 2 + (stableHash32(seed) % 4)));
  return [...fixed, ...rest].slice(0, count);
}

/** One drawable entry of a set: an icon, or an alias that transforms its parent into a new drawing. */
export interface SetEntry {
  name: string;
  icon: ResolvedIcon;
  /** Plain aliases (no transformation, no new geometry) that end at this entry: other names for the same drawing. */
  synonyms: string[];
}

const changesDrawing = (alias: IconifyAlias): boolean =>
  (alias.rotate ?? 0) % 4 !== 0 ||
  alias.hFlip === true ||
  alias.vFlip === true ||
  alias.left !== undefined ||
  alias.top !== undefined ||
  alias.width !== undefined ||
  alias.height !== undefined;

/**
 * The set's drawings, sorted by name: every icon, plus every alias whose transformation or geometry
 * makes a different picture; each with its synonyms (plain aliases, sorted). Hidden entries are
 * included, with `icon.hidden` set.
 */
export function listEntries(set: IconifyJSON): SetEntry[] {
  const aliases = set.aliases ?? {};
  const drawings = new Map<string, SetEntry>();
  for (const name of Object.keys(set.icons)) drawings.set(name, { name, icon: resolveIcon(set, name), synonyms: [] });
  for (const [name, alias] of Object.entries(aliases)) {
    if (changesDrawing(alias)) drawings.set(name, { name, icon: resolveIcon(set, name), synonyms: [] });
  }
  for (const [name, alias] of Object.entries(aliases)) {
    if (changesDrawing(alias)) continue;
    // follow plain aliases up to the first drawing: an icon or a transforming alias
    const chain = aliasChain(set, name);
    const target = chain.find((n) => n !== name && drawings.has(n))!;
    if (alias.hidden !== true) drawings.get(target)!.synonyms.push(name);
  }
  const entries = [...drawings.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) entry.synonyms.sort();
  return entries;
}

/**
 * The synonyms worth a caption: those naming another concept than the icon itself (Phosphor's
 * "activity-duotone" → "activity" only repeats the name, with a wrong style word), one per concept,
 * at most `max`, in name order.
 */
export function captionSynonyms(
  name: string,
  synonyms: readonly string[],
  set: Pick<IconifyJSON, 'suffixes' | 'prefixes'>,
  max = 2,
): string[] {
  const seen = new Set([conceptKey(name, set)]);
  const kept: string[] = [];
  for (const synonym of [...synonyms].sort()) {
    const key = conceptKey(synonym, set);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(synonym);
    if (kept.length === max) break;
  }
  return kept;
}
