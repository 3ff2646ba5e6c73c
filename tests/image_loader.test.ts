// Image decoding (sharp, in worker threads), loading an image–caption data set (ManifestLoader,
// and decodedImages for evaluation and the report), and the image modality. The images are tiny
// PNGs written here with sharp; every expected pixel is known by construction (solid colours, a
// transparent square, three 10-px stripes).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { Generator, tensor, type Tensor } from '../src/index.js';
import { decodeImage, ImageDecodeError } from '../src/data/image_decode.js';
import { ImageDecodePool } from '../src/data/image_pool.js';
import { decodedImages, ManifestLoader } from '../src/data/manifest_loader.js';
import { DatasetError, type PairedDataset, type PairedItem } from '../src/data/paired.js';
import { ImageModality, imageModality } from '../src/modalities/image/index.js';
import { assertClose } from './helpers.js';
import { scratchDir } from './scratch_dir.js';

const dir = scratchDir('byol-image-loader-');
const file = (name: string): string => join(dir, name);
const COLOURS = 10;
/** Image i is a solid colour whose red value, i·25, identifies it after decoding. */
const colourOf = (i: number): [number, number, number] => [i * 25, 255 - i * 25, 100];
const pool = new ImageDecodePool({ size: 1 });

async function solidPng(path: string, [r, g, b]: number[], alpha = 1): Promise<void> {
  await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: r!, g: g!, b: b!, alpha } } })
    .png()
    .toFile(path);
}

before(async () => {
  for (let i = 0; i < COLOURS; i++) await solidPng(file(`colour${i}.png`), colourOf(i));
  await solidPng(file('red.png'), [255, 0, 0]);
  await solidPng(file('clear.png'), [0, 0, 0], 0); // transparent black: must come out white
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .toColourspace('b-w')
    .png()
    .toFile(file('grey.png'));
  // 30×10: red, green and blue stripes 10 px wide.
  const stripes = Buffer.alloc(30 * 10 * 3);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 30; x++) stripes[(y * 30 + x) * 3 + Math.floor(x / 10)] = 255;
  await sharp(stripes, { raw: { width: 30, height: 10, channels: 3 } })
    .png()
    .toFile(file('stripes.png'));
  const red = readFileSync(file('red.png'));
  writeFileSync(file('corrupt.png'), red.subarray(0, red.length - 30)); // PNG signature, truncated data
  writeFileSync(file('text.png'), 'this is a text file, not an image\n');
});

after(async () => {
  await pool.close();
});

/** Pixel (y, x) of HWC data. */
function pixel(data: Uint8Array, size: number, channels: number, y: number, x: number): number[] {
  const at = (y * size + x) * channels;
  return Array.from(data.subarray(at, at + channels));
}

