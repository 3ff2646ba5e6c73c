// The icon data set: loading and alias resolution (through @iconify/utils) against a hand-written
// set (pixels checked against geometry worked out by hand), words, concept keys, captions, the
// concept split, rendering, and a tiny build through the command line checked as COCO captions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import type { IconifyJSON } from '@iconify/types';
import {
  iconSvgDocument,
  listEntries,
  loadIconSetPackage,
  mergeIconSetPackage,
  resolveIcon,
  unusableBody,
} from '../scripts/iconify_sets.js';
import {
  captionCandidates,
  captionSynonyms,
  captionWords,
  categoriesOf,
  categoryPhrase,
  conceptKey,
  iconCaptions,
  nameWords,
  splitVariant,
} from '../scripts/icon_captions.js';
import { orderByHash, splitByConcept } from '../scripts/concept_split.js';
import { renderSvgToPng } from '../scripts/build-icon-dataset.js';
import { scratchDir } from './scratch_dir.js';

// A 20×20 set. "left-half" fills x < 10; "tall" is a 10×20 icon filling x < 5; "left-by-use" draws
// the left half through a <use> of a path defined in <defs>.
const TINY: IconifyJSON = mergeIconSetPackage(
  {
    icons: {
      prefix: 'tiny',
      width: 20,
      height: 20,
      icons: {
        'left-half': { body: '<path fill="currentColor" d="M0 0h10v20H0z"/>' },
        tall: { body: '<path fill="currentColor" d="M0 0h5v20H0z"/>', width: 10 },
        old: { body: '<path fill="currentColor" d="M0 0h20v20H0z"/>', hidden: true },
        'left-by-use': { body: '<defs><path id="p" d="M0 0h10v20H0z"/></defs><use xlink:href="#p"/>' },
      },
      aliases: {
        'right-half': { parent: 'left-half', hFlip: true },
        'bottom-half': { parent: 'right-half', rotate: 1 },
        'left-again': { parent: 'right-half', hFlip: true },
        'tall-lying': { parent: 'tall', rotate: 1 },
        'west-half': { parent: 'left-half' },
        'west-half-too': { parent: 'west-half' },
        'old-name': { parent: 'old' },
        'right-by-use': { parent: 'left-by-use', hFlip: true },
      },
    },
  },
  'tiny.json',
);

/** Decodes an 8-bit RGB or RGBA PNG (all five row filters) into RGBA pixels: a check independent of the renderer. */
function decodePng(png: Buffer): { width: number; height: number; rgba: Uint8Array } {
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, 'bit depth');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : assert.fail(`colour type ${data[9]}`);
    } else if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const value = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= channels ? out[y * stride + x - channels]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter] ?? assert.fail(`filter ${filter}`);
      out[y * stride + x] = (value + predictor) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let k = 0; k < 3; k++) rgba[i * 4 + k] = out[i * channels + k]!;
    rgba[i * 4 + 3] = channels === 4 ? out[i * channels + 3]! : 255;
  }
  return { width, height, rgba };
}

/** The grey level (red channel) of a pixel of an RGBA image. */
const grey = (img: { width: number; rgba: Uint8Array }, x: number, y: number): number => img.rgba[(y * img.width + x) * 4]!;

const render = (name: string, size: number): ReturnType<typeof decodePng> =>
  decodePng(renderSvgToPng(iconSvgDocument(resolveIcon(TINY, name), { size })).png);

test('mergeIconSetPackage rejects a malformed set with Iconify’s reason, prefixed by the package', () => {
  const body = '<path d="M0 0h1v1z"/>';
  assert.throws(() => mergeIconSetPackage({ icons: { prefix: 'x', icons: { a: { body: 3 } } } }, 'x.json'), {
    message: 'x.json: Invalid icon: "a"',
  });
  assert.throws(() => mergeIconSetPackage({ icons: { prefix: 'x', icons: { a: { body }, b: { body, rotate: '1' } } } }, 'x.json'), {
    message: 'x.json: Invalid property "rotate" in "b"',
  });
  assert.throws(() => mergeIconSetPackage({ icons: { icons: { a: { body } } } }, 'x.json'), { message: 'x.json: Invalid prefix' });
  assert.throws(() => mergeIconSetPackage({ icons: [] }, 'x.json'), { message: 'x.json: icons.json must be a JSON object' });
});

