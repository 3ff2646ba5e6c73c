// `npm run data:icons`: renders the icons of eleven open-licence Iconify sets (the npm packages
// @iconify-json/<set>, pinned in package.json) to PNG and writes an image–caption data set in the
// COCO captions format, split train/test by concept so that test concepts are unseen in training.
// Run with --help for the options. The output is a function of the package versions and the
// options only: same inputs, same bytes. Reading the sets is scripts/iconify_sets.ts (over
// @iconify/utils), names to concepts and captions scripts/icon_captions.ts, the split by hash
// scripts/concept_split.ts; this file renders, lays out and writes.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import type { IconifyInfo, IconifyJSON } from '@iconify/types';
import { iconSvgDocument, listEntries, loadIconSetPackage, unusableBody, type LoadedIconSet, type SetEntry } from './iconify_sets.js';
import { captionSynonyms, categoriesOf, conceptKey, iconCaptions } from './icon_captions.js';
import { orderByHash, splitByConcept, type Split } from './concept_split.js';

/** The sets used, in output order; all under open licences (recorded per set in stats.json). */
export const ICON_SETS = [
  'mdi',
  'tabler',
  'lucide',
  'ph',
  'carbon',
  'fluent',
  'material-symbols',
  'game-icons',
  'healthicons',
  'flat-color-icons',
  'icon-park',
] as const;

/**
 * The second test collection's sets, of other drawing styles: colour (Streamline Ultimate Color,
 * Fluent Color), hand-drawn colour (Streamline Freehand Color) and pixel art (Pixelarticons,
 * Streamline Pixel). None is a training set and none is an emoji set.
 */
export const OTHER_ICON_SETS = [
  'streamline-ultimate-color',
  'streamline-freehand-color',
  'fluent-color',
  'pixelarticons',
  'streamline-pixel',
] as const;

const USAGE = `Usage: node dist/scripts/build-icon-dataset.js [options]

Renders Iconify icon sets (npm packages @iconify-json/<set>) to PNG and writes COCO-format
caption files, split train/test by concept; then a second test collection of other drawing
styles (other sets, only concepts unseen in training) into its own directory.

Options:
  --out DIR            output directory (default data/icons); an earlier build there is replaced
  --other-out DIR      the second collection's directory (default: the --out directory + "-other")
  --collection C       both (default), main or other: which to build
  --size N             image side in pixels (default 64)
  --max-per-set N      at most N images per set, chosen in a fixed hash order (default 3000)
  --limit N            a tiny build: N images in all, spread evenly over the sets
  --sets A,B,...       a subset of: ${ICON_SETS.join(', ')} (default all)
  --other-sets A,B,... a subset of: ${OTHER_ICON_SETS.join(', ')} (default all)
  --test-fraction X    share of concepts held out for test (default 0.1)
  --help               print this text
`;

export interface BuildOptions {
  outDir: string;
  size: number;
  maxPerSet: number;
  /** Total images, spread evenly over the sets; undefined for no limit. */
  limit?: number;
  sets: readonly string[];
  testFraction: number;
  log?: (line: string) => void;
}

export interface RenderedPng {
  png: Buffer;
  width: number;
  height: number;
  /** Pixels that differ from the white background by more than 8/255 in some channel. */
  inkPixels: number;
}

/** Renders an SVG document at its own pixel size on white, without system fonts (icons have no text), to PNG. */
export function renderSvgToPng(svg: string): RenderedPng {
  const image = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'original' },
    font: { loadSystemFonts: false },
    logLevel: 'off',
  }).render();
  const pixels = image.pixels;
  let inkPixels = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i]! < 247 || pixels[i + 1]! < 247 || pixels[i + 2]! < 247) inkPixels++;
  }
  return { png: image.asPng(), width: image.width, height: image.height, inkPixels };
}

type SkipReason = 'empty' | 'animated' | 'renderFailed' | 'blank';

export interface SetStats<S extends string = Split> {
  prefix: string;
  name: string;
  package: string;
  license: IconifyInfo['license'];
  author?: { name: string; url?: string };
  palette: boolean;
  /** Icons plus aliases that transform their parent into another drawing. */
  drawings: number;
  /** Kept by the set for old names only; never rendered. */
  hidden: number;
  /** Drawings tried, in hash order, until the set's quota was met or the set ran out. */
  attempted: number;
  skipped: Record<SkipReason, number>;
  /** Second collection only: visible drawings left out because a concept they carry is on the training side, or their set already gave one image of their concept. */
  excluded?: { seenInTraining: number; repeatedConcept: number };
  images: Record<S, number>;
  captions: Record<S, number>;
}