describe('decodeImage', () => {
  test('a solid red PNG decodes to [size, size, 3] pixels of 255, 0, 0', async () => {
    const image = await decodeImage(file('red.png'), { size: 4 });
    assert.deepEqual([image.height, image.width, image.channels, image.data.length], [4, 4, 3, 4 * 4 * 3]);
    for (let p = 0; p < 16; p++) assert.deepEqual(Array.from(image.data.subarray(p * 3, p * 3 + 3)), [255, 0, 0]);
  });

  test('transparent pixels are flattened onto white', async () => {
    const image = await decodeImage(file('clear.png'), { size: 4 });
    assert.ok(image.data.every((v) => v === 255));
  });

  test("'cover' keeps the centre of a wide image; 'fill' squeezes all of it in", async () => {
    const cover = await decodeImage(file('stripes.png'), { size: 10, fit: 'cover' });
    for (let x = 0; x < 10; x++) assertClose(pixel(cover.data, 10, 3, 5, x), [0, 255, 0], 2, 0);
    const fill = await decodeImage(file('stripes.png'), { size: 9, fit: 'fill' });
    const dominant = (x: number): number => {
      const rgb = pixel(fill.data, 9, 3, 4, x);
      return rgb.indexOf(Math.max(...rgb));
    };
    assert.deepEqual([dominant(0), dominant(4), dominant(8)], [0, 1, 2]); // red, green, blue
  });

  test('channels: 1 gives one plane, and grey stays grey', async () => {
    const image = await decodeImage(file('grey.png'), { size: 4, channels: 1 });
    assert.equal(image.data.length, 16);
    assertClose(Array.from(image.data), new Array(16).fill(128), 1, 0);
  });

  test('a missing file, a text file and a truncated PNG each throw an ImageDecodeError naming the file and the problem', async () => {
    const cases = [
      { name: 'missing.png', kind: 'missing-image', says: /no such image file/ },
      { name: 'text.png', kind: 'not-an-image', says: /not an image/ },
      { name: 'corrupt.png', kind: 'corrupt-image', says: /starts like a PNG but is corrupt or truncated/ },
    ];
    for (const { name, kind, says } of cases) {
      await assert.rejects(decodeImage(file(name), { size: 4 }), (err: unknown) => {
        assert.ok(err instanceof ImageDecodeError && err instanceof DatasetError);
        assert.equal(err.kind, kind);
        assert.equal(err.file, file(name));
        assert.ok(err.message.startsWith(`${file(name)}: `), err.message);
        assert.match(err.message, says);
        return true;
      });
    }
  });

  test('bad options are refused before any decoding', async () => {
    await assert.rejects(decodeImage(file('red.png'), { size: 0 }), /size must be an integer/);
    await assert.rejects(decodeImage(file('red.png'), { size: 4, channels: 2 as 3 }), /channels must be 1 or 3/);
  });
});

describe('ImageDecodePool', () => {
  test('decodeBatch gives [N, C, H, W] planes equal to decodeImage, and lists bad files by index', async () => {
    const paths = [file('colour3.png'), file('text.png'), file('stripes.png'), file('missing.png')];
    const { pixels, failures } = await pool.decodeBatch(paths, { size: 10 });
    assert.equal(pixels.length, 4 * 3 * 10 * 10);
    assert.deepEqual(
      failures.map((f) => [f.index, f.error.kind, f.error.file]),
      [
        [1, 'not-an-image', paths[1]],
        [3, 'missing-image', paths[3]],
      ],
    );
    const stripes = await decodeImage(paths[2]!, { size: 10 });
    const expected = new Uint8Array(300);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 100; p++) expected[c * 100 + p] = stripes.data[p * 3 + c]!;
    assert.deepEqual(pixels.subarray(600, 900), expected);
    assert.ok(
      pixels.subarray(300, 600).every((v) => v === 0),
      "a failed file's slot stays zero",
    );
  });

  test('decode gives one HWC image, and rejects with the ImageDecodeError of a bad file', async () => {
    const image = await pool.decode(file('red.png'), { size: 2 });
    assert.deepEqual(Array.from(image.data), [255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0]);
    await assert.rejects(pool.decode(file('corrupt.png'), { size: 2 }), (err: unknown) => {
      return err instanceof ImageDecodeError && err.kind === 'corrupt-image' && err.message.startsWith(file('corrupt.png'));
    });
  });

  test('a closed pool refuses work', async () => {
    const own = new ImageDecodePool({ size: 1 });
    await own.decode(file('red.png'), { size: 2 });
    await own.close();
    await assert.rejects(own.decode(file('red.png'), { size: 2 }), /closed/);
  });
});

/** Items 0..n−1: image colour<i>.png, captions "item i: a/b/c". */
function colourDataset(n = COLOURS, extra: PairedItem[] = []): PairedDataset {
  const items = Array.from({ length: n }, (_, i) => ({
    id: `c${i}`,
    image: file(`colour${i}.png`),
    captions: ['a', 'b', 'c'].map((k) => `item ${i}: ${k}`),
  }));
  return { items: [...items, ...extra], source: file('manifest.jsonl'), skipped: {} };
}

/** Each image's identity: its top-left red value / 25 (see colourOf). */
function idsOf(images: Tensor): number[] {
  const [n, ...image] = images.shape;
  const perImage = image.reduce((a, b) => a * b, 1);
  const flat = images.toFlatArray();
  return Array.from({ length: n! }, (_, k) => Math.round(flat[k * perImage]! / 25));
}

