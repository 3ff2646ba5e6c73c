// The vector modality: the MLP adapter, the perturbation views, collate's checks, fit and restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, Generator, eye, type Tensor } from '../src/index.js';
import { BatchNorm1d, Linear, ReLU, type Sequential } from '../src/nn/index.js';
import {
  vectorModality,
  vectorAdapter,
  vectorView,
  featureDropout,
  gaussianNoise,
  mixWithinBatch,
  resolveVectorView,
  IDENTITY_VECTOR_VIEW,
  VectorInputError,
  VectorModality,
} from '../src/modalities/vector/index.js';
import { assertClose } from './helpers.js';

const rows = (t: Tensor): number[][] => t.toArray() as number[][];

test('the adapter is Linear → BatchNorm1d → ReLU blocks and a final Linear, 1024 hidden and 256 out by default', () => {
  const adapter = vectorAdapter(12);
  const kinds = [0, 1, 2, 3].map((i) => adapter.at(i).constructor);
  assert.deepEqual(kinds, [Linear, BatchNorm1d, ReLU, Linear]);
  assert.equal(adapter.length, 4);
  assert.equal((adapter.at(0) as Linear).outFeatures, 1024);
  assert.deepEqual(adapter.forward(randn([4, 12])).shape, [4, 256]);
  const deeper = vectorAdapter(6, { hiddenDims: [8, 5], featureDim: 3 });
  assert.deepEqual(
    [0, 3, 6].map((i) => [(deeper.at(i) as Linear).inFeatures, (deeper.at(i) as Linear).outFeatures]),
    [
      [6, 8],
      [8, 5],
      [5, 3],
    ],
  );
  assert.equal(vectorAdapter(6, { hiddenDims: [], featureDim: 3 }).length, 1);
  assert.throws(() => vectorAdapter(6, { hiddenDims: [8, 0] }), /hiddenDims\[1\] must be a positive integer, got 0/);
});

test('views keep the batch shape and leave the batch unchanged', () => {
  manualSeed(0);
  const x = randn([16, 10]);
  const before = x.toFlatArray();
  const view = vectorView(x, resolveVectorView({ dropoutRate: 0.3, noiseStd: 0.5, mixP: 1, mixMaxLambda: 0.5 }), new Generator(1));
  assert.deepEqual(view.shape, [16, 10]);
  assert.deepEqual(x.toFlatArray(), before);
});

test('with every rate 0 a view is the batch itself, as a new tensor', () => {
  const x = randn([8, 5]);
  const view = vectorView(x, IDENTITY_VECTOR_VIEW, new Generator(0));
  assert.notEqual(view, x);
  assert.deepEqual(view.toFlatArray(), x.toFlatArray());
  assert.deepEqual(featureDropout(x, 0, new Generator(0)).toFlatArray(), x.toFlatArray());
});

test('the same seed gives the same views, another seed other views', () => {
  const x = randn([12, 6]);
  const config = resolveVectorView({ mixP: 0.5 });
  const a = vectorView(x, config, new Generator(5)).toFlatArray();
  assert.deepEqual(vectorView(x, config, new Generator(5)).toFlatArray(), a);
  assert.notDeepEqual(vectorView(x, config, new Generator(6)).toFlatArray(), a);
});

test('feature dropout zeroes about `rate` of the features and scales the rest by 1/(1 − rate)', () => {
  const x = tensor(
    Array.from({ length: 200 * 100 }, (_, i) => 1 + (i % 7)),
    { shape: [200, 100] },
  );
  const out = featureDropout(x, 0.3, new Generator(2)).toFlatArray();
  const input = x.toFlatArray();
  const zeroed = out.filter((v) => v === 0).length / out.length;
  assert.ok(Math.abs(zeroed - 0.3) < 0.015, `fraction zeroed ${zeroed}`);
  out.forEach((v, i) => {
    if (v !== 0) assertClose(v, input[i]! / 0.7, 1e-5);
  });
});

test('relative noise follows each feature’s batch std; absolute noise has the given std', () => {
  manualSeed(4);
  const scales = [0.01, 1, 100];
  const x = randn([4000, 3]).mul(tensor([scales]));
  const featureStd = x.std(0, { correction: 0 }).toFlatArray();
  const stdOf = (noise: Tensor): number[] => noise.std(0).toFlatArray();
  const relative = stdOf(gaussianNoise(x, 0.2, 'relative', new Generator(3)).sub(x));
  relative.forEach((s, j) => assertClose(s, 0.2 * featureStd[j]!, 0, 0.05));
  const absolute = stdOf(gaussianNoise(x, 0.2, 'absolute', new Generator(3)).sub(x));
  absolute.forEach((s) => assertClose(s, 0.2, 0, 0.05));
});

test('mixing puts each row on the segment from itself to one partner, partners a permutation', () => {
  // One-hot rows make the partner readable: row i becomes (1 − λ)·e_i + λ·e_π(i).
  const n = 20;
  const out = rows(mixWithinBatch(eye(n), 1, 0.4, new Generator(9)));
  const partners: number[] = [];
  out.forEach((row, i) => {
    const own = row[i]!;
    const others = row.map((v, j) => [j, v] as const).filter(([j, v]) => j !== i && Math.abs(v) > 1e-7);
    assert.ok(own >= 0.6 - 1e-6 && own <= 1 + 1e-6, `row ${i}: own share ${own} outside [0.6, 1]`);
    assert.ok(others.length <= 1, `row ${i} mixes ${others.length} partners`);
    if (others.length === 0) {
      partners.push(i); // π(i) = i
      return;
    }
    const [j, share] = others[0]!;
    assertClose(share, 1 - own, 1e-6);
    partners.push(j);
  });
  assert.equal(new Set(partners).size, n, 'partners are not a permutation');
  assert.ok(partners.filter((j, i) => j !== i).length > n / 2, 'with p = 1 most rows should be mixed');
});

