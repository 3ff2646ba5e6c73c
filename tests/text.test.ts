// The text modality: the WordPiece tokenizer trained on captions, the Transformer encoder, the
// noised views and the Modality plug-in, each behaviour against a hand-worked or brute-force value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Generator, cat, manualSeed, noGrad, setNumThreads, tensor, zeros, type Tensor } from '../src/index.js';
import {
  DEFAULT_SPECIAL_IDS,
  TextTokenizer,
  TextTransformer,
  TokenizerError,
  deleteSpan,
  dropTokens,
  maskTokens,
  shuffleLocally,
  textModality,
  textSettings,
  textView,
  textViewConfig,
  trainTokenizer,
  type TextModality,
  type TextViewConfig,
} from '../src/modalities/text/index.js';
import { assertClose } from './helpers.js';
import { scratchDir } from './scratch_dir.js';

setNumThreads(1);

const CAPTIONS = [
  'A red car parked on the street.',
  'Two dogs playing on the beach.',
  'A black and white icon of a camera.',
  'The camera icon, from the outline set.',
  'A dog running after a red ball.',
  'Cars parked along a busy street at night.',
  'An icon showing a small house with a red door.',
  'Three cats sleeping on a sofa.',
  'A cat playing with a ball of wool.',
  'Houses along the beach at sunset.',
  'A small black dog on a white sofa.',
  'The outline icon of a house.',
];

const { pad: PAD, cls: CLS, mask: MASK } = DEFAULT_SPECIAL_IDS;

/** Rows of an id tensor as arrays. */
function rows(ids: Tensor): number[][] {
  return ids.toArray() as number[][];
}

/** The text tokens of a row (neither [CLS] nor [PAD]). */
function textOf(row: number[]): number[] {
  return row.filter((id) => id !== PAD && id !== CLS);
}

/**
 * A batch laid out as the tokenizer writes it: [CLS], then `lengths[i]` distinct text ids (so a test
 * can follow each token), then padding to `width`.
 */
function idBatch(lengths: number[], width: number): Tensor {
  let next = 10;
  const data = lengths.map((n) => [CLS, ...Array.from({ length: n }, () => next++), ...Array<number>(width - 1 - n).fill(PAD)]);
  return tensor(data, { dtype: 'int64' });
}

/** Row lengths 0 … 31 cycling, width 32: rows with no text, one token, and full rows. */
function variedBatch(n: number): Tensor {
  return idBatch(
    Array.from({ length: n }, (_, i) => i % 32),
    32,
  );
}

/** Asserts the layout every view keeps: [CLS] first and nowhere else, padding only on the right. */
function assertLayout(row: number[], original: number[], where: string): void {
  assert.equal(row[0], CLS, `${where}: [CLS] is not first`);
  assert.equal(row.indexOf(CLS, 1), -1, `${where}: [CLS] appears again`);
  const firstPad = row.indexOf(PAD);
  if (firstPad >= 0)
    assert.ok(
      row.slice(firstPad).every((id) => id === PAD),
      `${where}: text after padding: ${row}`,
    );
  if (textOf(original).length > 0) assert.ok(textOf(row).length >= 1, `${where}: the row lost all its text`);
}

// ---- tokenizer ----

test('training merges the most frequent pair first and stops at vocabSize or minFrequency (hand-worked)', () => {
  // Words: "ab" ×3, "abc" ×1 → pieces a ##b (×3), a ##b ##c (×1). Pair counts: (a, ##b) 4, (##b, ##c) 1.
  // First merge: "ab". Then "abc" is ab ##c, pair count 1: merged only when minFrequency ≤ 1.
  const base = ['[PAD]', '[UNK]', '[CLS]', '[MASK]', 'a', 'b', 'c', '##a', '##b', '##c'];
  const texts = ['ab ab ab', 'abc'];
  assert.deepEqual(trainTokenizer(texts, { vocabSize: 10 }).vocabulary(), base);
  assert.deepEqual(trainTokenizer(texts, { vocabSize: 11 }).vocabulary(), [...base, 'ab']);
  assert.deepEqual(trainTokenizer(texts, { vocabSize: 12, minFrequency: 2 }).vocabulary(), [...base, 'ab']);
  assert.deepEqual(trainTokenizer(texts, { vocabSize: 12, minFrequency: 1 }).vocabulary(), [...base, 'ab', 'abc']);
});

