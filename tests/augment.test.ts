// The batched image views: shapes, value ranges, exact flips, seeded determinism, and the colour
// operations against torchvision's formulas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randint, rand, Generator, zeros, type Tensor } from '../src/index.js';
import {
  augmentView,
  byolView1,
  byolView2,
  randomResizedCropFlip,
  randomGaussianBlur,
  randomSolarize,
  colorJitter,
} from '../src/modalities/image/augment.js';
import { adjustBrightness, adjustContrast, adjustHue, adjustSaturation, grayscale, solarize } from '../src/modalities/image/color.js';
import { assertClose } from './helpers.js';

const batch = (c: number): Tensor => randint(0, 256, [6, c, 20, 20], { dtype: 'uint8', generator: new Generator(11) });

test('views have the requested shape, and values stay in range before normalisation', () => {
  for (const channels of [1, 3]) {
    const view = augmentView(batch(channels), { ...byolView2(16, channels), mean: [], std: [] }, new Generator(1));
    assert.deepEqual(view.shape, [6, channels, 16, 16]);
    assert.equal(view.dtype, 'float32');
    assert.ok(view.min().item() >= 0 && view.max().item() <= 1 + 1e-6, 'values outside [0, 1]');
  }
  const normalised = augmentView(batch(1), byolView1(16, 1), new Generator(1));
  assert.ok(normalised.min().item() >= -1 - 1e-5 && normalised.max().item() <= 1 + 1e-5);
});

test('the same seed gives the same views; another seed does not', () => {
  const a = augmentView(batch(3), byolView1(16), new Generator(5)).toFlatArray();
  const b = augmentView(batch(3), byolView1(16), new Generator(5)).toFlatArray();
  const c = augmentView(batch(3), byolView1(16), new Generator(6)).toFlatArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('a full-image crop is the identity (bit for bit, not resampled) and a flip mirrors exactly', () => {
  const x = rand([2, 1, 8, 8]);
  const whole = { size: 8, cropScale: [1, 1] as [number, number], cropRatio: [1, 1] as [number, number] };
  assert.deepEqual(randomResizedCropFlip(x, { ...whole, flipP: 0 }, new Generator(0)).toFlatArray(), x.toFlatArray());
  const mirrored = randomResizedCropFlip(x, { ...whole, flipP: 1 }, new Generator(0));
  const flipped = x.index([null, null, null, tensor([7, 6, 5, 4, 3, 2, 1, 0], { dtype: 'int64' })]);
  assertClose(mirrored, flipped, 1e-6);
});

test('blur keeps a constant image constant and spreads an impulse symmetrically', () => {
  const flat = zeros([1, 1, 20, 20]).add(0.5);
  assertClose(randomGaussianBlur(flat, 1, [1, 1], new Generator(0)), flat, 1e-6);
  const impulse = zeros([1, 1, 20, 20]);
  impulse.select(2, 10).select(2, 10).fill_(1);
  const blurred = randomGaussianBlur(impulse, 1, [1, 1], new Generator(0)).reshape(20, 20);
  assertClose(blurred.sum(), 1, 1e-5); // reflect padding keeps the mass of an interior impulse
  assertClose(blurred.select(0, 10).select(0, 9), blurred.select(0, 10).select(0, 11), 1e-7);
  assertClose(randomGaussianBlur(impulse, 0, [1, 1], new Generator(0)), impulse, 0); // p = 0: untouched
});

test('solarize inverts values at or above the threshold', () => {
  assertClose(solarize(tensor([0.2, 0.5, 0.9])), [0.2, 0.5, 0.1], 1e-7);
  const x = tensor([[[[0.7]]], [[[0.7]]]]);
  assertClose(randomSolarize(x, 1, new Generator(0)), [0.3, 0.3], 1e-6);
  assertClose(randomSolarize(x, 0, new Generator(0)), [0.7, 0.7], 0);
});

test('colour operations follow torchvision’s formulas', () => {
  const px = tensor([[[[0.2]], [[0.6]], [[0.4]]]]); // one RGB pixel
  const luma = 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 0.4;
  assertClose(grayscale(px), [luma], 1e-6);
  assertClose(adjustBrightness(px, tensor([1.5])), [0.3, 0.9, 0.6], 1e-6);
  assertClose(adjustSaturation(px, tensor([0])), [luma, luma, luma], 1e-6);
  assertClose(
    adjustContrast(px, tensor([0.5])),
    [0.2, 0.6, 0.4].map((v) => 0.5 * v + 0.5 * luma),
    1e-6,
  );
  // HSV of (0.2, 0.6, 0.4): h = (2 + (b − r)/chroma)/6 = (2 + 0.5)/6; rotating by −h/… : a shift of
  // 1/3 moves green-dominant to blue-dominant: (0.4, 0.2, 0.6).
  assertClose(adjustHue(px, tensor([1 / 3])), [0.4, 0.2, 0.6], 1e-5);
  assertClose(adjustHue(px, tensor([0])), [0.2, 0.6, 0.4], 1e-6);
});

test('one-channel images pass through saturation and hue, and jitter with p = 0 is the identity', () => {
  const grey = rand([2, 1, 4, 4]);
  assertClose(adjustSaturation(grey, tensor([0.3, 2])), grey, 0);
  assertClose(adjustHue(grey, tensor([0.1, -0.1])), grey, 0);
  const jittered = colorJitter(grey, { colorJitterP: 0, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 }, new Generator(0));
  assertClose(jittered, grey, 0);
});
