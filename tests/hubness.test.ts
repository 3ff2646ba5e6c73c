// Hubness of a cross-modal space: nearest-neighbour counts and mean unit embeddings, against values
// worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../src/engine/index.js';
import { hubness } from '../src/eval/hubness.js';

test('a hub image that is every caption’s nearest, and the mean unit embeddings’ lengths', () => {
  // images at 0°, 90°, 180° (lengths 2, 1, 3: only directions count); captions at 10°, 30°, -20°, 80°
  const deg = (a: number): [number, number] => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)];
  const images = tensor(
    [
      [2, 0],
      [0, 1],
      [-3, 0],
    ],
    { dtype: 'float64' },
  );
  const captions = tensor([deg(10), deg(30), deg(-20), deg(80)], { dtype: 'float64' });
  const h = hubness(images, captions);
  // nearest image: 10° → 0°, 30° → 0°, −20° → 0°, 80° → 90°
  assert.equal(h.maxCaptionsPerNearestImage, 3);
  assert.equal(h.imagesEverNearest, 2);
  // nearest caption: 0° → −20°? |0−(−20)| = 20 > |0−10| = 10, so 10°; 90° → 80°; 180° → 80° (100° away, the least)
  assert.equal(h.maxImagesPerNearestCaption, 2);
  assert.equal(h.captionsEverNearest, 2);
  // mean of (1,0), (0,1), (−1,0) is (0, 1/3)
  assert.ok(Math.abs(h.meanUnitImageNorm - 1 / 3) < 1e-12);
  const sum = [10, 30, -20, 80].map(deg).reduce((a, b) => [a[0] + b[0], a[1] + b[1]]);
  assert.ok(Math.abs(h.meanUnitCaptionNorm - Math.hypot(sum[0], sum[1]) / 4) < 1e-12);
});

test('hubness refuses embeddings of different widths, naming both shapes', () => {
  assert.throws(() => hubness(tensor([[1, 0]]), tensor([[1, 0, 0]])), /\[1, 2\] and captionEmbeddings \[1, 3\]/);
});