test('vocabSize is respected, the special tokens are ids 0–3, and every id is below vocabSize', async () => {
  const tokenizer = trainTokenizer(CAPTIONS, { vocabSize: 90, minFrequency: 1 });
  assert.equal(tokenizer.vocabSize, 90);
  assert.deepEqual(tokenizer.vocabulary().slice(0, 4), ['[PAD]', '[UNK]', '[CLS]', '[MASK]']);
  assert.deepEqual(tokenizer.specialIds, { pad: 0, unk: 1, cls: 2, mask: 3 });
  const { ids } = await tokenizer.encodeBatch(CAPTIONS, 40);
  assert.ok(Math.max(...ids.toFlatArray()) < 90);
  assert.throws(() => trainTokenizer(CAPTIONS, { vocabSize: 20 }), TokenizerError); // the alphabet alone needs more
});

test('encode then decode gives back the lowercased text for in-vocabulary words', async () => {
  const tokenizer = trainTokenizer(CAPTIONS, { vocabSize: 300, minFrequency: 1 });
  for (const text of ['A Red CAR parked on the STREET.', 'Three dogs sleeping on a white sofa.', 'Houses with a red door at night.']) {
    assert.equal(await tokenizer.decode(await tokenizer.encode(text)), text.toLowerCase());
  }
  // Pieces: a frequent word is one token; a new word of known characters is split into ## pieces.
  const pieces = async (text: string): Promise<string[]> => (await tokenizer.encode(text)).map((id) => tokenizer.idToToken(id)!);
  assert.deepEqual(await pieces('the beach'), ['[CLS]', 'the', 'beach']);
  const novel = await pieces('beaches');
  assert.equal(novel[1], 'beach');
  assert.ok(novel.slice(2).every((p) => p.startsWith('##')));
  // A character never seen in training makes its word [UNK].
  assert.deepEqual(await tokenizer.encode('a ζeta dog'), [
    CLS,
    tokenizer.tokenToId('a'),
    DEFAULT_SPECIAL_IDS.unk,
    tokenizer.tokenToId('dog'),
  ]);
});

test('encodeBatch: [CLS] first, truncated to maxLength, padded with 0 to maxLength or to the longest row', async () => {
  const tokenizer = trainTokenizer(CAPTIONS, { vocabSize: 200, minFrequency: 1 });
  const texts = ['a red car', 'two dogs playing on the beach at sunset with a red ball', ''];
  const single = await Promise.all(texts.map((t) => tokenizer.encode(t)));
  assert.deepEqual(single[0]!.length, 4); // [CLS] a red car
  assert.deepEqual(single[2], [CLS]);
  const { ids, lengths } = await tokenizer.encodeBatch(texts, 8);
  assert.equal(ids.dtype, 'int64');
  assert.deepEqual(ids.shape, [3, 8]);
  assert.deepEqual(
    rows(ids),
    single.map((s) => [...s.slice(0, 8), ...Array<number>(Math.max(0, 8 - s.length)).fill(PAD)]),
  );
  assert.deepEqual([...lengths], [4, 8, 1]);
  const longest = await tokenizer.encodeBatch(['a red car', 'a dog'], 8, { padding: 'longest' });
  assert.deepEqual(rows(longest.ids), [single[0], [...(await tokenizer.encode('a dog')), PAD]]);
});

test('save/load and toJSON/fromJSON give a tokenizer with identical ids', async () => {
  const tokenizer = trainTokenizer(CAPTIONS, { vocabSize: 120 });
  const dir = scratchDir('byol-text-');
  const file = join(dir, 'tokenizer.json');
  tokenizer.save(file);
  const loaded = TextTokenizer.load(file);
  const restored = TextTokenizer.fromJSON(tokenizer.toJSON());
  const expected = rows((await tokenizer.encodeBatch(CAPTIONS, 24)).ids);
  assert.deepEqual(rows((await loaded.encodeBatch(CAPTIONS, 24)).ids), expected);
  assert.deepEqual(rows((await restored.encodeBatch(CAPTIONS, 24)).ids), expected);
  assert.equal(loaded.toJSON(), tokenizer.toJSON());
});

test('training is deterministic and independent of the order of the texts', () => {
  const a = trainTokenizer(CAPTIONS, { vocabSize: 150 }).toJSON();
  assert.equal(trainTokenizer(CAPTIONS, { vocabSize: 150 }).toJSON(), a);
  assert.equal(trainTokenizer([...CAPTIONS].reverse(), { vocabSize: 150 }).toJSON(), a);
});