/** The build options stats.json records (the output folder and logger left out). */
type RecordedOptions = { size: number; maxPerSet: number; limit: number | null; sets: string[]; testFraction: number };

function recordedOptions(options: BuildOptions): RecordedOptions {
  return {
    size: options.size,
    maxPerSet: options.maxPerSet,
    limit: options.limit ?? null,
    sets: [...options.sets],
    testFraction: options.testFraction,
  };
}

export interface BuildStats<S extends string = Split> {
  options: RecordedOptions;
  sets: SetStats<S>[];
  totals: {
    images: Record<S, number>;
    captions: Record<S, number>;
    concepts: Record<S, number>;
    skipped: Record<SkipReason, number>;
  };
}

interface BuiltImage<S extends string> {
  prefix: string;
  name: string;
  concept: string;
  split: S;
  captions: string[];
}

interface CocoCaptions {
  info: Record<string, unknown>;
  licenses: { id: number; name: string; spdx: string | null; url: string | null }[];
  images: {
    id: number;
    file_name: string;
    width: number;
    height: number;
    license: number;
    icon_set: string;
    icon_name: string;
    concept: string;
  }[];
  annotations: { id: number; image_id: number; caption: string }[];
}

const SAFE_NAME = /^[a-z0-9]+(?:-+[a-z0-9]+)*$/;

/** How many images each set may give: `maxPerSet`, or with a limit, the limit shared out evenly (first sets get the remainder). */
function quotas(count: number, maxPerSet: number, limit: number | undefined): number[] {
  return Array.from({ length: count }, (_, i) =>
    limit === undefined ? maxPerSet : Math.min(maxPerSet, Math.floor(limit / count) + (i < limit % count ? 1 : 0)),
  );
}

function prepareOutDir(outDir: string): void {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    if (!existsSync(join(outDir, 'stats.json'))) {
      throw new Error(`${outDir} is not empty and holds no stats.json of an earlier build; choose another --out or empty it`);
    }
    rmSync(join(outDir, 'images'), { recursive: true, force: true });
  }
  mkdirSync(join(outDir, 'images'), { recursive: true });
}

/** The concept keys an entry carries: its own name's and those of the synonyms its captions use. */
function entryConceptKeys(entry: SetEntry, set: IconifyJSON): string[] {
  return [conceptKey(entry.name, set), ...captionSynonyms(entry.name, entry.synonyms, set).map((n) => conceptKey(n, set))];
}

/**
 * The side of every concept key of the sets' visible drawings. Decided before any capping, so
 * that a concept's side does not depend on --max-per-set or --limit.
 */
function conceptSides(loaded: readonly LoadedIconSet[], entriesPerSet: readonly SetEntry[][], testFraction: number): Map<string, Split> {
  const conceptItems: string[][] = [];
  loaded.forEach(({ set }, s) => {
    for (const entry of entriesPerSet[s]!) if (!entry.icon.hidden) conceptItems.push(entryConceptKeys(entry, set));
  });
  return splitByConcept(conceptItems, testFraction);
}

/**
 * Renders a set's visible drawings in its fixed hash order into outDir/images/<set>/, up to
 * `quota` images, each on the side `sideOf` gives it (undefined: leave it out, unrendered).
 */