test('mergeIconSetPackage puts info, categories, suffixes and chars back into the set', () => {
  const set = mergeIconSetPackage(
    {
      icons: { prefix: 'p', icons: { a: { body: '<path d="M0 0h1v1z"/>' } } },
      info: { name: 'P', license: { title: 'MIT', spdx: 'MIT' } },
      metadata: { categories: { Arrows: ['a'] }, suffixes: { bold: 'Bold' } },
      chars: { e000: 'a' },
    },
    'p',
  );
  assert.equal(set.info!.license.spdx, 'MIT');
  assert.deepEqual(set.categories, { Arrows: ['a'] });
  assert.deepEqual(set.suffixes, { bold: 'Bold' });
  assert.deepEqual(set.chars, { e000: 'a' });
});

test('aliases resolve through their chain; flips toggle, rotations add, and hidden is inherited', () => {
  const bottom = resolveIcon(TINY, 'bottom-half');
  assert.deepEqual(
    { ...bottom, body: undefined },
    { body: undefined, left: 0, top: 0, width: 20, height: 20, rotate: 1, hFlip: true, vFlip: false, hidden: false },
  );
  assert.equal(bottom.body, TINY.icons['left-half']!.body);
  assert.equal(resolveIcon(TINY, 'left-again').hFlip, false);
  assert.equal(resolveIcon(TINY, 'tall-lying').width, 10, 'the icon’s own width, not the set’s');
  assert.equal(resolveIcon(TINY, 'old').hidden, true);
  assert.equal(resolveIcon(TINY, 'old-name').hidden, true, 'an alias of a hidden icon is hidden, as Iconify resolves it');
});

test('a cyclic or dangling alias is rejected when the set is loaded; an unknown name when it is resolved', () => {
  const body = '<path d="M0 0h1v1z"/>';
  const cyclic = { prefix: 'c', icons: { i: { body } }, aliases: { a: { parent: 'b' }, b: { parent: 'a' } } };
  assert.throws(() => mergeIconSetPackage({ icons: cyclic }, 'c.json'), { message: 'c.json: Invalid alias: a' });
  const dangling = { prefix: 'd', icons: { i: { body } }, aliases: { d: { parent: 'nope' } } };
  assert.throws(() => mergeIconSetPackage({ icons: dangling }, 'd.json'), { message: 'd.json: Invalid alias: d' });
  assert.throws(() => resolveIcon(TINY, 'zzz'), { message: 'tiny: "zzz" is neither an icon nor an alias that ends at one' });
});

test('iconSvgDocument writes flips and rotations as Iconify does, swapping the viewBox on quarter turns', () => {
  const head = 'xmlns="http://www.w3.org/2000/svg" width="32" height="32"';
  assert.equal(
    iconSvgDocument(resolveIcon(TINY, 'right-half'), { size: 32 }),
    `<svg ${head} viewBox="0 0 20 20"><g transform="translate(20 0) scale(-1 1)"><path fill="#000" d="M0 0h10v20H0z"/></g></svg>`,
  );
  assert.equal(
    iconSvgDocument(resolveIcon(TINY, 'bottom-half'), { size: 32 }),
    `<svg ${head} viewBox="0 0 20 20"><g transform="rotate(90 10 10) translate(20 0) scale(-1 1)"><path fill="#000" d="M0 0h10v20H0z"/></g></svg>`,
  );
  assert.equal(
    iconSvgDocument(resolveIcon(TINY, 'tall-lying'), { size: 32 }),
    `<svg ${head} viewBox="0 0 20 10"><g transform="rotate(90 10 10)"><path fill="#000" d="M0 0h5v20H0z"/></g></svg>`,
  );
  assert.equal(iconSvgDocument(resolveIcon(TINY, 'west-half'), { size: 32, color: '#123456' }).includes('fill="#123456"'), true);
  // <defs> stay outside the transformed group, and a body that uses xlink: gets its namespace
  assert.equal(
    iconSvgDocument(resolveIcon(TINY, 'right-by-use'), { size: 32 }),
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="32" height="32" viewBox="0 0 20 20">' +
      '<defs><path id="p" d="M0 0h10v20H0z"/></defs><g transform="translate(20 0) scale(-1 1)"><use xlink:href="#p"/></g></svg>',
  );
  assert.throws(() => iconSvgDocument(resolveIcon(TINY, 'tall'), { size: 0 }), RangeError);
});

