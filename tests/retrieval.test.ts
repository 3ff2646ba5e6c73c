// Image–text retrieval metrics against a brute-force JavaScript reference: random embeddings of
// several sizes (COCO's several captions per image included), deliberate ties, a hand-computed
// case, chunk-size invariance, and the chance levels.
import { test } from 'node:test';
import { mulberry32 } from '../src/data/epoch_order.js';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, type Tensor } from '../src/index.js';
import {
  chanceRecall,
  keyedChance,
  keyedRetrievalRanks,
  retrievalChance,
  retrievalMetrics,
  retrievalRanks,
  summarizeRanks,
} from '../src/eval/retrieval.js';
import { assertClose } from './helpers.js';

type Rows = number[][];

const unit = (v: number[]): number[] => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]): number => a.reduce((s, x, j) => s + x * b[j]!, 0);

/** The specification, element by element: rank = 1 + #wrong items with similarity ≥ the best correct one. */
function bruteForceRanks(images: Rows, captions: Rows, captionToImage: number[]): { i2t: number[]; t2i: number[] } {
  const im = images.map(unit);
  const cap = captions.map(unit);
  const t2i = cap.map((c, k) => {
    const correct = dot(c, im[captionToImage[k]!]!);
    return 1 + im.filter((v, i) => i !== captionToImage[k] && dot(c, v) >= correct).length;
  });
  const i2t = im.map((v, i) => {
    const best = Math.max(...cap.filter((_, k) => captionToImage[k] === i).map((c) => dot(v, c)));
    return 1 + cap.filter((c, k) => captionToImage[k] !== i && dot(v, c) >= best).length;
  });
  return { i2t, t2i };
}

/** Recall@K in percent, median (VSE++: floor of numpy's median) and mean, written out directly. */
function bruteForceSummary(ranks: number[]): { r1: number; r5: number; r10: number; medr: number; meanr: number } {
  const s = [...ranks].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  const at = (k: number): number => (100 * s.filter((r) => r <= k).length) / n;
  return { r1: at(1), r5: at(5), r10: at(10), medr: Math.floor(median), meanr: s.reduce((a, b) => a + b, 0) / n };
}

/** A seeded generator for the test's own random choices. */
const prng = mulberry32;

const rows = (t: Tensor): Rows => t.toArray() as Rows;
const repeatEach = (nImages: number, per: number): number[] => Array.from({ length: nImages * per }, (_, c) => Math.floor(c / per));

test('ranks and metrics equal a brute-force reference on random embeddings of several sizes', () => {
  manualSeed(11);
  const random = prng(3);
  const layouts: [string, number, number[]][] = [
    ['one image, one caption', 1, [0]],
    ['one caption per image', 9, Array.from({ length: 9 }, (_, i) => i)],
    ['COCO: five captions per image', 24, repeatEach(24, 5)],
    ['one to four captions per image, shuffled', 31, []],
  ];
  const variable: number[] = [];
  for (let i = 0; i < 31; i++) for (let k = 0; k <= Math.floor(random() * 4); k++) variable.push(i);
  variable.sort(() => random() - 0.5);
  layouts[3]![2] = variable;
  for (const [name, nImages, captionToImage] of layouts) {
    for (const d of [3, 16]) {
      const images = randn([nImages, d], { dtype: 'float64' });
      const captions = randn([captionToImage.length, d], { dtype: 'float64' });
      const expected = bruteForceRanks(rows(images), rows(captions), captionToImage);
      const ranks = retrievalRanks(images, captions, captionToImage, { chunkSize: 4 });
      assert.deepEqual(ranks, expected, `${name}, d=${d}`);
      const m = retrievalMetrics(images, captions, captionToImage, { chunkSize: 4 });
      const i2t = bruteForceSummary(expected.i2t);
      const t2i = bruteForceSummary(expected.t2i);
      assert.deepEqual(m.i2t, i2t, `${name}, d=${d}`);
      assert.deepEqual(m.t2i, t2i, `${name}, d=${d}`);
      assertClose(m.rsum, i2t.r1 + i2t.r5 + i2t.r10 + t2i.r1 + t2i.r5 + t2i.r10, 1e-9);
      assert.deepEqual([m.nImages, m.nCaptions], [nImages, captionToImage.length]);
    }
  }
});