/** One epoch as plain data, per batch (the tensors are disposed). */
interface EpochData {
  indices: number[][];
  /** The image tensor's shape; [] for a batch without images. */
  shapes: number[][];
  /** The data-set indices of the rows with an image, in row order. */
  withImage: number[][];
  /** Each image's identity (idsOf), in the same order. */
  ids: number[][];
  /** The data-set indices of the rows with a caption, in row order. */
  withText: number[][];
  captions: string[][];
}

async function collectEpoch(loader: ManifestLoader, epoch: number): Promise<EpochData> {
  const out: EpochData = { indices: [], shapes: [], withImage: [], ids: [], withText: [], captions: [] };
  for await (const batch of loader.epoch(epoch)) {
    const itemsOf = (rows: number[] = []): number[] => rows.map((row) => batch.indices[row]!);
    out.indices.push(batch.indices);
    out.shapes.push(batch.image?.data.shape ?? []);
    out.withImage.push(itemsOf(batch.image?.rows));
    out.ids.push(batch.image ? idsOf(batch.image.data) : []);
    out.withText.push(itemsOf(batch.text?.rows));
    out.captions.push(batch.text?.data ?? []);
    batch.image?.data.dispose();
  }
  return out;
}

const ascending = (values: number[]): number[] => [...values].sort((a, b) => a - b);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// ManifestLoader over an image–caption data set (what training, evaluation and the report load).
// manifest_loader.test.ts already checks that shuffle: false keeps the data set's order, that
// dropLast: false yields the last partial batch, and that order(epoch) differs between epochs.
describe('ManifestLoader over images and captions', () => {
  const options = { batchSize: 4, size: 4, pool, dropLast: false } as const;

  test('every item appears exactly once per epoch, with its own image and one of its own captions', async () => {
    const loader = new ManifestLoader(colourDataset(), options);
    for (const epoch of [0, 1]) {
      const { indices, withImage, ids, withText, captions } = await collectEpoch(loader, epoch);
      assert.deepEqual(ascending(indices.flat()), range(COLOURS));
      assert.deepEqual(withImage.flat(), indices.flat(), 'every row has an image');
      assert.deepEqual(ids.flat(), indices.flat(), 'each image is the item its index names');
      assert.deepEqual(withText.flat(), indices.flat(), 'every row has a caption');
      captions.flat().forEach((caption, k) => assert.match(caption, new RegExp(`^item ${indices.flat()[k]}: [abc]$`)));
    }
  });

  test('the same seed gives the same batches and captions (prefetching or not), another seed another order', async () => {
    const a = await collectEpoch(new ManifestLoader(colourDataset(), { ...options, seed: 7 }), 3);
    const b = await collectEpoch(new ManifestLoader(colourDataset(), { ...options, seed: 7, prefetch: 0 }), 3);
    assert.deepEqual(b, a);
    const otherSeed = await collectEpoch(new ManifestLoader(colourDataset(), { ...options, seed: 8 }), 3);
    assert.notDeepEqual(otherSeed.indices, a.indices);
    const loader = new ManifestLoader(colourDataset(), { ...options, seed: 7 });
    assert.deepEqual(a.indices.flat(), loader.order(3), 'the batches visit the items in order(epoch)');
    const captionOfItem0 = (epoch: number): string | undefined =>
      loader.rowsOf({ epoch, step: 0, indices: [0], waitMs: 0 }, (item) => item.captions)?.data[0];
    const drawn = new Set(range(30).map(captionOfItem0));
    assert.deepEqual([...drawn].sort(), ['item 0: a', 'item 0: b', 'item 0: c'], 'over 30 epochs item 0 gets each of its 3 captions');
  });

  test('dropLast (the default) leaves out the last partial batch', async () => {
    const loader = new ManifestLoader(colourDataset(), { batchSize: 4, size: 4, pool });
    const { shapes, indices } = await collectEpoch(loader, 0);
    assert.deepEqual(shapes, [
      [4, 3, 4, 4],
      [4, 3, 4, 4],
    ]);
    assert.deepEqual(indices.flat(), loader.order(0).slice(0, 8));
    assert.equal(loader.batchesPerEpoch, 2);
  });

  test('images are uint8 [N, C, size, size] tensors of the decoded pixels, in RGB or one grey plane', async () => {
    /** The pixels of the epoch's one batch, as its dtype, shape and values. */
    const onlyBatch = async (loader: ManifestLoader): Promise<{ dtype: string; shape: number[]; values: number[] }[]> => {
      const out = [];
      for await (const batch of loader.epoch(0)) {
        const images = batch.image!.data;
        out.push({ dtype: images.dtype, shape: images.shape, values: images.toFlatArray() });
        images.dispose();
      }
      return out;
    };
    const rgbOptions = { ...options, batchSize: 2, shuffle: false };
    const planes = [0, 1].flatMap((i) => colourOf(i).flatMap((v) => new Array<number>(16).fill(v)));
    assert.deepEqual(await onlyBatch(new ManifestLoader(colourDataset(2), rgbOptions)), [
      { dtype: 'uint8', shape: [2, 3, 4, 4], values: planes },
    ]);
    const greys = [];
    for (const i of [0, 1]) greys.push(...(await decodeImage(file(`colour${i}.png`), { size: 4, channels: 1 })).data);
    assert.deepEqual(await onlyBatch(new ManifestLoader(colourDataset(2), { ...rgbOptions, channels: 1 })), [
      { dtype: 'uint8', shape: [2, 1, 4, 4], values: greys },
    ]);
  });

  test("onBadRecord 'fail' (the default) throws the ImageDecodeError naming the bad file", async () => {
    const loader = new ManifestLoader(colourDataset(6, [{ id: 'bad', image: file('corrupt.png'), captions: ['x'] }]), options);
    await assert.rejects(collectEpoch(loader, 0), (err: unknown) => {
      assert.ok(err instanceof ImageDecodeError, String(err));
      assert.equal(err.file, file('corrupt.png'));
      assert.ok(err.message.startsWith(`${file('corrupt.png')}: `), err.message);
      return true;
    });
  });

  test('an item with no modality at all is refused when the loader is made, naming it', () => {
    assert.throws(
      () => new ManifestLoader(colourDataset(2, [{ id: 'empty', captions: [] }]), options),
      (err: unknown) => {
        assert.ok(err instanceof DatasetError, String(err));
        assert.equal(err.reason, 'no-modality');
        assert.equal(err.record, 'items[2] (id "empty")');
        const says = `${file('manifest.jsonl')}: items[2] (id "empty"): has no image`;
        assert.ok(err.message.startsWith(says), err.message);
        return true;
      },
    );
  });

  test("onBadRecord 'skip' counts each bad image once, drops it and keeps its caption, in this epoch and later ones", async () => {
    const dataset = colourDataset(6, [
      { id: 'corrupt', image: file('corrupt.png'), captions: ['x'] }, // 6
      { id: 'text', image: file('text.png'), captions: ['y'] }, // 7
      { id: 'image-only', image: file('colour8.png'), captions: [] }, // 8: kept, nothing is wrong with it
      { id: 'missing-image-only', image: file('missing.png'), captions: [] }, // 9: nothing left, so left out
    ]);
    const seen: DatasetError[] = [];
    const loader = new ManifestLoader(dataset, { ...options, onBadRecord: 'skip', onSkip: (e) => seen.push(e) });
    for (const epoch of [0, 1]) {
      const { indices, withImage, ids, withText, captions } = await collectEpoch(loader, epoch);
      assert.deepEqual(ascending(indices.flat()), range(9), `epoch ${epoch}: item 9 had only its image`);
      assert.deepEqual(ascending(withImage.flat()), [0, 1, 2, 3, 4, 5, 8], `epoch ${epoch}`);
      assert.deepEqual(ids.flat(), withImage.flat(), `epoch ${epoch}: the images left are packed with their own rows`);
      assert.deepEqual(ascending(withText.flat()), range(8), `epoch ${epoch}`);
      const captionOf = new Map(withText.flat().map((item, k) => [item, captions.flat()[k]]));
      assert.deepEqual([captionOf.get(6), captionOf.get(7)], ['x', 'y'], `epoch ${epoch}`);
      assert.deepEqual(loader.skipped, { 'not-an-image': 2, 'missing-image': 1 }, `epoch ${epoch}: counted once, not per epoch`);
      const badFiles = [file('corrupt.png'), file('missing.png'), file('text.png')].sort();
      assert.deepEqual(seen.map((e) => e.file).sort(), badFiles, `epoch ${epoch}: onSkip hears of each bad file once`);
      for (const e of seen) assert.ok(e instanceof ImageDecodeError && e.message.startsWith(`${e.file}: `), e.message);
    }
  });

  test('each batch reports how long the consumer waited for it', async () => {
    // Without prefetching every batch is decoded after it is asked for, so each wait is > 0.
    const batches = new ManifestLoader(colourDataset(), { ...options, prefetch: 0 }).epoch(0);
    const waits: { waitMs: number; measuredMs: number }[] = [];
    for (;;) {
      const asked = performance.now();
      const next = await batches.next();
      const measuredMs = performance.now() - asked;
      if (next.done) break;
      next.value.image?.data.dispose();
      waits.push({ waitMs: next.value.waitMs, measuredMs });
    }
    assert.equal(waits.length, 3);
    for (const { waitMs, measuredMs } of waits) assert.ok(waitMs > 0 && waitMs <= measuredMs, `waitMs ${waitMs}, measured ${measuredMs}`);
  });

  test('breaking out of an epoch early is fine, and the next epoch starts afresh', async () => {
    const loader = new ManifestLoader(colourDataset(), options);
    for await (const batch of loader.epoch(0)) {
      batch.image?.data.dispose();
      break;
    }
    const { indices } = await collectEpoch(loader, 0);
    assert.deepEqual(indices.flat(), loader.order(0));
  });
});