test('rendered aliases put the ink where the transformation says', () => {
  // 32 px for 20 units: 1.6 px a unit.
  const left = render('left-half', 32);
  const right = render('right-half', 32);
  const bottom = render('bottom-half', 32);
  const rightByUse = render('right-by-use', 32);
  assert.deepEqual([left.width, left.height], [32, 32]);
  assert.deepEqual([grey(left, 4, 16), grey(left, 27, 16)], [0, 255]);
  assert.deepEqual([grey(right, 4, 16), grey(right, 27, 16)], [255, 0]);
  assert.deepEqual([grey(bottom, 16, 4), grey(bottom, 16, 27)], [255, 0]);
  assert.deepEqual([grey(rightByUse, 4, 16), grey(rightByUse, 27, 16)], [255, 0], 'a flipped <use> of a path in <defs>');
  // the 10×20 "tall" fills x < 5 of its box, centred in 32 px: box at x 8–24, ink at x 8–16
  const tall = render('tall', 32);
  assert.deepEqual([grey(tall, 4, 16), grey(tall, 12, 16), grey(tall, 20, 16)], [255, 0, 255]);
  // lying down (20×10), the ink is the top half of a box at y 8–24
  const lying = render('tall-lying', 32);
  assert.deepEqual([grey(lying, 16, 4), grey(lying, 16, 12), grey(lying, 16, 20)], [255, 0, 255]);
});

test('a known icon renders to a PNG of the asked size with the ink of its shape', () => {
  // mdi "square" is the path M3 3v18h18V3: at 64 px for 24 units, a black 48×48 square from 8 to 56
  const { set } = loadIconSetPackage('mdi');
  const rendered = renderSvgToPng(iconSvgDocument(resolveIcon(set, 'square'), { size: 64 }));
  const img = decodePng(rendered.png);
  assert.deepEqual([img.width, img.height, rendered.width, rendered.height], [64, 64, 64, 64]);
  assert.equal(rendered.inkPixels, 48 * 48);
  let black = 0;
  for (let i = 0; i < 64 * 64; i++) if (img.rgba[i * 4] === 0 && img.rgba[i * 4 + 1] === 0 && img.rgba[i * 4 + 2] === 0) black++;
  assert.equal(black, 48 * 48);
  assert.deepEqual([grey(img, 7, 32), grey(img, 8, 32), grey(img, 55, 32), grey(img, 56, 32)], [255, 0, 0, 255]);
});

test('listEntries: transforming aliases are drawings of their own, plain aliases are synonyms unless hidden', () => {
  const entries = listEntries(TINY);
  assert.deepEqual(
    entries.map((e) => e.name),
    ['bottom-half', 'left-again', 'left-by-use', 'left-half', 'old', 'right-by-use', 'right-half', 'tall', 'tall-lying'],
  );
  assert.deepEqual(entries.find((e) => e.name === 'left-half')!.synonyms, ['west-half', 'west-half-too']);
  assert.deepEqual(entries.find((e) => e.name === 'old')!.synonyms, [], '"old-name" is hidden with its icon');
  assert.deepEqual(
    entries.filter((e) => e.icon.hidden).map((e) => e.name),
    ['old'],
  );
});

test('unusable bodies: no shapes is empty, SMIL is animated', () => {
  assert.equal(unusableBody('<g fill="none"></g>'), 'empty');
  assert.equal(unusableBody('<circle r="2"><animate attributeName="r" dur="1s" values="1;2"/></circle>'), 'animated');
  assert.equal(unusableBody('<path d="M0 0h1v1z"/>'), undefined);
});