test('a hand-computed case gives the ranks worked out on paper', () => {
  // Images I0=(1,0), I1=(0,1), I2=(-1,0); captions c0=(1,0)→I0, c1=(0,1)→I0, c2=(-1,0)→I1, c3=(1,1)/√2→I2.
  //   t2i: c0 sims (1, 0, -1)        its I0 is first                                     → 1
  //        c1 sims (0, 1, 0)         I1 (1) is above I0 (0), I2 (0) ties with it          → 3
  //        c2 sims (-1, 0, 1)        I2 (1) is above I1 (0)                               → 2
  //        c3 sims (.71, .71, -.71)  both others are above I2                             → 3
  //   i2t: I0 sims (1, 0, -1, .71)   best correct c0 = 1, nothing wrong reaches it        → 1
  //        I1 sims (0, 1, 0, .71)    correct c2 = 0; c0 ties (0), c1 (1), c3 (.71) above → 4
  //        I2 sims (-1, 0, 1, -.71)  correct c3 = -.71; c1 (0) and c2 (1) above          → 3
  const images = [
    [1, 0],
    [0, 1],
    [-1, 0],
  ];
  const captions = [
    [1, 0],
    [0, 1],
    [-1, 0],
    [1, 1],
  ];
  const captionToImage = [0, 0, 1, 2];
  for (const dtype of ['float32', 'float64'] as const) {
    const ranks = retrievalRanks(tensor(images, { dtype }), tensor(captions, { dtype }), captionToImage);
    assert.deepEqual(ranks, { i2t: [1, 4, 3], t2i: [1, 3, 2, 3] }, dtype);
    const m = retrievalMetrics(tensor(images, { dtype }), tensor(captions, { dtype }), captionToImage);
    assertClose([m.i2t.r1, m.i2t.r5, m.i2t.r10, m.i2t.medr, m.i2t.meanr], [100 / 3, 100, 100, 3, 8 / 3], 1e-9);
    assertClose([m.t2i.r1, m.t2i.r5, m.t2i.r10, m.t2i.medr, m.t2i.meanr], [25, 100, 100, 2, 9 / 4], 1e-9); // medr: floor(2.5)
    assertClose(m.rsum, 100 / 3 + 200 + 25 + 200, 1e-9);
  }
});

test('a duplicate of the correct item is ranked before it, in both directions', () => {
  // Two images with the same embedding, each with one caption equal to it: every similarity is 1,
  // so each query has one wrong item tied with its correct one and gets rank 2, never a hit at 1.
  // (Entries ±½ keep every product and sum exact, so the ties are exact whatever the BLAS kernel.)
  const same = [
    [0.5, 0.5, -0.5, 0.5],
    [0.5, 0.5, -0.5, 0.5],
  ];
  const m = retrievalMetrics(tensor(same, { dtype: 'float64' }), tensor(same, { dtype: 'float64' }), [0, 1]);
  assert.deepEqual(retrievalRanks(tensor(same), tensor(same), [0, 1]), { i2t: [2, 2], t2i: [2, 2] });
  assert.deepEqual([m.i2t.r1, m.t2i.r1, m.i2t.r5, m.i2t.medr], [0, 0, 100, 2]);
  // Collapsed embeddings (all equal) rank every correct answer last.
  const collapsed = Array.from({ length: 6 }, () => [0.5, -0.5, 0.5, 0.5]);
  const ranks = retrievalRanks(tensor(collapsed.slice(0, 3)), tensor(collapsed), [0, 0, 1, 1, 2, 2]);
  assert.deepEqual(ranks, { i2t: [5, 5, 5], t2i: [3, 3, 3, 3, 3, 3] });
});