function renderSet<S extends string>(
  { prefix, packageId, set }: LoadedIconSet,
  entries: readonly SetEntry[],
  quota: number,
  sides: readonly S[],
  sideOf: (entry: SetEntry) => S | undefined,
  options: Pick<BuildOptions, 'outDir' | 'size'>,
): { stats: SetStats<S>; built: BuiltImage<S>[] } {
  const info = set.info!;
  const perSide = (): Record<S, number> => Object.fromEntries(sides.map((side) => [side, 0])) as Record<S, number>;
  const stats: SetStats<S> = {
    prefix,
    name: info.name,
    package: packageId,
    license: info.license,
    ...(info.author === undefined ? {} : { author: info.author }),
    palette: info.palette ?? false,
    drawings: entries.length,
    hidden: entries.filter((e) => e.icon.hidden).length,
    attempted: 0,
    skipped: { empty: 0, animated: 0, renderFailed: 0, blank: 0 },
    images: perSide(),
    captions: perSide(),
  };
  const built: BuiltImage<S>[] = [];
  const visible = new Map(entries.filter((e) => !e.icon.hidden).map((e) => [e.name, e]));
  mkdirSync(join(options.outDir, 'images', prefix), { recursive: true });
  let accepted = 0;
  for (const name of orderByHash([...visible.keys()], prefix)) {
    if (accepted >= quota) break;
    const entry = visible.get(name)!;
    const split = sideOf(entry);
    if (split === undefined) continue;
    if (!SAFE_NAME.test(name)) throw new Error(`${packageId}: icon name "${name}" is not a safe file name`);
    stats.attempted++;
    const unusable = unusableBody(entry.icon.body);
    if (unusable !== undefined) {
      stats.skipped[unusable]++;
      continue;
    }
    let rendered: RenderedPng;
    try {
      rendered = renderSvgToPng(iconSvgDocument(entry.icon, { size: options.size, color: '#000' }));
    } catch {
      stats.skipped.renderFailed++;
      continue;
    }
    if (rendered.inkPixels === 0) {
      stats.skipped.blank++;
      continue;
    }
    writeFileSync(join(options.outDir, 'images', prefix, `${name}.png`), rendered.png);
    const synonyms = captionSynonyms(name, entry.synonyms, set);
    const captions = iconCaptions(
      {
        name,
        synonyms,
        categories: categoriesOf(set, [name, ...entry.synonyms]),
        setName: info.name,
        variants: set,
        palette: info.palette ?? false,
      },
      `${prefix}:${name}`,
    );
    built.push({ prefix, name, concept: conceptKey(name, set), split, captions });
    stats.images[split]++;
    stats.captions[split] += captions.length;
    accepted++;
  }
  return { stats, built };
}

function logSet<S extends string>(log: (line: string) => void, stats: SetStats<S>): void {
  const images = Object.entries(stats.images)
    .map(([side, n]) => `${n as number} ${side}`)
    .join(' + ');
  const skipped = Object.entries(stats.skipped)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const excluded =
    stats.excluded === undefined
      ? ''
      : `; left out ${stats.excluded.seenInTraining} seen in training, ${stats.excluded.repeatedConcept} repeated concepts`;
  log(`${stats.prefix}: ${images} images, skipped ${skipped}${excluded}`);
}

/**
 * Sorts the images (set order, then name, so an id names one image in every file of a build) and
 * writes one COCO captions file per side as outDir/captions_<side>.json.
 */