test('name words split on dashes; caption words drop the pixel grid of a declared suffix', () => {
  assert.deepEqual(nameWords('arrow-left-bold'), ['arrow', 'left', 'bold']);
  assert.deepEqual(nameWords('arrow--left'), ['arrow', 'left']);
  assert.deepEqual(nameWords('health-data-sync2x-outline'), ['health', 'data', 'sync', 'outline']);
  const fluent = { suffixes: { '20-regular': '20 Regular', '24-filled': '24 Filled' } };
  assert.deepEqual(captionWords('more-horizontal-20-regular', fluent), ['more', 'horizontal', 'regular']);
  assert.deepEqual(captionWords('battery-20'), ['battery', '20']);
  assert.deepEqual(splitVariant('arrow-left-24-filled', fluent), { base: 'arrow-left', suffix: '24-filled', style: '24 Filled' });
  assert.deepEqual(splitVariant('acorn', { suffixes: { fill: 'Fill', '': 'Regular' } }), { base: 'acorn', style: 'Regular' });
});

test('concept keys of the variants of one concept are equal, of different concepts differ', () => {
  const ph = { suffixes: { thin: 'Thin', light: 'Light', '': 'Regular', bold: 'Bold', fill: 'Fill', duotone: 'Duotone' } };
  const fluent = { suffixes: { '20-regular': '20 Regular', '24-filled': '24 Filled', '28-light': '28 Light' } };
  const material = { suffixes: { '': 'Regular', rounded: 'Rounded', 'outline-rounded': 'Outline Rounded' } };
  const health = { suffixes: { '': 'Filled', outline: 'Outline', 'outline-24px': 'Outline 24px' } };
  const variants = [
    conceptKey('arrow-left'),
    conceptKey('arrow-left-duotone', ph),
    conceptKey('arrow-left-bold', ph),
    conceptKey('arrow-left-20-regular', fluent),
    conceptKey('arrow-left-28-light', fluent),
    conceptKey('arrow-left-outline-rounded', material),
    conceptKey('arrow-left-outline-24px', health),
    conceptKey('left-arrow-outline'),
    conceptKey('arrow-left-variant'),
  ];
  assert.deepEqual(variants, Array(variants.length).fill('arrow left'));
  assert.notEqual(conceptKey('arrow-left-circle'), 'arrow left');
  assert.notEqual(conceptKey('heart-off'), conceptKey('heart'));
  assert.equal(conceptKey('light'), 'light', 'a name made only of style words keeps them');
});

test('the caption templates for a Phosphor-like icon', () => {
  const src = {
    name: 'arrow-left-bold',
    synonyms: [],
    categories: ['Arrows'],
    setName: 'Phosphor',
    variants: { suffixes: { bold: 'Bold', '': 'Regular' } },
    palette: false,
  };
  assert.deepEqual(captionCandidates(src), [
    'an icon of arrow left bold, from the Phosphor set, category arrows',
    'an arrow left bold icon',
    'a black and white icon of arrow left bold',
    'the arrow left bold symbol',
    'arrow left bold, an icon from Phosphor',
    'an arrows icon showing arrow left bold',
    'arrow left in bold style',
  ]);
  const captions = iconCaptions(src, 'ph:arrow-left-bold');
  assert.equal(captions[0], 'an icon of arrow left bold, from the Phosphor set, category arrows');
  assert.deepEqual(iconCaptions(src, 'ph:arrow-left-bold'), captions, 'same seed, same captions');
});

test('each icon gets 2–5 distinct captions, with its synonym and all counts used', () => {
  const counts = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const name = `thing-${i}`;
    const captions = iconCaptions({ name, synonyms: ['stuff'], categories: [], setName: 'S', palette: true }, `s:${name}`);
    assert.ok(captions.length >= 2 && captions.length <= 5, `${captions.length} captions`);
    assert.equal(new Set(captions).size, captions.length, 'distinct');
    assert.equal(captions[1], `an icon of stuff, also called thing ${i}`);
    assert.ok(captions.every((c) => c.includes(`thing ${i}`)));
    counts.add(captions.length);
  }
  assert.deepEqual([...counts].sort(), [2, 3, 4, 5]);
});

