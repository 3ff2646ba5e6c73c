// What an icon's name says, as the icon data set uses it: the words of a name, its style variant
// (from the set's declared suffixes and prefixes), the concept key that groups the variants of one
// subject ("heart", "heart-outline", "heart-24-filled"), and the captions of an icon. Pure text
// functions of a name and its set's metadata; the choices among captions are fixed by hash.
import type { IconifyJSON } from '@iconify/types';
import { stableHash32 } from '../src/data/stable_hash.js';
import { orderByHash } from './concept_split.js';

/** The style declarations of a set (Iconify metadata): name ending or beginning → style title. */
export type IconVariants = Pick<IconifyJSON, 'suffixes' | 'prefixes'>;

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
export function splitVariant(name: string, set: IconVariants): NameVariant {
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
export function captionWords(name: string, set: IconVariants = {}): string[] {
  const variant = splitVariant(name, set);
  const affixWords = (affix: string | undefined): string[] => nameWords(affix ?? '').filter((w) => !GRID_SIZE_WORD.test(w));
  return [...affixWords(variant.prefix), ...nameWords(variant.base), ...affixWords(variant.suffix)];
}

/**
 * The words naming what an icon shows: the name's words without the set's style suffix/prefix and
 * without {@link STYLE_NOISE_WORDS} or pixel sizes ("24px"), first occurrence order. A name made only
 * of such words keeps all of them.
 */
export function conceptWords(name: string, set: IconVariants = {}): string[] {
  const words = nameWords(splitVariant(name, set).base).filter((w) => !STYLE_NOISE_WORDS.has(w) && !PIXEL_SIZE_WORD.test(w));
  return [...new Set(words.length > 0 ? words : nameWords(name))];
}

/** The concept key: the distinct concept words, sorted, space-joined ("left-arrow-bold" → "arrow left"). */
export function conceptKey(name: string, set: IconVariants = {}): string {
  return [...new Set(conceptWords(name, set))].sort().join(' ');
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
  variants?: IconVariants;
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

/**
 * The synonyms worth a caption: those naming another concept than the icon itself (Phosphor's
 * "activity-duotone" → "activity" only repeats the name, with a wrong style word), one per concept,
 * at most `max`, in name order.
 */
export function captionSynonyms(name: string, synonyms: readonly string[], set: IconVariants, max = 2): string[] {
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