function writeCocoFiles<S extends string>(
  built: BuiltImage<S>[],
  loaded: readonly LoadedIconSet[],
  sides: readonly S[],
  options: Pick<BuildOptions, 'outDir' | 'size' | 'testFraction'>,
  description: (side: S) => string,
): void {
  const setIndex = new Map(loaded.map(({ prefix }, i) => [prefix, i]));
  built.sort((a, b) => setIndex.get(a.prefix)! - setIndex.get(b.prefix)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const licenses = loaded.map(({ set }, i) => ({
    id: i + 1,
    name: set.info!.license.title,
    spdx: set.info!.license.spdx ?? null,
    url: set.info!.license.url ?? null,
  }));
  const files = new Map<S, CocoCaptions>(
    sides.map((split) => [
      split,
      {
        info: {
          description: description(split),
          version: '1.0',
          split,
          icon_sets: Object.fromEntries(loaded.map(({ prefix, packageId }) => [prefix, packageId])),
          test_fraction: options.testFraction,
        },
        licenses,
        images: [],
        annotations: [],
      },
    ]),
  );
  let annotationId = 0;
  built.forEach((image, i) => {
    const file = files.get(image.split)!;
    file.images.push({
      id: i + 1,
      file_name: `${image.prefix}/${image.name}.png`,
      width: options.size,
      height: options.size,
      license: setIndex.get(image.prefix)! + 1,
      icon_set: image.prefix,
      icon_name: image.name,
      concept: image.concept,
    });
    for (const caption of image.captions) file.annotations.push({ id: ++annotationId, image_id: i + 1, caption });
  });
  for (const [split, file] of files) writeFileSync(join(options.outDir, `captions_${split}.json`), JSON.stringify(file));
}

function totalsOf<S extends string>(
  setStats: readonly SetStats<S>[],
  built: readonly BuiltImage<S>[],
  sides: readonly S[],
): BuildStats<S>['totals'] {
  const perSide = (pick: (s: SetStats<S>, side: S) => number): Record<S, number> =>
    Object.fromEntries(sides.map((side) => [side, setStats.reduce((acc, s) => acc + pick(s, side), 0)])) as Record<S, number>;
  const skipped = (reason: SkipReason): number => setStats.reduce((acc, s) => acc + s.skipped[reason], 0);
  return {
    images: perSide((s, side) => s.images[side]),
    captions: perSide((s, side) => s.captions[side]),
    concepts: Object.fromEntries(
      sides.map((side) => [side, new Set(built.filter((b) => b.split === side).map((b) => b.concept)).size]),
    ) as Record<S, number>,
    skipped: { empty: skipped('empty'), animated: skipped('animated'), renderFailed: skipped('renderFailed'), blank: skipped('blank') },
  };
}

function checkSets(sets: readonly string[], known: readonly string[], flag: string): void {
  for (const prefix of sets) {
    if (!known.includes(prefix)) throw new Error(`unknown icon set "${prefix}" for ${flag}; choose from ${known.join(', ')}`);
  }
}

/**
 * Builds the data set into `options.outDir`: images/<set>/<name>.png, captions_train.json,
 * captions_test.json, stats.json and README.md. Returns the statistics written to stats.json.
 */
export function buildIconDataset(options: BuildOptions): BuildStats {
  const log = options.log ?? ((): void => {});
  checkSets(options.sets, ICON_SETS, '--sets');
  prepareOutDir(options.outDir);
  const loaded = options.sets.map(loadIconSetPackage);
  const entriesPerSet = loaded.map(({ set }) => listEntries(set));
  const sides = conceptSides(loaded, entriesPerSet, options.testFraction);
  const quota = quotas(loaded.length, options.maxPerSet, options.limit);
  const splits = ['train', 'test'] as const;
  const built: BuiltImage<Split>[] = [];
  const setStats: SetStats[] = [];
  loaded.forEach((one, s) => {
    const rendered = renderSet(one, entriesPerSet[s]!, quota[s]!, splits, (entry) => sides.get(conceptKey(entry.name, one.set))!, options);
    logSet(log, rendered.stats);
    setStats.push(rendered.stats);
    built.push(...rendered.built);
  });
  writeCocoFiles(
    built,
    loaded,
    splits,
    options,
    (split) =>
      `Iconify icons rendered ${options.size}x${options.size} black on white, captions from icon names, aliases, categories and set names; ${split} split, by concept`,
  );
  const trainConcepts = new Set(built.filter((b) => b.split === 'train').map((b) => b.concept));
  for (const image of built) {
    if (image.split === 'test' && trainConcepts.has(image.concept))
      throw new Error(`internal: concept "${image.concept}" landed on both sides`);
  }
  const stats: BuildStats = {
    options: recordedOptions(options),
    sets: setStats,
    totals: totalsOf(setStats, built, splits),
  };
  writeFileSync(join(options.outDir, 'stats.json'), `${JSON.stringify(stats, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'README.md'), datasetReadme(stats));
  return stats;
}

export interface OtherCollectionOptions extends BuildOptions {
  /** The training sets whose training-side concepts are left out (default {@link ICON_SETS}, all of them, whatever was built). */
  trainingSets?: readonly string[];
}

/**
 * Builds the second test collection into `options.outDir` (images/<set>/<name>.png,
 * captions_other.json, stats.json, README.md) from sets of other drawing styles
 * ({@link OTHER_ICON_SETS}). A drawing is kept only when no concept key it carries (its name's,
 * its caption synonyms') is on the training side of the main data set's split, computed over every
 * visible drawing of the training sets at the same test fraction; and only the first drawing in
 * hash order of each concept in each set, so that a set's size variants (Fluent Color's 16 to 48)
 * do not fill the gallery with near-identical images.
 */
export function buildOtherIconCollection(options: OtherCollectionOptions): BuildStats<'other'> {
  const log = options.log ?? ((): void => {});
  const trainingSets = options.trainingSets ?? ICON_SETS;
  checkSets(options.sets, OTHER_ICON_SETS, '--other-sets');
  checkSets(trainingSets, ICON_SETS, 'trainingSets');
  const training = trainingSets.map(loadIconSetPackage);
  const trainingSides = conceptSides(
    training,
    training.map(({ set }) => listEntries(set)),
    options.testFraction,
  );
  prepareOutDir(options.outDir);
  const loaded = options.sets.map(loadIconSetPackage);
  const quota = quotas(loaded.length, options.maxPerSet, options.limit);
  const sides = ['other'] as const;
  const built: BuiltImage<'other'>[] = [];
  const setStats: SetStats<'other'>[] = [];
  loaded.forEach((one, s) => {
    const excluded = { seenInTraining: 0, repeatedConcept: 0 };
    const taken = new Set<string>();
    const sideOf = (entry: SetEntry): 'other' | undefined => {
      const keys = entryConceptKeys(entry, one.set);
      if (keys.some((key) => trainingSides.get(key) === 'train')) {
        excluded.seenInTraining++;
        return undefined;
      }
      if (taken.has(keys[0]!)) {
        excluded.repeatedConcept++;
        return undefined;
      }
      taken.add(keys[0]!);
      return 'other';
    };
    const rendered = renderSet(one, listEntries(one.set), quota[s]!, sides, sideOf, options);
    rendered.stats.excluded = excluded;
    logSet(log, rendered.stats);
    setStats.push(rendered.stats);
    built.push(...rendered.built);
  });
  writeCocoFiles(
    built,
    loaded,
    sides,
    options,
    () =>
      `Iconify icons of other drawing styles (colour, hand-drawn, pixel) rendered ${options.size}x${options.size} on white, ` +
      `captions as in the main set; only concepts on no training-side key of the main set's split`,
  );
  const stats: BuildStats<'other'> = {
    options: recordedOptions(options),
    sets: setStats,
    totals: totalsOf(setStats, built, sides),
  };
  writeFileSync(join(options.outDir, 'stats.json'), `${JSON.stringify(stats, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'README.md'), otherCollectionReadme(stats, trainingSets));
  return stats;
}

function otherCollectionReadme(stats: BuildStats<'other'>, trainingSets: readonly string[]): string {
  const { options: o, totals: t } = stats;
  const rows = stats.sets.map(
    (s) =>
      `| ${s.prefix} | ${s.name} | ${s.package.split('@').pop()} | ${s.license.spdx ?? s.license.title} | ${s.images.other} | ${s.captions.other} | ` +
      `${s.excluded!.seenInTraining} | ${s.excluded!.repeatedConcept} |`,
  );
  return `# Second icon test collection

Built by \`scripts/build-icon-dataset.ts\` (\`npm run data:icons\` builds it beside the main set) with size ${o.size}, max
${o.maxPerSet} per set${o.limit === null ? '' : `, limit ${o.limit}`}. A held-out check of another drawing style: none of these
sets is among the training sets (${trainingSets.join(', ')}), none is an emoji set, and an icon is kept only when no concept
key it carries is on the training side of the main set's split (test fraction ${o.testFraction}); one image per concept per set.

- \`images/<set>/<name>.png\`: ${o.size}×${o.size} RGBA PNG on white; monochrome sets drawn black, colour sets in their colours.
- \`captions_other.json\`: COCO captions format, ${t.images.other} images, ${t.captions.other} captions, ${t.concepts.other} concepts.

| set | name | version | licence | images | captions | left out: concept seen in training | left out: repeated concept |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Licences, as each set's info.json states them:

${stats.sets.map((s) => `- ${s.name} (${s.prefix}): ${s.license.title}${s.license.url ? `, ${s.license.url}` : ''}${s.author ? `; by ${s.author.name}` : ''}`).join('\n')}
`;
}

function datasetReadme(stats: BuildStats): string {
  const { options: o, totals: t } = stats;
  const rows = stats.sets.map(
    (s) =>
      `| ${s.prefix} | ${s.name} | ${s.package.split('@').pop()} | ${s.license.spdx ?? s.license.title} | ${s.images.train} | ${s.images.test} | ` +
      `${s.captions.train} | ${s.captions.test} | ${s.hidden} | ${s.skipped.empty + s.skipped.animated + s.skipped.renderFailed + s.skipped.blank} |`,
  );
  return `# Icon captions data set

Built by \`scripts/build-icon-dataset.ts\` (\`npm run data:icons\`) with size ${o.size}, max ${o.maxPerSet} per set${
    o.limit === null ? '' : `, limit ${o.limit}`
  }, test fraction ${o.testFraction}. Rebuilding with the same package versions and options gives the same files.

- \`images/<set>/<name>.png\`: ${o.size}×${o.size} RGBA PNG on white; monochrome sets drawn black, colour sets in their colours.
- \`captions_train.json\`, \`captions_test.json\`: COCO captions format; \`file_name\` is relative to \`images/\`;
  ids are unique across both files. Each image also names its \`icon_set\`, \`icon_name\` and \`concept\`.
- Split by concept: an icon's name less its style words (outline, filled, 24, ...) is its concept; concepts
  (merged with those of the aliases its captions use) go to test where SHA-1 of the sorted concept words falls
  below the test fraction, so no test concept appears in training.

Totals: ${t.images.train} train images (${t.captions.train} captions, ${t.concepts.train} concepts), ${t.images.test} test images
(${t.captions.test} captions, ${t.concepts.test} concepts). Skipped while rendering: ${t.skipped.empty} empty, ${t.skipped.animated} animated,
${t.skipped.renderFailed} failed to render, ${t.skipped.blank} blank.

| set | name | version | licence | train images | test images | train captions | test captions | hidden (not used) | skipped |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Licences, as each set's info.json states them:

${stats.sets.map((s) => `- ${s.name} (${s.prefix}): ${s.license.title}${s.license.url ? `, ${s.license.url}` : ''}${s.author ? `; by ${s.author.name}` : ''}`).join('\n')}
`;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

function main(): void {
  const { values: args } = parseArgs({
    options: {
      out: { type: 'string', default: 'data/icons' },
      size: { type: 'string', default: '64' },
      'max-per-set': { type: 'string', default: '3000' },
      limit: { type: 'string' },
      sets: { type: 'string', default: ICON_SETS.join(',') },
      'other-out': { type: 'string' },
      'other-sets': { type: 'string', default: OTHER_ICON_SETS.join(',') },
      collection: { type: 'string', default: 'both' },
      'test-fraction': { type: 'string', default: '0.1' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const testFraction = Number(args['test-fraction']);
  if (!(testFraction >= 0 && testFraction <= 1)) throw new Error(`--test-fraction must be in [0, 1], got "${args['test-fraction']}"`);
  if (!['both', 'main', 'other'].includes(args.collection))
    throw new Error(`--collection must be both, main or other, got "${args.collection}"`);
  const common = {
    size: positiveInt(args.size, '--size'),
    maxPerSet: positiveInt(args['max-per-set'], '--max-per-set'),
    ...(args.limit === undefined ? {} : { limit: positiveInt(args.limit, '--limit') }),
    testFraction,
    log: (line: string) => console.log(line),
  };
  const seconds = (start: number): string => ((performance.now() - start) / 1000).toFixed(1);
  if (args.collection !== 'other') {
    const start = performance.now();
    const stats = buildIconDataset({ ...common, outDir: args.out, sets: args.sets.split(',').filter((s) => s !== '') });
    const { images, captions, concepts } = stats.totals;
    console.log(
      `${args.out}: ${images.train} train images (${captions.train} captions, ${concepts.train} concepts), ` +
        `${images.test} test images (${captions.test} captions, ${concepts.test} concepts) in ${seconds(start)} s`,
    );
  }
  if (args.collection !== 'main') {
    const start = performance.now();
    const outDir = args['other-out'] ?? `${args.out.replace(/\/+$/, '')}-other`;
    const stats = buildOtherIconCollection({ ...common, outDir, sets: args['other-sets'].split(',').filter((s) => s !== '') });
    const { images, captions, concepts } = stats.totals;
    console.log(
      `${outDir}: ${images.other} images (${captions.other} captions, ${concepts.other} concepts unseen in training) in ${seconds(start)} s`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (err) {
    console.error(`build-icon-dataset: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
