// Iconify icon sets (https://iconify.design/docs/types/iconify-json.html) as the icon data set
// reads them: load an @iconify-json/<prefix> package, list its drawings, and write one drawing as a
// standalone SVG document. The format itself (validation, alias resolution, the SVG transforms of
// flips and rotations) is @iconify/utils'; what is ours is which names are drawings of their own and
// which are only other words for one (synonyms), and which bodies cannot give a still image.
//
// The per-set npm packages split one set into icons.json, info.json (name, licence, palette),
// metadata.json (categories, suffixes, prefixes: style variants named by a name's ending or
// beginning) and chars.json (font code points); the single-file format holds them all.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { IconifyAlias, IconifyJSON } from '@iconify/types';
import {
  defaultExtendedIconProps,
  getIconData,
  getIconsTree,
  iconToHTML,
  iconToSVG,
  validateIconSet,
  type FullExtendedIconifyIcon,
} from '@iconify/utils';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Merges the files of an @iconify-json/<prefix> package (icons.json, info.json, metadata.json,
 * chars.json) into one set, as the single-file format holds it, and checks it with Iconify's
 * validateIconSet (bodies, property types, aliases that end at an icon, chars that name one).
 * Errors start with `source`.
 *
 * @example
 * mergeIconSetPackage({ icons: readJson('icons.json'), info: readJson('info.json') }, '@iconify-json/mdi@1.2.3');
 */
export function mergeIconSetPackage(
  parts: { icons: unknown; info?: unknown; metadata?: unknown; chars?: unknown },
  source: string,
): IconifyJSON {
  if (!isObject(parts.icons)) throw new Error(`${source}: icons.json must be a JSON object`);
  const metadata = isObject(parts.metadata) ? parts.metadata : {};
  const merged = {
    ...parts.icons,
    ...(parts.info === undefined ? {} : { info: parts.info }),
    ...(metadata.categories === undefined ? {} : { categories: metadata.categories }),
    ...(metadata.suffixes === undefined ? {} : { suffixes: metadata.suffixes }),
    ...(metadata.prefixes === undefined ? {} : { prefixes: metadata.prefixes }),
    ...(parts.chars === undefined ? {} : { chars: parts.chars }),
  };
  try {
    return validateIconSet(merged);
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
}

export interface LoadedIconSet {
  prefix: string;
  /** The npm package and version, e.g. "@iconify-json/mdi@1.2.3". */
  packageId: string;
  set: IconifyJSON;
}

const require = createRequire(import.meta.url);

/** Reads the @iconify-json/<prefix> package installed in node_modules. */
export function loadIconSetPackage(prefix: string): LoadedIconSet {
  const packageName = `@iconify-json/${prefix}`;
  let dir: string;
  try {
    dir = dirname(require.resolve(`${packageName}/package.json`));
  } catch {
    throw new Error(`icon set "${prefix}": package ${packageName} is not installed; run npm ci (it is a devDependency)`);
  }
  const read = (file: string): unknown => {
    const path = join(dir, file);
    return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
  };
  const pkg = read('package.json') as { version: string };
  const packageId = `${packageName}@${pkg.version}`;
  const set = mergeIconSetPackage(
    { icons: read('icons.json'), info: read('info.json'), metadata: read('metadata.json'), chars: read('chars.json') },
    packageId,
  );
  if (set.prefix !== prefix) throw new Error(`${packageName}: icons.json has prefix "${set.prefix}", expected "${prefix}"`);
  // the data set records each set's licence; validateIconSet does not look at info
  if (typeof set.info?.name !== 'string' || typeof set.info.license?.title !== 'string') {
    throw new Error(`${packageId}: info.json gives no set name and licence title to record`);
  }
  return { prefix, packageId, set };
}

/**
 * An icon or alias with every field filled in, as Iconify resolves it: transformations compose along
 * the alias chain (rotations add modulo 4, each flip toggles), geometry and `hidden` come from the
 * nearest link that sets them, then from the set, then 16×16 at (0, 0), not hidden.
 *
 * @example
 * resolveIcon(set, 'arrow-right'); // an alias {parent: 'arrow-left', hFlip: true} → arrow-left's body, hFlip true
 */
export function resolveIcon(set: IconifyJSON, name: string): FullExtendedIconifyIcon {
  const data = getIconData(set, name);
  if (data === null) throw new Error(`${set.prefix}: "${name}" is neither an icon nor an alias that ends at one`);
  return { ...defaultExtendedIconProps, ...data };
}

/**
 * A standalone SVG document of a resolved icon, `size`×`size` pixels, the icon's box fitted and
 * centred (SVG's default preserveAspectRatio), built by Iconify's iconToSVG and iconToHTML.
 * `currentColor` (the colour of monochrome sets) is replaced by `color`, since the renderer has no
 * CSS colour to inherit.
 *
 * @example
 * iconSvgDocument(resolveIcon(set, 'home'), { size: 64 }); // '<svg xmlns=... width="64" height="64" viewBox="0 0 24 24">...</svg>'
 */
export function iconSvgDocument(icon: FullExtendedIconifyIcon, options: { size?: number; color?: string } = {}): string {
  const size = options.size ?? 64;
  const color = options.color ?? '#000';
  if (!(Number.isInteger(size) && size > 0)) throw new RangeError(`iconSvgDocument: size must be a positive integer, got ${size}`);
  const svg = iconToSVG({ ...icon, body: icon.body.replaceAll('currentColor', color) }, { width: size, height: size });
  return iconToHTML(svg.body, svg.attributes);
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

/** One drawable entry of a set: an icon, or an alias that transforms its parent into a new drawing. */
export interface SetEntry {
  name: string;
  icon: FullExtendedIconifyIcon;
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
 * makes a different picture; each with its synonyms (plain aliases that are not hidden, sorted).
 * Hidden entries are included, with `icon.hidden` set.
 */
export function listEntries(set: IconifyJSON): SetEntry[] {
  const aliases = set.aliases ?? {};
  // name → the names its alias chain passes through, ending at an icon ([] for an icon)
  const chains = getIconsTree(set);
  const drawings = new Map<string, SetEntry>();
  for (const name of Object.keys(set.icons)) drawings.set(name, { name, icon: resolveIcon(set, name), synonyms: [] });
  for (const [name, alias] of Object.entries(aliases)) {
    if (changesDrawing(alias)) drawings.set(name, { name, icon: resolveIcon(set, name), synonyms: [] });
  }
  for (const [name, alias] of Object.entries(aliases)) {
    if (changesDrawing(alias)) continue;
    // a plain alias names the first drawing on its chain: an icon or a transforming alias
    const target = chains[name]?.find((n) => drawings.has(n));
    if (target === undefined) throw new Error(`${set.prefix}: alias "${name}" ends at no icon`);
    if (!resolveIcon(set, name).hidden) drawings.get(target)!.synonyms.push(name);
  }
  const entries = [...drawings.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) entry.synonyms.sort();
  return entries;
}