test('fromJSON refuses a tokenizer whose [PAD] is not id 0, naming the problem', () => {
  const json = JSON.parse(trainTokenizer(CAPTIONS, { vocabSize: 100 }).toJSON()) as { model: { vocab: Record<string, number> } };
  const vocab = json.model.vocab;
  [vocab['[PAD]'], vocab['[UNK]']] = [vocab['[UNK]']!, vocab['[PAD]']!];
  assert.throws(() => TextTokenizer.fromJSON(JSON.stringify(json)), /\[PAD\] must have id 0/);
  assert.throws(() => TextTokenizer.fromJSON('{"not": "a tokenizer"}'), TokenizerError);
});

// ---- encoder ----

function smallEncoder(pooling: 'mean' | 'cls' = 'mean', seed = 0): TextTransformer {
  manualSeed(seed);
  return new TextTransformer({ vocabSize: 50, maxLength: 12, dModel: 16, layers: 2, heads: 2, pooling });
}

test('the encoder maps ids [N, L] to [N, dModel] for any L ≤ maxLength', () => {
  const encoder = smallEncoder();
  assert.equal(encoder.featureDim, 16);
  assert.equal(
    encoder
      .eval()
      .forward(idBatch([3, 0, 5], 8))
      .shape.join(),
    '3,16',
  );
  assert.equal(encoder.forward(idBatch([11], 12)).shape.join(), '1,16');
  assert.throws(() => encoder.forward(idBatch([3], 13)), /maxLength 12/);
  assert.throws(() => encoder.forward(tensor([[PAD, PAD]], { dtype: 'int64' })), /all padding/);
  assert.throws(() => encoder.forward(tensor([[2, 5]])), /int64/);
});

test('appending padding does not change the mean-pooled output (eval mode)', () => {
  const encoder = smallEncoder().eval();
  const ids = idBatch([1, 4, 6], 7); // ids 10…20, all below vocabSize
  const padded = cat([ids, zeros([3, 5], { dtype: 'int64' })], 1);
  noGrad(() => assertClose(encoder.forward(padded), encoder.forward(ids), 1e-5, 0));
});

test("pooling: 'cls' is the first token's final vector, 'mean' the average over non-padding tokens", () => {
  const meanEncoder = smallEncoder('mean').eval();
  const clsEncoder = smallEncoder('cls').eval();
  clsEncoder.loadStateDict(meanEncoder.stateDict());
  const ids = idBatch([2, 5], 8);
  noGrad(() => {
    // The per-token vectors, by hand from the encoder's parts.
    const padding = ids.eq(PAD);
    let x = meanEncoder.tokenEmbedding.forward(ids).add(meanEncoder.positionalEmbedding.narrow(0, 0, 8));
    for (const layer of meanEncoder.layers) x = layer.forward(x, { srcKeyPaddingMask: padding });
    const tokens = meanEncoder.lnFinal.forward(x).toArray() as number[][][];
    const counts = [3, 6];
    const expectedMean = tokens.map((row, i) =>
      row.slice(0, counts[i]).reduce((s, v) => s.map((a, d) => a + v[d]! / counts[i]!), Array<number>(16).fill(0)),
    );
    assertClose(meanEncoder.forward(ids), expectedMean.flat(), 1e-5);
    assertClose(clsEncoder.forward(ids), tokens.map((row) => row[0]!).flat(), 1e-5);
  });
});

test('in training every parameter gets a gradient, except the padding row of the token table', () => {
  const encoder = smallEncoder().train();
  encoder
    .forward(idBatch([3, 6], 8))
    .square()
    .sum()
    .backward();
  for (const [name, p] of encoder.namedParameters()) assert.notEqual(p.grad, null, `${name} got no gradient`);
  const tableGrad = encoder.tokenEmbedding.weight.grad!;
  assert.equal(tableGrad.select(0, PAD).abs().sum().item(), 0);
  assert.ok(tableGrad.select(0, 10).abs().sum().item() > 0);
});

// ---- views ----

const AGGRESSIVE: TextViewConfig = textViewConfig({
  spanDeletionP: 1,
  spanMaxFraction: 1,
  tokenDropoutRate: 0.9,
  shuffleP: 1,
  shuffleWindow: 3,
  maskRate: 0.9,
});