test('categories and synonyms for captions', () => {
  assert.equal(categoryPhrase('Account / User'), 'account or user');
  assert.equal(categoryPhrase('Audio & Video'), 'audio and video');
  assert.equal(categoryPhrase('Transportation + Flying'), 'transportation, flying');
  assert.deepEqual(categoriesOf({ categories: { A: ['x'], B: ['y', 'z'], C: ['x'] } }, ['z', 'x']), ['A', 'B', 'C']);
  const ph = { suffixes: { duotone: 'Duotone', fill: 'Fill', '': 'Regular' } };
  // "activity-duotone" only restates "activity"; "123" and "1-2-3" are two concepts, capped at 2
  assert.deepEqual(captionSynonyms('activity', ['activity-duotone', 'activity-fill', 'pulse'], ph), ['pulse']);
  assert.deepEqual(captionSynonyms('numeric', ['123', '1-2-3', 'one-two-three'], {}), ['1-2-3', '123']);
});

const sha1Fraction = (key: string): number => createHash('sha1').update(key).digest().readUInt32BE(0) / 2 ** 32;

test('the split sends a lone concept to test exactly when SHA-1 of its key falls below the fraction', () => {
  const keys = Array.from({ length: 5000 }, (_, i) => `concept ${i}`);
  const sides = splitByConcept(
    keys.map((k) => [k]),
    0.1,
  );
  let test = 0;
  for (const key of keys) {
    assert.equal(sides.get(key), sha1Fraction(key) < 0.1 ? 'test' : 'train', key);
    if (sides.get(key) === 'test') test++;
  }
  assert.ok(test > 400 && test < 600, `${test} of 5000 in test`);
  assert.ok([...splitByConcept([['a'], ['b']], 0).values()].every((s) => s === 'train'));
  assert.ok([...splitByConcept([['a'], ['b']], 1).values()].every((s) => s === 'test'));
});

test('the split is deterministic, order-free, and keeps synonym-linked concepts together', () => {
  const items = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? [`c${i}`, `c${(i * 13) % 3000}`] : [`c${i}`]));
  const a = splitByConcept(items, 0.2);
  const b = splitByConcept([...items].reverse(), 0.2);
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
  for (const keys of items)
    assert.ok(
      keys.every((k) => a.get(k) === a.get(keys[0]!)),
      `${keys} split across sides`,
    );
  // a group is decided by its smallest key
  const linked = splitByConcept([['zebra', 'ant']], 0.5);
  assert.equal(linked.get('zebra'), sha1Fraction('ant') < 0.5 ? 'test' : 'train');
});

test('orderByHash is a fixed permutation that depends on the salt', () => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const expected = [...names].sort((x, y) => {
    const hx = createHash('sha1').update(`s:${x}`).digest('hex');
    const hy = createHash('sha1').update(`s:${y}`).digest('hex');
    return hx < hy ? -1 : 1;
  });
  assert.deepEqual(orderByHash(names, 's'), expected);
  assert.notDeepEqual(orderByHash(names, 's'), orderByHash(names, 't'));
});

const SCRIPT = fileURLToPath(new URL('../scripts/build-icon-dataset.js', import.meta.url));

interface Coco {
  info: Record<string, unknown>;
  images: { id: number; file_name: string; width: number; height: number; concept: string; icon_set: string }[];
  annotations: { id: number; image_id: number; caption: string }[];
}

function buildTiny(out: string): void {
  execFileSync(process.execPath, [SCRIPT, '--out', out, '--limit', '33', '--test-fraction', '0.5', '--size', '48'], { stdio: 'pipe' });
}