describe('closing', () => {
  const loaderUrl = new URL('../src/data/manifest_loader.js', import.meta.url).href;
  const childScript = (close: boolean): string => `
    import { ManifestLoader } from ${JSON.stringify(loaderUrl)};
    const items = [0, 1, 2].map((i) => ({ id: String(i), image: ${JSON.stringify(dir)} + '/colour' + i + '.png', captions: ['c'] }));
    const loader = new ManifestLoader({ items, source: 'x', skipped: {} }, { batchSize: 2, size: 4, poolSize: 1 });
    let n = 0;
    for await (const batch of loader.epoch(0)) { n += batch.image.rows.length; batch.image.data.dispose(); }
    ${close ? 'await loader.close();' : ''}
    console.log('read', n);
  `;
  for (const close of [true, false]) {
    test(close ? 'a closed loader lets the process exit' : 'an idle loader that was never closed does not keep the process alive', () => {
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', childScript(close)], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.signal, null, `the child was killed after 60 s (it hung); stderr: ${child.stderr}`);
      assert.equal(child.status, 0, child.stderr);
      assert.match(child.stdout, /read 2/);
    });
  }
});

/** Decodes every batch, disposing each, and returns their shapes. */
async function shapesOf(batches: AsyncIterable<Tensor>): Promise<number[][]> {
  const shapes = [];
  for await (const images of batches) {
    shapes.push(images.shape);
    images.dispose();
  }
  return shapes;
}