test('every view keeps [CLS] first, padding on the right and at least one text token', () => {
  const ids = variedBatch(64);
  const original = rows(ids);
  const g = new Generator(1);
  const views: [string, Tensor][] = [
    ['textView', textView(ids, AGGRESSIVE, g)],
    ['textView (defaults)', textView(ids, textViewConfig(), g)],
    ['deleteSpan', deleteSpan(ids, 1, 1, g)],
    ['dropTokens', dropTokens(ids, 1, g)],
    ['shuffleLocally', shuffleLocally(ids, 1, 5, g)],
    ['maskTokens', maskTokens(ids, 1, g)],
  ];
  for (const [name, view] of views) {
    assert.deepEqual(view.shape, ids.shape, name);
    rows(view).forEach((row, i) => assertLayout(row, original[i]!, `${name} row ${i}`));
  }
});

test('dropTokens and deleteSpan keep the surviving tokens in order; deleteSpan removes one contiguous span of ≤ ⌊f·n⌋', () => {
  const ids = variedBatch(96);
  const g = new Generator(2);
  const isSubsequence = (sub: number[], full: number[]): boolean => {
    let j = 0;
    for (const v of full) if (j < sub.length && sub[j] === v) j++;
    return j === sub.length;
  };
  rows(dropTokens(ids, 0.5, g)).forEach((row, i) => assert.ok(isSubsequence(textOf(row), textOf(rows(ids)[i]!)), `row ${i}`));
  let deletedSomewhere = false;
  rows(deleteSpan(ids, 1, 0.5, g)).forEach((row, i) => {
    const before = textOf(rows(ids)[i]!);
    const after = textOf(row);
    const removed = before.filter((v) => !after.includes(v));
    const k = removed.length;
    assert.ok(k <= Math.min(Math.floor(0.5 * before.length), Math.max(0, before.length - 1)), `row ${i}: span ${k} too long`);
    if (k > 0) {
      deletedSomewhere = true;
      const start = before.indexOf(removed[0]!);
      assert.deepEqual(removed, before.slice(start, start + k), `row ${i}: not contiguous`);
      assert.deepEqual(after, [...before.slice(0, start), ...before.slice(start + k)], `row ${i}`);
    }
  });
  assert.ok(deletedSomewhere);
});

test('shuffleLocally permutes each row, moving no token more than `window` places', () => {
  const ids = variedBatch(64);
  const window = 2;
  let moved = 0;
  rows(shuffleLocally(ids, 1, window, new Generator(3))).forEach((row, i) => {
    const before = rows(ids)[i]!;
    assert.deepEqual(
      [...row].sort((a, b) => a - b),
      [...before].sort((a, b) => a - b),
      `row ${i} is not a permutation`,
    );
    row.forEach((id, pos) => {
      if (id === PAD) return;
      const from = before.indexOf(id);
      assert.ok(Math.abs(from - pos) <= window, `row ${i}: token moved ${from} → ${pos}`);
      if (from !== pos) moved++;
    });
  });
  assert.ok(moved > 100, `only ${moved} tokens moved`);
});

test('maskTokens changes only text tokens, only to [MASK], at about the given rate', () => {
  const ids = variedBatch(512);
  const view = maskTokens(ids, 0.3, new Generator(4));
  const [before, after] = [ids.toFlatArray(), view.toFlatArray()];
  let text = 0;
  let masked = 0;
  before.forEach((id, i) => {
    if (id === PAD || id === CLS) return assert.equal(after[i], id);
    text++;
    if (after[i] !== id) {
      assert.equal(after[i], MASK);
      masked++;
    }
  });
  // 7936 text tokens: the standard error of the fraction is √(0.3·0.7/7936) ≈ 0.005.
  assert.ok(Math.abs(masked / text - 0.3) < 0.02, `masked fraction ${masked / text}`);
  const dropped = textOf(dropTokens(ids, 0.3, new Generator(5)).toFlatArray()).length;
  assert.ok(Math.abs(1 - dropped / text - 0.3) < 0.02, `dropped fraction ${1 - dropped / text}`);
});

test('the same seed gives the same view, another seed another view', () => {
  const ids = variedBatch(32);
  const config = textViewConfig();
  const a = rows(textView(ids, config, new Generator(7)));
  assert.deepEqual(rows(textView(ids, config, new Generator(7))), a);
  assert.notDeepEqual(rows(textView(ids, config, new Generator(8))), a);
});