function digestDir(dir: string): string {
  const hash = createHash('sha1');
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else hash.update(path.slice(dir.length)).update(readFileSync(path));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

test('a --limit build writes valid COCO captions whose files exist, split by concept, byte-identical when repeated', () => {
  const root = scratchDir('icons-');
  const out = join(root, 'a');
  buildTiny(out);
  const train = JSON.parse(readFileSync(join(out, 'captions_train.json'), 'utf8')) as Coco;
  const testSplit = JSON.parse(readFileSync(join(out, 'captions_test.json'), 'utf8')) as Coco;
  const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'));
  const images = [...train.images, ...testSplit.images];
  assert.equal(images.length, 33);
  assert.ok(train.images.length > 0 && testSplit.images.length > 0, 'both splits hold images');
  assert.deepEqual(
    images.map((i) => i.id).sort((x, y) => x - y),
    Array.from({ length: 33 }, (_, i) => i + 1),
  );
  // 33 images over 11 sets: 3 each
  assert.deepEqual(
    stats.sets.map((s: { images: { train: number; test: number } }) => s.images.train + s.images.test),
    Array(11).fill(3),
  );
  const annotationIds = new Set<number>();
  for (const [split, file] of [
    ['train', train],
    ['test', testSplit],
  ] as const) {
    assert.equal(typeof file.info, 'object');
    assert.equal(file.info.split, split);
    const ids = new Set(file.images.map((i) => i.id));
    const perImage = new Map<number, number>();
    for (const image of file.images) {
      assert.ok(Number.isInteger(image.id));
      assert.deepEqual([image.width, image.height], [48, 48]);
      assert.match(image.file_name, /^[a-z-]+\/[a-z0-9-]+\.png$/);
      const path = join(out, 'images', image.file_name);
      assert.ok(existsSync(path), `${path} exists`);
      const png = decodePng(readFileSync(path));
      assert.deepEqual([png.width, png.height], [48, 48]);
    }
    for (const a of file.annotations) {
      assert.ok(ids.has(a.image_id), `annotation ${a.id} refers to image ${a.image_id} of this split`);
      assert.ok(!annotationIds.has(a.id), `annotation id ${a.id} is unique`);
      assert.equal(typeof a.caption, 'string');
      annotationIds.add(a.id);
      perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
    }
    for (const image of file.images) {
      const n = perImage.get(image.id) ?? 0;
      assert.ok(n >= 2 && n <= 5, `${image.file_name}: ${n} captions`);
    }
    assert.equal(file.annotations.length, stats.totals.captions[split]);
    assert.equal(file.images.length, stats.totals.images[split]);
  }
  const trainConcepts = new Set(train.images.map((i) => i.concept));
  for (const image of testSplit.images) assert.ok(!trainConcepts.has(image.concept), `test concept "${image.concept}" is in train`);
  assert.deepEqual(readdirSync(join(out, 'images')).sort(), [
    'carbon',
    'flat-color-icons',
    'fluent',
    'game-icons',
    'healthicons',
    'icon-park',
    'lucide',
    'material-symbols',
    'mdi',
    'ph',
    'tabler',
  ]);
  assert.equal(stats.sets[0].license.spdx, 'Apache-2.0');
  assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /\| mdi \| Material Design Icons \|/);

  const again = join(root, 'b');
  buildTiny(again);
  assert.equal(digestDir(again), digestDir(out), 'a second build is byte-identical');
  buildTiny(out);
  assert.equal(digestDir(out), digestDir(again), 'rebuilding over an earlier build replaces it');
});

test('the command line explains itself and refuses what it cannot do', () => {
  const help = spawnSync(process.execPath, [SCRIPT, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--max-per-set N/);
  const root = scratchDir('icons-');
  const badSet = spawnSync(process.execPath, [SCRIPT, '--out', join(root, 'x'), '--sets', 'mdi,emoji'], { encoding: 'utf8' });
  assert.equal(badSet.status, 1);
  assert.match(badSet.stderr, /unknown icon set "emoji"/);
  writeFileSync(join(root, 'keep.txt'), 'not a build');
  const notOurs = spawnSync(process.execPath, [SCRIPT, '--out', root, '--limit', '2'], { encoding: 'utf8' });
  assert.equal(notOurs.status, 1);
  assert.match(notOurs.stderr, /not empty and holds no stats\.json/);
  assert.ok(existsSync(join(root, 'keep.txt')));
});
