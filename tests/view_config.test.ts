// The views as config keys (image.view1/view2, text.view1/view2, vector.*): each key changes the
// views as documented, bad values are refused naming the key, the defaults are the alignment
// views for images (BYOL's under the byol-paper preset, as hard-coded before the keys existed) and
// the modalities' own for text and vectors, and a restored modality draws the same views.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randint, tensor, Generator, type Tensor } from '../src/index.js';
import { ConfigError, parseConfig, resolveConfig } from '../src/config/load.js';
import { fitModalities, restoreModalities } from '../src/run/model_setup.js';
import { modalityOwnSettings } from '../src/config/tower.js';
import { ImageModality, imageModality } from '../src/modalities/image/index.js';
import { TextModality, textModality } from '../src/modalities/text/index.js';
import { VectorModality, type VectorItem } from '../src/modalities/vector/index.js';
import type { Modality } from '../src/modalities/modality.js';
import { Linear } from '../src/nn/index.js';
import { assertClose } from './helpers.js';

const SIZE = 16;
const pixels = (): Tensor => randint(0, 256, [4, 3, SIZE, SIZE], { dtype: 'uint8', generator: new Generator(3) });

/** The image modality of a config made from `overrides` (at SIZE px). */
async function imageFrom(...overrides: string[]): Promise<ImageModality> {
  const config = resolveConfig({ overrides: [`image.size=${SIZE}`, ...overrides] });
  return (await imageModality.fit(modalityOwnSettings(config.image), [])) as ImageModality;
}

/** Overrides that turn every random step of image view 1 off, crop and flip included. */
const IMAGE_VIEW1_OFF = [
  'image.view1.cropScale=[1, 1]',
  'image.view1.cropRatio=[1, 1]',
  'image.view1.flipP=0',
  'image.view1.colorJitterP=0',
  'image.view1.grayscaleP=0',
  'image.view1.blurP=0',
  'image.view1.solarizeP=0',
];

const CAPTIONS = [
  'a red heart on a white background',
  'a blue circle with a thin black outline',
  'two green leaves crossing each other',
  'a yellow star with five points and a smiling face',
  'an orange cat sleeping on a grey sofa',
];