/** HWC pixels (decodeImage's order) as CHW planes (a batch tensor's). */
function planesOf(hwc: Uint8Array, channels: number): number[] {
  const pixels = hwc.length / channels;
  return range(channels).flatMap((c) => range(pixels).map((p) => hwc[p * channels + c]!));
}

describe('decodedImages', () => {
  // Options that say skip, as a caller passing its training loader's settings would: decodedImages
  // must fail anyway, since its images are matched to captions by position.
  const lenient = { size: 4, channels: 3 as const, onBadRecord: 'skip' as const };

  test('yields the images in data-set order, in batches of batchSize and a partial last one, as decodeImage decodes them', async () => {
    const dataset = colourDataset();
    const batches: { dtype: string; shape: number[] }[] = [];
    const values: number[] = [];
    for await (const images of decodedImages(dataset, { size: 4, channels: 3 }, 4)) {
      batches.push({ dtype: images.dtype, shape: images.shape });
      values.push(...images.toFlatArray());
      images.dispose();
    }
    assert.deepEqual(batches, [
      { dtype: 'uint8', shape: [4, 3, 4, 4] },
      { dtype: 'uint8', shape: [4, 3, 4, 4] },
      { dtype: 'uint8', shape: [2, 3, 4, 4] },
    ]);
    const expected: number[] = [];
    for (const item of dataset.items) expected.push(...planesOf((await decodeImage(item.image!, { size: 4 })).data, 3));
    assert.deepEqual(values, expected);
  });

  test('decodes with the channels and fit it is given', async () => {
    const dataset = colourDataset(0, [{ id: 'stripes', image: file('stripes.png'), captions: [] }]);
    for (const fit of ['cover', 'fill'] as const) {
      const values: number[] = [];
      for await (const images of decodedImages(dataset, { size: 9, channels: 1, fit })) {
        values.push(...images.toFlatArray());
        images.dispose();
      }
      assert.deepEqual(values, Array.from((await decodeImage(file('stripes.png'), { size: 9, channels: 1, fit })).data), fit);
    }
  });

  test('an item without an image is a DatasetError naming the item, even when the options say skip', async () => {
    const dataset = colourDataset(3, [{ id: 'caption-only', captions: ['x'] }]);
    await assert.rejects(shapesOf(decodedImages(dataset, lenient, 2)), (err: unknown) => {
      assert.ok(err instanceof DatasetError, String(err));
      assert.equal(err.message, `${file('manifest.jsonl')}: items[3] (id "caption-only"): has no image to decode`);
      return true;
    });
  });

  test('an undecodable image is the ImageDecodeError naming its file, even when the options say skip', async () => {
    const dataset = colourDataset(3, [{ id: 'bad', image: file('corrupt.png'), captions: ['x'] }]);
    await assert.rejects(shapesOf(decodedImages(dataset, lenient, 2)), (err: unknown) => {
      assert.ok(err instanceof ImageDecodeError, String(err));
      assert.equal(err.file, file('corrupt.png'));
      assert.ok(err.message.startsWith(`${file('corrupt.png')}: `), err.message);
      return true;
    });
  });
});