test('many exact ties are ranked as the reference ranks them', () => {
  // Unit vectors with entries in {0, ±½, ±1}: every cosine is a multiple of ¼ and exact in any
  // summation order, so ties are real ties in float32 and float64 alike.
  const palette: number[][] = [];
  for (let k = 0; k < 4; k++) for (const s of [1, -1]) palette.push([0, 1, 2, 3].map((j) => (j === k ? s : 0)));
  for (let bits = 0; bits < 16; bits++) palette.push([0, 1, 2, 3].map((j) => (bits & (1 << j) ? 0.5 : -0.5)));
  const random = prng(17);
  const pick = (n: number): Rows => Array.from({ length: n }, () => palette[Math.floor(random() * palette.length)]!);
  const nImages = 40;
  const captionToImage = repeatEach(nImages, 3);
  const images = pick(nImages);
  const captions = pick(captionToImage.length);
  const expected = bruteForceRanks(images, captions, captionToImage);
  for (const dtype of ['float32', 'float64'] as const) {
    for (const chunkSize of [7, 1024]) {
      assert.deepEqual(
        retrievalRanks(tensor(images, { dtype }), tensor(captions, { dtype }), captionToImage, { chunkSize }),
        expected,
        `${dtype}, chunk ${chunkSize}`,
      );
    }
  }
});

test('the chunk size does not change the result', () => {
  manualSeed(12);
  const captionToImage = repeatEach(23, 5);
  const images = randn([23, 8]);
  const captions = randn([115, 8]);
  const whole = retrievalRanks(images, captions, captionToImage, { chunkSize: 1024 });
  for (const chunkSize of [1, 2, 5, 22, 23, 24, 114]) {
    assert.deepEqual(retrievalRanks(images, captions, captionToImage, { chunkSize }), whole, `chunk ${chunkSize}`);
  }
  assert.ok(
    whole.i2t.some((r) => r > 1),
    'random embeddings should not all rank first',
  );
});

test('summarizeRanks computes recall, the VSE++ median and the mean', () => {
  assert.deepEqual(summarizeRanks([1, 3, 2, 12]), { r1: 25, r5: 75, r10: 75, medr: 2, meanr: 4.5 });
  assert.deepEqual(summarizeRanks([7, 1, 11]), { r1: 100 / 3, r5: 100 / 3, r10: 200 / 3, medr: 7, meanr: 19 / 3 });
  assert.throws(() => summarizeRanks([]), /no ranks/);
});

/** Chance recall by enumerating every ordering of the captions, for image→text. */
function enumeratedChanceI2t(captionToImage: number[], nImages: number, k: number): number {
  const n = captionToImage.length;
  let hits = 0;
  let orderings = 0;
  const order: number[] = [];
  const used = new Array<boolean>(n).fill(false);
  const visit = (): void => {
    if (order.length === n) {
      orderings++;
      for (let i = 0; i < nImages; i++) if (order.slice(0, k).some((c) => captionToImage[c] === i)) hits++;
      return;
    }
    for (let c = 0; c < n; c++) {
      if (used[c]) continue;
      used[c] = true;
      order.push(c);
      visit();
      order.pop();
      used[c] = false;
    }
  };
  visit();
  return (100 * hits) / (orderings * nImages);
}

