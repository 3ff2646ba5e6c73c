// `npm run data:icons`: renders the icons of eleven open-licence Iconify sets (the npm packages
// @iconify-json/<set>, pinned in package.json) to PNG and writes an image–caption data set in the
// COCO captions format, split train/test by concept so that test concepts are unseen in training.
// Run with --help for the options. The output is a function of the package versions and the
// options only: same inputs, same bytes.
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import {
  captionSynonyms,
  categoriesOf,
  conceptKey,
  iconCaptions,
  iconToSvg,
  listEntries,
  mergeIconSetPackage,
  orderByHash,
  splitByConcept,
  unusableBody,
  type IconifyJSON,
  type IconifyLicense,
  type Split,
} from '../src/data/iconify.js';

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

const USAGE = `Usage: node dist/scripts/build-icon-dataset.js [options]

Renders Iconify icon sets (npm packages @iconify-json/<set>) to PNG and writes COCO-format
caption files, split train/test by concept.

Options:
  --out DIR            output directory (default data/icons); an earlier build there is replaced
  --size N             image side in pixels (default 64)
  --max-per-set N      at most N images per set, chosen in a fixed hash order (default 3000)
  --limit N            a tiny build: N images in all, spread evenly over the sets
  --sets A,B,...       a subset of: ${ICON_SETS.join(', ')} (default all)
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
  const set = mergeIconSetPackage(
    { icons: read('icons.json'), info: read('info.json'), metadata: read('metadata.json'), chars: read('chars.json') },
    `${packageName}@${pkg.version}`,
  );
  if (set.prefix !== prefix) throw new Error(`${packageName}: icons.json has prefix "${set.prefix}", expected "${prefix}"`);
  if (set.info === undefined) throw new Error(`${packageName}: no info.json, so no licence to record`);
  return { prefix, packageId: `${packageName}@${pkg.version}`, set };
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

export interface SetStats {
  prefix: string;
  name: string;
  package: string;
  license: IconifyLicense;
  author?: { name: string; url?: string };
  palette: boolean;
  /** Icons plus aliases that transform their parent into another drawing. */
  drawings: number;
  /** Kept by the set for old names only; never rendered. */
  hidden: number;
  /** Drawings tried, in hash order, until the set's quota was met or the set ran out. */
  attempted: number;
  skipped: Record<SkipReason, number>;
  images: Record<Split, number>;
  captions: Record<Split, number>;
}

export interface BuildStats {
  options: { size: number; maxPerSet: number; limit: number | null; sets: string[]; testFraction: number };
  sets: SetStats[];
  totals: {
    images: Record<Split, number>;
    captions: Record<Split, number>;
    concepts: Record<Split, number>;
    skipped: Record<SkipReason, number>;
  };
}

interface BuiltImage {
  prefix: string;
  name: string;
  concept: string;
  split: Split;
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

/**
 * Builds the data set into `options.outDir`: images/<set>/<name>.png, captions_train.json,
 * captions_test.json, stats.json and README.md. Returns the statistics written to stats.json.
 */
export function buildIconDataset(options: BuildOptions): BuildStats {
  const log = options.log ?? ((): void => {});
  for (const prefix of options.sets) {
    if (!(ICON_SETS as readonly string[]).includes(prefix))
      throw new Error(`unknown icon set "${prefix}"; choose from ${ICON_SETS.join(', ')}`);
  }
  prepareOutDir(options.outDir);
  const loaded = options.sets.map(loadIconSetPackage);
  const entriesPerSet = loaded.map(({ set }) => listEntries(set));

  // Concept sides are decided over every visible drawing of the chosen sets, before any capping,
  // so that a concept's side does not depend on --max-per-set or --limit.
  const conceptItems: string[][] = [];
  loaded.forEach(({ set }, s) => {
    for (const entry of entriesPerSet[s]!) {
      if (entry.icon.hidden) continue;
      conceptItems.push([conceptKey(entry.name, set), ...captionSynonyms(entry.name, entry.synonyms, set).map((n) => conceptKey(n, set))]);
    }
  });
  const sides = splitByConcept(conceptItems, options.testFraction);

  const quota = quotas(loaded.length, options.maxPerSet, options.limit);
  const built: BuiltImage[] = [];
  const setStats: SetStats[] = [];
  loaded.forEach(({ prefix, packageId, set }, s) => {
    const info = set.info!;
    const stats: SetStats = {
      prefix,
      name: info.name,
      package: packageId,
      license: info.license,
      ...(info.author === undefined ? {} : { author: info.author }),
      palette: info.palette ?? false,
      drawings: entriesPerSet[s]!.length,
      hidden: entriesPerSet[s]!.filter((e) => e.icon.hidden).length,
      attempted: 0,
      skipped: { empty: 0, animated: 0, renderFailed: 0, blank: 0 },
      images: { train: 0, test: 0 },
      captions: { train: 0, test: 0 },
    };
    const visible = new Map(entriesPerSet[s]!.filter((e) => !e.icon.hidden).map((e) => [e.name, e]));
    mkdirSync(join(options.outDir, 'images', prefix), { recursive: true });
    let accepted = 0;
    for (const name of orderByHash([...visible.keys()], prefix)) {
      if (accepted >= quota[s]!) break;
      const entry = visible.get(name)!;
      if (!SAFE_NAME.test(name)) throw new Error(`${packageId}: icon name "${name}" is not a safe file name`);
      stats.attempted++;
      const unusable = unusableBody(entry.icon.body);
      if (unusable !== undefined) {
        stats.skipped[unusable]++;
        continue;
      }
      let rendered: RenderedPng;
      try {
        rendered = renderSvgToPng(iconToSvg(entry.icon, { size: options.size, color: '#000' }));
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
      const concept = conceptKey(name, set);
      const split = sides.get(concept)!;
      built.push({ prefix, name, concept, split, captions });
      stats.images[split]++;
      stats.captions[split] += captions.length;
      accepted++;
    }
    log(
      `${prefix}: ${stats.images.train} train + ${stats.images.test} test images, ` +
        `skipped ${Object.entries(stats.skipped)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    );
    setStats.push(stats);
  });

  // Ids follow set order, then name order, over both splits, so an id names one image everywhere.
  const setIndex = new Map(loaded.map(({ prefix }, i) => [prefix, i]));
  built.sort((a, b) => setIndex.get(a.prefix)! - setIndex.get(b.prefix)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const licenses = loaded.map(({ set }, i) => ({
    id: i + 1,
    name: set.info!.license.title,
    spdx: set.info!.license.spdx ?? null,
    url: set.info!.license.url ?? null,
  }));
  const coco = (split: Split): CocoCaptions => ({
    info: {
      description: `Iconify icons rendered ${options.size}x${options.size} black on white, captions from icon names, aliases, categories and set names; ${split} split, by concept`,
      version: '1.0',
      split,
      icon_sets: Object.fromEntries(loaded.map(({ prefix, packageId }) => [prefix, packageId])),
      test_fraction: options.testFraction,
    },
    licenses,
    images: [],
    annotations: [],
  });
  const files: Record<Split, CocoCaptions> = { train: coco('train'), test: coco('test') };
  let annotationId = 0;
  built.forEach((image, i) => {
    const file = files[image.split];
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
  const conceptsOn = (split: Split): Set<string> => new Set(built.filter((b) => b.split === split).map((b) => b.concept));
  const trainConcepts = conceptsOn('train');
  const testConcepts = conceptsOn('test');
  for (const concept of testConcepts) {
    if (trainConcepts.has(concept)) throw new Error(`internal: concept "${concept}" landed on both sides`);
  }
  const sum = (pick: (s: SetStats) => number): number => setStats.reduce((acc, s) => acc + pick(s), 0);
  const stats: BuildStats = {
    options: {
      size: options.size,
      maxPerSet: options.maxPerSet,
      limit: options.limit ?? null,
      sets: [...options.sets],
      testFraction: options.testFraction,
    },
    sets: setStats,
    totals: {
      images: { train: sum((s) => s.images.train), test: sum((s) => s.images.test) },
      captions: { train: sum((s) => s.captions.train), test: sum((s) => s.captions.test) },
      concepts: { train: trainConcepts.size, test: testConcepts.size },
      skipped: {
        empty: sum((s) => s.skipped.empty),
        animated: sum((s) => s.skipped.animated),
        renderFailed: sum((s) => s.skipped.renderFailed),
        blank: sum((s) => s.skipped.blank),
      },
    },
  };
  writeFileSync(join(options.outDir, 'captions_train.json'), JSON.stringify(files.train));
  writeFileSync(join(options.outDir, 'captions_test.json'), JSON.stringify(files.test));
  writeFileSync(join(options.outDir, 'stats.json'), `${JSON.stringify(stats, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'README.md'), datasetReadme(stats));
  return stats;
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
  const start = performance.now();
  const stats = buildIconDataset({
    outDir: args.out,
    size: positiveInt(args.size, '--size'),
    maxPerSet: positiveInt(args['max-per-set'], '--max-per-set'),
    ...(args.limit === undefined ? {} : { limit: positiveInt(args.limit, '--limit') }),
    sets: args.sets.split(',').filter((s) => s !== ''),
    testFraction,
    log: (line) => console.log(line),
  });
  const { images, captions, concepts } = stats.totals;
  console.log(
    `${args.out}: ${images.train} train images (${captions.train} captions, ${concepts.train} concepts), ` +
      `${images.test} test images (${captions.test} captions, ${concepts.test} concepts) in ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (err) {
    console.error(`build-icon-dataset: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