describe('image modality', () => {
  const modality = new ImageModality({ size: 8 }, { pool });

  test('collate decodes paths to uint8 [N, C, size, size] and passes a decoded batch through unchanged', async () => {
    const batch = await modality.collate([file('red.png'), file('clear.png')]);
    assert.deepEqual([batch.dtype, ...batch.shape], ['uint8', 2, 3, 8, 8]);
    const red = batch.select(0, 0).amax([1, 2]).toFlatArray();
    assert.deepEqual(red, [255, 0, 0]);
    assert.equal(batch.select(0, 1).amin([0, 1, 2]).item(), 255);
    assert.equal(await modality.collate([batch]), batch);
  });

  test('collate keeps item order when paths and tensors mix', async () => {
    const one = (await modality.collate([file('colour2.png')])).select(0, 0);
    const batch = await modality.collate([file('red.png'), one, file('clear.png')]);
    assert.deepEqual(batch.shape, [3, 3, 8, 8]);
    const corner = (k: number): number[] => batch.select(0, k).select(1, 0).select(1, 0).toFlatArray();
    assert.deepEqual([corner(0), corner(1), corner(2)], [[255, 0, 0], colourOf(2), [255, 255, 255]]);
  });

  test('collate names the item index and the file of an image it cannot decode, and refuses wrong tensors', async () => {
    await assert.rejects(modality.collate([file('red.png'), file('text.png')]), (err: unknown) => {
      assert.ok(err instanceof ImageDecodeError);
      assert.ok(err.message.startsWith(`${file('text.png')}: item 1: `), err.message);
      return true;
    });
    await assert.rejects(modality.collate([tensor([1, 2, 3])]), /item 0 is float32 \[3\]; expected uint8 \[3, 8, 8\] or \[N, 3, 8, 8\]/);
  });

  test('views are float [N, C, size, size], the same for the same seed', async () => {
    const batch = await modality.collate([file('stripes.png'), file('red.png'), file('colour5.png')]);
    const [a1, a2] = modality.views(batch, new Generator(3));
    const [b1] = modality.views(batch, new Generator(3));
    const [c1] = modality.views(batch, new Generator(4));
    assert.deepEqual([a1.dtype, ...a1.shape], ['float32', 3, 3, 8, 8]);
    assert.deepEqual(a2.shape, [3, 3, 8, 8]);
    assert.deepEqual(a1.toFlatArray(), b1.toFlatArray());
    assert.notDeepEqual(a1.toFlatArray(), c1.toFlatArray());
  });

  test("evalInput scales to [0, 1] and normalises with the view's mean and std, without augmenting", async () => {
    const x = modality.evalInput(await modality.collate([file('red.png')]));
    assert.deepEqual([x.dtype, ...x.shape], ['float32', 1, 3, 8, 8]);
    const [mean, std] = [modality.view1.mean, modality.view1.std];
    const expected = [1, 0, 0].map((v, c) => (v - mean[c]!) / std[c]!);
    for (let c = 0; c < 3; c++) assertClose(x.select(1, c).flatten(), new Array(64).fill(expected[c]), 1e-5);
    assert.throws(
      () => modality.evalInput(tensor(new Uint8Array(3 * 4 * 4), { shape: [1, 3, 4, 4] })),
      /expected uint8 \(or float in \[0, 1\]\) \[N, 3, 8, 8\]/,
    );
  });

  test('featureDim is the encoder output width, for small-cnn and resnet18', async () => {
    const batch = await modality.collate([file('red.png'), file('stripes.png')]);
    for (const settings of [{ size: 8 }, { size: 8, encoder: 'resnet18' as const, widthMultiplier: 0.125 }]) {
      const m = new ImageModality(settings, { pool });
      const out = m.createEncoder().forward(m.evalInput(batch));
      assert.deepEqual(out.shape, [2, m.featureDim]);
      assert.equal(m.featureDim, settings.encoder === 'resnet18' ? 64 : 128);
      assert.deepEqual(m.createEncoder().forward(m.evalInput(batch)).shape, [2, m.featureDim]); // the spare is handed out once
    }
  });

  test('toJSON and restore round-trip the settings, view overrides included', async () => {
    const fitted = await imageModality.fit(
      { size: 16, channels: 1, encoder: 'resnet18', widthMultiplier: 0.25, view2: { solarizeP: 0.5, cropScale: [0.2, 1] } },
      [],
    );
    const spec = JSON.parse(JSON.stringify(fitted.toJSON()));
    assert.equal(spec.name, 'image');
    const restored = imageModality.restore(spec) as ImageModality;
    assert.deepEqual(restored.toJSON(), fitted.toJSON());
    assert.equal(restored.view2.solarizeP, 0.5);
    assert.deepEqual(restored.view2.cropScale, [0.2, 1]);
    assert.deepEqual(restored.view1.mean, [0.5]);
    assert.equal(restored.featureDim, fitted.featureDim);
  });

  test('bad settings throw naming the field', () => {
    assert.throws(() => new ImageModality({ sise: 8 } as never), /unknown field "sise"/);
    assert.throws(
      () => new ImageModality({ size: 8, view1: { size: 4 } as never }),
      /view1\.size: a view's size is the modality's "size" setting/,
    );
    assert.throws(() => new ImageModality({ size: 8, view2: { mean: [0.5] } }), /view2\.mean is \[0\.5\], expected 3 numbers/);
    assert.throws(() => new ImageModality({ encoder: 'vit' as never }), /"encoder" is "vit"/);
    assert.throws(() => imageModality.restore({ name: 'text', settings: {} }), /not "image"/);
  });
});