test('chance recall matches hand values and an enumeration of all orderings', () => {
  const oneToOne = Array.from({ length: 10 }, (_, i) => i);
  assertClose(
    [1, 5, 10, 20].flatMap((k) => {
      const { i2t, t2i } = chanceRecall(oneToOne, 10, k);
      return [i2t, t2i];
    }),
    [10, 10, 50, 50, 100, 100, 100, 100],
    1e-9,
  );
  // Images with 2, 1 and 3 of six captions. K=1: (2+1+3)/6 / 3; K=2: 1 − C(4,2)/C(6,2) = 0.6,
  // 1 − C(5,2)/C(6,2) = 1/3, 1 − C(3,2)/C(6,2) = 0.8.
  const uneven = [0, 0, 1, 2, 2, 2];
  assertClose(chanceRecall(uneven, 3, 1).i2t, 100 / 3, 1e-9);
  assertClose(chanceRecall(uneven, 3, 2).i2t, (100 * (0.6 + 1 / 3 + 0.8)) / 3, 1e-9);
  assertClose(chanceRecall(uneven, 3, 2).t2i, 200 / 3, 1e-9);
  for (let k = 1; k <= 6; k++) assertClose(chanceRecall(uneven, 3, k).i2t, enumeratedChanceI2t(uneven, 3, k), 1e-9);
  // COCO 5k: five of 25,000 captions per image.
  const coco = retrievalChance(repeatEach(5000, 5), 5000);
  assertClose([coco.t2i.r1, coco.t2i.r5, coco.t2i.r10], [0.02, 0.1, 0.2], 1e-12);
  assertClose(coco.i2t.r1, 0.02, 1e-9);
  assertClose(coco.i2t.r10, 100 * (1 - Array.from({ length: 10 }, (_, j) => (24995 - j) / (25000 - j)).reduce((a, b) => a * b, 1)), 1e-9);
  assertClose(coco.rsum, coco.i2t.r1 + coco.i2t.r5 + coco.i2t.r10 + 0.32, 1e-9);
  assert.throws(() => chanceRecall(oneToOne, 10, 0), /k must be a positive integer/);
});

test('random embeddings score about the chance level', () => {
  manualSeed(13);
  const captionToImage = repeatEach(4, 5); // 4 images, 20 captions
  const draws = 300;
  let i2tR1 = 0;
  let i2tR5 = 0;
  let t2iR1 = 0;
  for (let draw = 0; draw < draws; draw++) {
    const m = retrievalMetrics(randn([4, 32], { dtype: 'float64' }), randn([20, 32], { dtype: 'float64' }), captionToImage);
    i2tR1 += m.i2t.r1 / draws;
    i2tR5 += m.i2t.r5 / draws;
    t2iR1 += m.t2i.r1 / draws;
  }
  const chance = retrievalChance(captionToImage, 4); // i2t R@1 25, R@5 1 − C(15,5)/C(20,5) ≈ 80.6, t2i R@1 25
  assertClose(chance.i2t.r5, 100 * (1 - 3003 / 15504), 1e-9);
  assertClose([i2tR1, i2tR5, t2iR1], [chance.i2t.r1, chance.i2t.r5, chance.t2i.r1], 4);
});

test('bad inputs are refused with the argument named', () => {
  const images = randn([3, 4]);
  const captions = randn([4, 4]);
  assert.throws(() => retrievalRanks(images, captions, [0, 1, 2]), /captionToImage has 3 entries for 4 captions/);
  assert.throws(() => retrievalRanks(images, captions, [0, 1, 2, 3]), /captionToImage\[3\] is 3, not an image index in \[0, 3\)/);
  assert.throws(() => retrievalRanks(images, captions, [0, 0, 1, 1]), /image 2 has no caption/);
  assert.throws(() => retrievalRanks(images, randn([4, 5]), [0, 1, 2, 2]), /differ in width/);
  assert.throws(() => retrievalRanks(images.reshape(12), captions, [0, 1, 2, 2]), /imageEmbeddings must be \[N, d\], got \[12\]/);
  assert.throws(() => retrievalRanks(images, captions, [0, 1, 2, 2], { chunkSize: 0 }), /chunkSize must be a positive integer/);
  assert.throws(
    () => retrievalRanks(images, tensor([[0, 0, 0, NaN], ...(rows(captions).slice(1) as Rows)]), [0, 1, 2, 2]),
    /captionEmbeddings holds NaN/,
  );
});