test('view settings out of range are errors naming the field', () => {
  assert.throws(() => resolveVectorView({ dropoutRate: 1 }), /dropoutRate must be in \[0, 1\), got 1/);
  assert.throws(() => resolveVectorView({ mixMaxLambda: -0.1 }), /mixMaxLambda must be in \[0, 1\]/);
  assert.throws(() => resolveVectorView({ noiseScale: 'percent' as 'relative' }), /noiseScale must be 'relative' or 'absolute'/);
  assert.throws(() => resolveVectorView({ noise: 0.1 } as object), /unknown field\(s\) noise/);
});

async function modality(dim: number, settings: Record<string, unknown> = {}): Promise<VectorModality> {
  return (await vectorModality.fit({ dim, hiddenDims: [8], featureDim: 4, ...settings }, [])) as VectorModality;
}

test('collate stacks number[] and Float32Array items into [N, dim] float32', async () => {
  const m = await modality(3);
  const batch = await m.collate([[1, 2, 3], new Float32Array([4, 5, 6])]);
  assert.equal(batch.dtype, 'float32');
  assert.deepEqual(rows(batch), [
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.deepEqual((await m.collate([])).shape, [0, 3]);
  assert.equal(m.evalInput(batch), batch);
});

test('collate errors name the item index and what is wrong with it', async () => {
  const m = await modality(3);
  const ok = [0, 0, 0];
  await assert.rejects(m.collate([ok, ok, [1, 2]]), (err: unknown) => err instanceof VectorInputError && err.index === 2);
  await assert.rejects(m.collate([ok, ok, [1, 2]]), /vector item 2: has 2 values, the modality's dim is 3/);
  await assert.rejects(m.collate([ok, [1, NaN, 3]]), /vector item 1: value 1 is NaN, not a finite float32 number/);
  await assert.rejects(m.collate([[1, 2, 1e39]]), /vector item 0: value 2 is 1e\+39/);
  await assert.rejects(m.collate([ok, [1, '2', 3] as unknown as number[]]), /vector item 1: value 1 is "2"/);
  await assert.rejects(
    m.collate([ok, new Float64Array(3) as unknown as Float32Array]),
    /vector item 1: expected a number\[\] or Float32Array, got Float64Array/,
  );
});

test('views of the modality check the batch and draw both views from the generator', async () => {
  const m = await modality(5);
  const batch = randn([6, 5]);
  const [v1, v2] = m.views(batch, new Generator(1));
  assert.deepEqual(v1.shape, [6, 5]);
  assert.notDeepEqual(v1.toFlatArray(), v2.toFlatArray());
  assert.throws(() => m.views(randn([6, 4]), new Generator(1)), /expected a batch \[N, 5\], got shape \[6, 4\]/);
});

test('fit infers the dim from the items, or says what is missing', async () => {
  const m = await vectorModality.fit({}, [new Float32Array(7), new Array(7).fill(0.5)]);
  assert.equal((m as VectorModality).dim, 7);
  assert.equal(m.featureDim, 256);
  await assert.rejects(
    vectorModality.fit({}, [
      [1, 2],
      [1, 2, 3],
    ]),
    /vector item 1: has 3 values, expected 2 \(as item 0\)/,
  );
  await assert.rejects(vectorModality.fit({ dim: 2 }, [[1, 2, 3]]), /vector item 0: has 3 values, expected 2 \(settings\.dim\)/);
  await assert.rejects(vectorModality.fit({}, []), /no dim and there are no training items/);
  await assert.rejects(vectorModality.fit({ dim: 2, widths: [3] }, []), /unknown setting\(s\) widths/);
  await assert.rejects(vectorModality.fit({ dim: 2, view1: { dropoutRate: 2 } }, []), /view1: dropoutRate must be in \[0, 1\)/);
});

test('restore from the JSON of toJSON gives the same modality, views and encoder shape', async () => {
  const m = await modality(5, { view2: { dropoutRate: 0.25, mixP: 0 } });
  const spec = JSON.parse(JSON.stringify(m.toJSON()));
  const again = vectorModality.restore(spec);
  assert.deepEqual(again.toJSON(), m.toJSON());
  assert.equal(spec.settings.view2.dropoutRate, 0.25);
  const batch = randn([6, 5]);
  const [a1, a2] = m.views(batch, new Generator(3));
  const [b1, b2] = again.views(batch, new Generator(3));
  assert.deepEqual(b1.toFlatArray(), a1.toFlatArray());
  assert.deepEqual(b2.toFlatArray(), a2.toFlatArray());
  const encoder = again.createEncoder() as Sequential;
  assert.deepEqual(encoder.forward(batch).shape, [6, 4]);
  assert.deepEqual(
    [...encoder.stateDict().keys()].filter((k) => k.endsWith('weight')),
    ['0.weight', '1.weight', '3.weight'],
  );
  assert.throws(() => vectorModality.restore({ name: 'text', settings: {} }), /the spec is for modality 'text', not 'vector'/);
});
