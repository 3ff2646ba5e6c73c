// The closed-form baseline (loss.objective cca): fitCca against a NumPy reference computed by the
// textbook eigenproblem (tests/fixtures/cca_reference.py), and a cca run whose linear heads are that
// fit on its frozen towers' features, loaded and evaluated like any run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cat, eye, manualSeed, noGrad, randn, type Tensor } from '../src/index.js';
import { fitCca } from '../src/align/cca.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { loadModel } from '../src/run/model_setup.js';
import { assertClose } from './helpers.js';
import { cli, TINY, useCliFixture } from './cli_fixture.js';

const fixture = useCliFixture();

function reference(x: Tensor, y: Tensor, dim: number, regularization: number, power: number) {
  const job = JSON.stringify({ x: x.toArray(), y: y.toArray(), dim, regularization, power });
  const r = spawnSync('/usr/bin/python3', [join('tests', 'fixtures', 'cca_reference.py')], { input: job, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { correlations: number[]; cross: number[][]; gram: number[][] };
}

test('fitCca gives the canonical correlations and embeddings of the textbook eigenproblem (NumPy)', () => {
  manualSeed(11);
  const latent = randn([80, 3]);
  const x = latent
    .matmul(randn([3, 6]))
    .add(randn([80, 6]).mul(0.5))
    .add(2);
  const y = latent
    .matmul(randn([3, 4]))
    .add(randn([80, 4]).mul(0.5))
    .sub(1);
  for (const [dim, regularization, power] of [
    [3, 0, 0],
    [4, 0.05, 1],
    [2, 1e-3, 0.5],
  ] as const) {
    const fit = fitCca(x, y, { dim, regularization, power });
    const expected = reference(x, y, dim, regularization, power);
    assertClose(fit.correlations, expected.correlations, 1e-6, 1e-5);
    const zx = x.sub(fit.meanX).matmul(fit.projectionX);
    const zy = y.sub(fit.meanY).matmul(fit.projectionY);
    // Each canonical pair's sign is arbitrary; Zx·Zyᵀ and Zx·Zxᵀ are not.
    assertClose(zx.matmul(zy.t()), expected.cross.flat(), 1e-4, 1e-4);
    assertClose(zx.matmul(zx.t()), expected.gram.flat(), 1e-4, 1e-4);
  }
  // Unregularised and unscaled, the embeddings are white and their cross-covariance is diag(ρ).
  const fit = fitCca(x, y, { dim: 4, regularization: 0, power: 0 });
  const zx = x.sub(fit.meanX).matmul(fit.projectionX);
  const zy = y.sub(fit.meanY).matmul(fit.projectionY);
  assertClose(zx.t().matmul(zx).div(79), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 1e-4);
  assertClose(zx.t().matmul(zy).div(79).mul(eye(4)).sum([0]), fit.correlations, 1e-4);
  assert.throws(() => fitCca(x, y, { dim: 5 }), /dim must be an integer from 1 to min\(dx, dy\) = 4/);
});

test('a cca run fits linear heads on its frozen towers’ features of every training pair, is validated once, and evaluates like any run', () => {
  const out = join(fixture.dir, 'run-cca');
  const args = [...fixture.data, '--val-data', `coco:${fixture.annotations}`, '--out', out, ...TINY];
  const refused = cli('train', ...args, 'loss.objective=cca', 'image.freeze=true');
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /loss\.objective cca fits heads on fixed features: set text\.freeze to true/);
  const r = cli('train', ...args, '--force', 'loss.objective=cca', 'image.freeze=true', 'text.freeze=true', 'loss.ccaRegularization=0.01');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /cca: 48 image–text pairs, 16 dimensions, canonical correlations/);
  const epoch = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim()) as { epoch: number; space: string; rsum: number };
  assert.equal(epoch.epoch, 1);
  assert.equal(epoch.space, 'projection');

  // The heads are the fit of the towers' own features over the 48 (image, caption) pairs.
  const { model, modalities } = loadModel(out);
  const data = loadCocoCaptions(fixture.annotations, fixture.images);
  const [image, text] = modalities as [(typeof modalities)[number], (typeof modalities)[number]];
  return (async () => {
    const pixels = await image.collate(data.items.map((i) => i.image!));
    const captions = data.items.flatMap((i) => i.captions);
    const ids = await text.collate(captions);
    const imageFeatures = model.embed('image', image.evalInput(pixels), 'encoder');
    const textFeatures = model.embed('text', text.evalInput(ids), 'encoder');
    const pairImages = cat(data.items.flatMap((item, i) => item.captions.map(() => imageFeatures.narrow(0, i, 1))));
    const fit = fitCca(pairImages, textFeatures, { dim: 16, regularization: 0.01, power: 1 });
    const zImage = model.embed('image', image.evalInput(pixels), 'projection');
    const zText = model.embed('text', text.evalInput(ids), 'projection');
    const expected = noGrad(() =>
      imageFeatures.sub(fit.meanX).matmul(fit.projectionX).matmul(textFeatures.sub(fit.meanY).matmul(fit.projectionY).t()),
    );
    assertClose(zImage.matmul(zText.t()), expected, 1e-3, 1e-3);
    const evaluated = cli('eval', '--checkpoint', out, '--data', `coco:${fixture.annotations}`, '--images', fixture.images, '--json');
    assert.equal(evaluated.status, 0, evaluated.stderr);
    const again = cli('train', '--out', out, '--resume');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /the CCA heads are fitted already/);
    const exported = cli('export', '--checkpoint', out, '--out', join(fixture.dir, 'cca-export'));
    assert.notEqual(exported.status, 0);
    assert.match(exported.stderr, /export: a loss\.objective cca run has linear heads/);
    await image.close();
  })();
});