/** Keyed retrieval, element by element: rank = 1 + #entries of other keys with similarity ≥ the best correct one. */
function bruteForceKeyedRanks(queries: Rows, gallery: Rows, queryKeys: number[], galleryKeys: number[]): number[] {
  const g = gallery.map(unit);
  return queries.map(unit).map((q, i) => {
    const best = Math.max(...g.filter((_, j) => galleryKeys[j] === queryKeys[i]).map((v) => dot(q, v)));
    return 1 + g.filter((v, j) => galleryKeys[j] !== queryKeys[i] && dot(q, v) >= best).length;
  });
}

test('keyed ranks (any two modalities of the same items) equal a brute-force reference, with several entries per key on both sides', () => {
  manualSeed(12);
  const random = prng(5);
  // Items 100..119; each has 0-2 queries and 1-3 gallery entries, in shuffled order; sparse keys.
  const queryKeys: number[] = [];
  const galleryKeys: number[] = [];
  for (let item = 100; item < 120; item++) {
    for (let k = 0; k < Math.floor(random() * 3); k++) queryKeys.push(item);
    for (let k = 0; k <= Math.floor(random() * 3); k++) galleryKeys.push(item);
  }
  queryKeys.sort(() => random() - 0.5);
  galleryKeys.sort(() => random() - 0.5);
  const queries = randn([queryKeys.length, 8], { dtype: 'float64' });
  const gallery = randn([galleryKeys.length, 8], { dtype: 'float64' });
  const expected = bruteForceKeyedRanks(rows(queries), rows(gallery), queryKeys, galleryKeys);
  assert.deepEqual(keyedRetrievalRanks(queries, gallery, queryKeys, galleryKeys, { chunkSize: 3 }), expected);
  // With the image index as key it is image→text retrieval.
  const images = randn([5, 8], { dtype: 'float64' });
  const captions = randn([10, 8], { dtype: 'float64' });
  const captionToImage = repeatEach(5, 2);
  const imageKeys = [0, 1, 2, 3, 4];
  assert.deepEqual(keyedRetrievalRanks(images, captions, imageKeys, captionToImage), retrievalRanks(images, captions, captionToImage).i2t);
});

test('keyed chance matches hand values and the image–text chance', () => {
  assertClose(keyedChance([0, 1], [0, 0, 1], 1), 50, 1e-9); // (2/3 + 1/3) / 2
  assertClose(keyedChance([0, 1], [0, 0, 1], 2), (100 * (1 + (1 - 1 / 3))) / 2, 1e-9); // item 1: 1 − C(2,2)/C(3,2)
  const uneven = [0, 0, 0, 1, 2, 2];
  assertClose(keyedChance([0, 1, 2], uneven, 2), chanceRecall(uneven, 3, 2).i2t, 1e-9);
  assertClose(keyedChance(uneven, [0, 1, 2], 2), chanceRecall(uneven, 3, 2).t2i, 1e-9);
  assert.throws(() => keyedChance([0], [0], 0), /k must be a positive integer/);
});

test('keyed ranks refuse bad inputs naming the argument', () => {
  const q = randn([2, 4]);
  const g = randn([3, 4]);
  assert.throws(() => keyedRetrievalRanks(q, g, [0], [0, 1, 2]), /queryKeys has 1 entries for 2 rows/);
  assert.throws(() => keyedRetrievalRanks(q, g, [0, 5], [0, 1, 2]), /query 1 \(key 5\) has no correct entry in the gallery/);
  assert.throws(() => keyedRetrievalRanks(q, g, [0, 1.5], [0, 1, 2]), /queryKeys\[1\] is 1.5, not an integer/);
  assert.throws(() => keyedRetrievalRanks(q, randn([3, 5]), [0, 1], [0, 1, 2]), /differ in width/);
});