test('rates of 0 leave the ids unchanged', () => {
  const ids = variedBatch(32);
  const zero = textViewConfig({ spanDeletionP: 0, tokenDropoutRate: 0, shuffleP: 0, maskRate: 0 });
  assert.deepEqual(rows(textView(ids, zero, new Generator(9))), rows(ids));
  assert.deepEqual(
    rows(textView(ids, textViewConfig({ spanMaxFraction: 0, tokenDropoutRate: 0, shuffleWindow: 0, maskRate: 0 }), new Generator(9))),
    rows(ids),
  );
  assert.throws(() => textViewConfig({ maskRate: 1.5 }), /maskRate/);
  assert.throws(() => textViewConfig({ maskrate: 0.1 } as Partial<TextViewConfig>), /unknown field 'maskrate'/);
});

// ---- modality ----

test('fit, toJSON and restore round-trip: same settings, same tokenizer, same collate output', async () => {
  const settings = { vocabSize: 120, maxLength: 16, dModel: 16, layers: 1, heads: 2, view2: { maskRate: 0.2 } };
  const text = (await textModality.fit(settings, CAPTIONS)) as TextModality;
  const spec = JSON.parse(JSON.stringify(text.toJSON())) as ReturnType<TextModality['toJSON']>;
  assert.equal(spec.name, 'text');
  assert.equal(spec.settings.dimFeedforward, 64);
  assert.equal((spec.settings.view1 as TextViewConfig).maskRate, 0.15);
  assert.equal((spec.settings.view2 as TextViewConfig).maskRate, 0.2);
  assert.equal(typeof spec.state?.tokenizer, 'string');
  const restored = textModality.restore(spec) as TextModality;
  assert.deepEqual(restored.settings, text.settings);
  const captions = ['a red car on the beach', 'three black cats', 'an icon'];
  const ids = await text.collate(captions);
  assert.deepEqual(rows(await restored.collate(captions)), rows(ids));
  // Padding 'longest': the width is the longest caption's, the shorter rows padded with 0.
  const single = await Promise.all(captions.map((c) => text.tokenizer.encode(c)));
  const width = Math.max(...single.map((r) => r.length));
  assert.deepEqual(
    rows(ids),
    single.map((r) => [...r, ...Array<number>(width - r.length).fill(PAD)]),
  );
});

test('the modality gives two different views and an encoder of featureDim outputs', async () => {
  const text = await textModality.fit({ vocabSize: 120, maxLength: 16, dModel: 16, layers: 1, heads: 2 }, CAPTIONS);
  const ids = await text.collate(CAPTIONS);
  const [v1, v2] = text.views(ids, new Generator(11));
  assert.deepEqual(v1.shape, ids.shape);
  assert.notDeepEqual(rows(v1), rows(v2));
  assert.equal(text.evalInput(ids), ids);
  manualSeed(0);
  const encoder = text.createEncoder();
  assert.deepEqual(encoder.forward(v1).shape, [CAPTIONS.length, text.featureDim]);
  assert.equal(text.featureDim, 16);
});

test('text settings: defaults filled in, bad or unknown fields refused by name', async () => {
  const s = textSettings({});
  assert.deepEqual(
    {
      vocabSize: s.vocabSize,
      maxLength: s.maxLength,
      dModel: s.dModel,
      layers: s.layers,
      heads: s.heads,
      dimFeedforward: s.dimFeedforward,
      pooling: s.pooling,
    },
    { vocabSize: 4096, maxLength: 32, dModel: 256, layers: 4, heads: 4, dimFeedforward: 1024, pooling: 'mean' },
  );
  assert.throws(() => textSettings({ vocabsize: 100 }), /unknown field 'vocabsize'/);
  assert.throws(() => textSettings({ heads: 3 }), /heads \(3\) must divide dModel \(256\)/);
  assert.throws(() => textSettings({ pooling: 'max' }), /pooling/);
  assert.throws(() => textSettings({ view1: { maskRate: -0.1 } }), /view1: TextViewConfig: maskRate/);
  assert.throws(() => textSettings({ view2: 0.5 }), /view2 must be an object/);
  await assert.rejects(textModality.fit({}, []), /training captions/);
  assert.throws(() => textModality.restore({ name: 'text', settings: {} }), /state\.tokenizer/);
});