function refusal(...overrides: string[]): string {
  try {
    resolveConfig({ overrides });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail(`expected ${overrides.join(' ')} to be refused`);
}

test("the default image views are the mild alignment views; the byol-paper preset has BYOL's two views, as hard-coded before", () => {
  const config = parseConfig({});
  const alignmentView = {
    cropScale: [0.5, 1],
    cropRatio: [3 / 4, 4 / 3],
    flipP: 0.5,
    colorJitterP: 1,
    brightness: 0.2,
    contrast: 0.2,
    saturation: 0.2,
    hue: 0,
    grayscaleP: 0,
    blurP: 0,
    blurSigma: [0.1, 2.0],
    solarizeP: 0,
  };
  assert.deepEqual(config.image.view1, alignmentView);
  assert.deepEqual(config.image.view2, alignmentView);
  const byolView1 = {
    cropScale: [0.08, 1],
    cropRatio: [3 / 4, 4 / 3],
    flipP: 0.5,
    colorJitterP: 0.8,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.2,
    hue: 0.1,
    grayscaleP: 0.2,
    blurP: 1.0,
    blurSigma: [0.1, 2.0],
    solarizeP: 0.0,
  };
  const paper = resolveConfig({ preset: 'byol-paper' });
  assert.deepEqual(paper.image.view1, byolView1);
  assert.deepEqual(paper.image.view2, { ...byolView1, blurP: 0.1, solarizeP: 0.2 });
  const textView = { spanDeletionP: 0.5, spanMaxFraction: 0.25, tokenDropoutRate: 0.1, shuffleP: 0.5, shuffleWindow: 2, maskRate: 0.15 };
  assert.deepEqual(config.text.view1, textView);
  assert.deepEqual(config.text.view2, textView);
  const vectorView = { dropoutRate: 0.1, noiseStd: 0.1, noiseScale: 'relative', mixP: 0.2, mixMaxLambda: 0.2 };
  // The section also holds the generic tower keys (src/config/tower.ts), off by default.
  assert.deepEqual(config.vector, {
    featureDim: 256,
    hiddenDims: [1024],
    view1: vectorView,
    view2: vectorView,
    freeze: false,
    views: true,
  });
});

test("the byol-paper preset draws exactly the views of an image modality built without settings (BYOL's)", async () => {
  const paper = resolveConfig({ preset: 'byol-paper', overrides: [`image.size=${SIZE}`, 'image.encoder=small-cnn'] });
  const fromConfig = (await imageModality.fit(modalityOwnSettings(paper.image), [])) as ImageModality;
  const plain = new ImageModality({ size: SIZE });
  assert.deepEqual(fromConfig.view1, plain.view1);
  assert.deepEqual(fromConfig.view2, plain.view2);
  const [a1, a2] = fromConfig.views(pixels(), new Generator(7));
  const [b1, b2] = plain.views(pixels(), new Generator(7));
  assert.deepEqual(a1.toFlatArray(), b1.toFlatArray());
  assert.deepEqual(a2.toFlatArray(), b2.toFlatArray());
});

test('with every probability 0 and the whole image as the crop, view 1 is the evaluation input', async () => {
  const image = await imageFrom(...IMAGE_VIEW1_OFF);
  const batch = pixels();
  const [view1, view2] = image.views(batch, new Generator(1));
  assert.deepEqual(view1.toFlatArray(), image.evalInput(batch).toFlatArray());
  // View 2 keeps its defaults, so it does change the batch: the comparison above can fail.
  assert.ok(view2.sub(image.evalInput(batch)).abs().max().item() > 0.1);
});

test('grayscaleP = 1 makes every pixel grey: R = G = B = 0.299 R + 0.587 G + 0.114 B of the input', async () => {
  const image = await imageFrom(...IMAGE_VIEW1_OFF, 'image.view1.grayscaleP=1');
  const batch = pixels();
  const [view1] = image.views(batch, new Generator(2));
  const { mean, std } = image.view1;
  const rgb = batch.float().div(255);
  const grey = rgb.select(1, 0).mul(0.299).add(rgb.select(1, 1).mul(0.587)).add(rgb.select(1, 2).mul(0.114));
  for (let c = 0; c < 3; c++) {
    const unnormalised = view1.select(1, c).mul(std[c]!).add(mean[c]!);
    assertClose(unnormalised, grey, 1e-5, 0);
  }
});

test('colour jitter of strength 0 leaves the colours as they are, even when always applied', async () => {
  const zero = ['brightness', 'contrast', 'saturation', 'hue'].map((k) => `image.view1.${k}=0`);
  const image = await imageFrom(...IMAGE_VIEW1_OFF, 'image.view1.colorJitterP=1', ...zero);
  const batch = pixels();
  assert.deepEqual(image.views(batch, new Generator(4))[0].toFlatArray(), image.evalInput(batch).toFlatArray());
  // Brightness alone scales each image by one factor in [0.5, 1.5] (clamped to [0, 1]).
  const brighter = await imageFrom(...IMAGE_VIEW1_OFF, 'image.view1.colorJitterP=1', ...zero, 'image.view1.brightness=0.5');
  const { mean, std } = brighter.view1;
  const [view1] = brighter.views(batch, new Generator(4));
  const input = batch.float().div(255);
  for (let i = 0; i < 4; i++) {
    const out = view1
      .select(0, i)
      .mul(tensor(std).reshape(3, 1, 1))
      .add(tensor(mean).reshape(3, 1, 1))
      .toFlatArray();
    const x = input.select(0, i).toFlatArray();
    const factor = out[x.findIndex((v) => v > 0.05)]! / x[x.findIndex((v) => v > 0.05)]!;
    assert.ok(factor >= 0.5 - 1e-5 && factor <= 1.5 + 1e-5, `image ${i}: factor ${factor}`);
    assert.ok(Math.abs(factor - 1) > 1e-3, `image ${i}: brightness 0.5 left it unchanged`);
    assertClose(
      out,
      x.map((v) => Math.min(1, v * factor)),
      1e-4,
      0,
    );
  }
});

test('text rates of 0 leave the token ids as they are; the other view keeps its defaults', async () => {
  const off = ['spanDeletionP', 'tokenDropoutRate', 'shuffleP', 'maskRate'].map((k) => `text.view1.${k}=0`);
  const config = resolveConfig({ overrides: ['text.vocabSize=64', 'text.dModel=16', 'text.heads=2', 'text.layers=1', ...off] });
  const text = (await textModality.fit(modalityOwnSettings(config.text), CAPTIONS)) as TextModality;
  const ids = await text.collate(CAPTIONS);
  const [view1, view2] = text.views(ids, new Generator(5));
  assert.deepEqual(view1.toArray(), ids.toArray());
  assert.notDeepEqual(view2.toArray(), ids.toArray());
  // maskRate 1 masks every text token but one per caption (the view never empties a caption).
  const masking = resolveConfig({ overrides: ['text.vocabSize=64', 'text.view1.maskRate=1', ...off.slice(0, 3)] });
  const masked = ((await textModality.fit(modalityOwnSettings(masking.text), CAPTIONS)) as TextModality).views(ids, new Generator(5))[0];
  const mask = text.tokenizer.specialIds.mask;
  const textTokens = (row: number[]): number => row.filter((id) => id !== 0 && id !== text.tokenizer.specialIds.cls).length;
  (masked.toArray() as number[][]).forEach((row, i) =>
    assert.equal(row.filter((id) => id === mask).length, textTokens((ids.toArray() as number[][])[i]!) - 1),
  );
});

test('the vector section sets the adapter and the views of the modality fitModalities builds', async () => {
  const vectors: VectorItem[] = Array.from({ length: 6 }, (_, i) => Array.from({ length: 5 }, (_, j) => Math.sin(i * 5 + j)));
  const items = vectors.map((vector, i) => ({ id: String(i), captions: [], extra: { vector } }));
  const zeroView = ['dropoutRate', 'noiseStd', 'mixP'].map((k) => `vector.view1.${k}=0`);
  const config = resolveConfig({ overrides: ['vector.featureDim=3', 'vector.hiddenDims=[8, 4]', ...zeroView] });
  const [vector] = (await fitModalities(config, items)) as [VectorModality];
  assert.ok(vector instanceof VectorModality);
  assert.deepEqual([vector.featureDim, vector.settings.hiddenDims], [3, [8, 4]]);
  const encoder = vector.createEncoder() as unknown as { at(i: number): unknown };
  assert.deepEqual(
    [0, 3, 6].map((i) => [(encoder.at(i) as Linear).inFeatures, (encoder.at(i) as Linear).outFeatures]),
    [
      [5, 8],
      [8, 4],
      [4, 3],
    ],
  );
  const batch = await vector.collate(vectors);
  const [view1, view2] = vector.views(batch, new Generator(0));
  assert.deepEqual(view1.toFlatArray(), batch.toFlatArray());
  assert.notDeepEqual(view2.toFlatArray(), batch.toFlatArray());
});

test('bad view values are refused, naming the key and what is allowed', () => {
  assert.match(refusal('image.view1.flipP=1.5'), /image\.view1\.flipP: .*<=1/);
  assert.match(refusal('image.view2.grayscaleP=-0.1'), /image\.view2\.grayscaleP: .*>=0/);
  assert.match(
    refusal('image.view2.cropScale=[0.9, 0.1]'),
    /image\.view2\.cropScale: \[0\.9, 0\.1\] is not a range: the first value \(min\) is above the second \(max\)/,
  );
  assert.match(refusal('image.view1.blurSigma=[2, 1]'), /image\.view1\.blurSigma: \[2, 1\] is not a range/);
  assert.match(refusal('image.view1.cropScale=[0, 1]'), /image\.view1\.cropScale\.0: .*>0/);
  assert.match(refusal('image.view1.cropRatio=[0.5]'), /image\.view1\.cropRatio: /);
  assert.match(refusal('image.view1.hue=0.6'), /image\.view1\.hue: .*<=0\.5/);
  assert.match(refusal('image.view1.blurp=0.5'), /unknown key 'image\.view1\.blurp'; allowed here: cropScale, cropRatio, flipP/);
  assert.match(refusal('text.view1.maskRate=-0.1'), /text\.view1\.maskRate: .*>=0/);
  assert.match(refusal('text.view2.shuffleWindow=1.5'), /text\.view2\.shuffleWindow: .*int/);
  assert.match(refusal('vector.view1.dropoutRate=1'), /vector\.view1\.dropoutRate: .*<1/);
  assert.match(refusal('vector.view2.noiseScale=percent'), /vector\.view2\.noiseScale: .*"relative"\|"absolute"/);
  assert.match(refusal('vector.hiddenDims=[16, 0]'), /vector\.hiddenDims\.1: .*>0/);
});

test('the image modality refuses a view probability outside [0, 1] given in code, naming the view and key', () => {
  assert.throws(
    () => new ImageModality({ size: SIZE, view2: { solarizeP: 1.2 } }),
    /image settings: view2\.solarizeP is 1\.2, expected a probability in \[0, 1\]/,
  );
  assert.throws(() => new ImageModality({ size: SIZE, view1: { flipP: -0.5 } }), /view1\.flipP is -0\.5/);
});

test('a restored modality (as loadModel and --resume rebuild it) draws the same views; its spec records every key', async () => {
  const image = await imageFrom('image.view1.cropScale=[0.5, 1]', 'image.view2.solarizeP=0.7', 'image.view2.blurSigma=[0.5, 1]');
  const spec = JSON.parse(JSON.stringify(image.toJSON()));
  assert.deepEqual(spec.settings.view1.cropScale, [0.5, 1]);
  assert.equal(spec.settings.view2.solarizeP, 0.7);
  assert.equal(spec.settings.view1.colorJitterP, 1); // defaults are recorded too (the config's 1, not the modality's own 0.8)
  const [restored] = restoreModalities([spec]) as [ImageModality];
  assert.deepEqual(restored.view2, image.view2);
  const [a1, a2] = image.views(pixels(), new Generator(9));
  const [b1, b2] = restored.views(pixels(), new Generator(9));
  assert.deepEqual(b1.toFlatArray(), a1.toFlatArray());
  assert.deepEqual(b2.toFlatArray(), a2.toFlatArray());
  // A checkpoint written before the views were config keys saved no overrides: it gets BYOL's views.
  const old = restoreModalities([{ name: 'image', settings: { ...spec.settings, view1: {}, view2: {} } }]) as Modality[];
  assert.deepEqual((old[0] as ImageModality).view2, new ImageModality({ size: SIZE }).view2);
});

test('data.modalities trains only the modalities it names, and refuses an unregistered one or one the data lacks', async () => {
  const items = Array.from({ length: 6 }, (_, i) => ({
    id: String(i),
    captions: [`caption ${i}`],
    extra: { vector: [i, 1, 2] },
  }));
  const both = await fitModalities(resolveConfig({ overrides: ['text.vocabSize=64'] }), items);
  assert.deepEqual(
    both.map((m) => m.name),
    ['text', 'vector'],
  );
  const chosen = await fitModalities(resolveConfig({ overrides: ['text.vocabSize=64', 'data.modalities=[vector]'] }), items);
  assert.deepEqual(
    chosen.map((m) => m.name),
    ['vector'],
  );
  await assert.rejects(
    fitModalities(resolveConfig({ overrides: ['data.modalities=[vector, smell]'] }), items),
    /data.modalities: 'smell' is not a registered modality \(image, text, vector/,
  );
  await assert.rejects(
    fitModalities(resolveConfig({ overrides: ['data.modalities=[image]'] }), items),
    /data.modalities: the training data has no 'image'/,
  );
});
