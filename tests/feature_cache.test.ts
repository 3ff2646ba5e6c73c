// The feature cache (src/align/feature_cache.ts, src/run/feature_cache_run.ts): a tower frozen
// whole with its views off runs once per distinct item, in a first pass; training never runs it
// again, a resumed run reads the file, changed weights or files compute it again, and the losses
// are those of training through the frozen tower.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, type Tensor } from '../src/index.js';
import { towerFeatures } from '../src/align/feature_cache.js';
import { ImageModality } from '../src/modalities/image/index.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { TextTransformer } from '../src/modalities/text/encoder.js';
import { resolveConfig } from '../src/config/load.js';
import { train } from '../src/run/train_run.js';
import { assertClose } from './helpers.js';
import { useCliFixture } from './cli_fixture.js';

const fixture = useCliFixture();

/** Counts calls of a class's forward while `fn` runs (every instance). */
async function countForwards<T>(
  classes: { prototype: { forward: (x: Tensor) => Tensor } }[],
  fn: (count: () => number) => Promise<T>,
): Promise<T> {
  let calls = 0;
  const originals = classes.map((c) => c.prototype.forward);
  classes.forEach((c, i) => {
    c.prototype.forward = function (this: unknown, x: Tensor): Tensor {
      calls++;
      return originals[i]!.call(this, x);
    };
  });
  try {
    return await fn(() => calls);
  } finally {
    classes.forEach((c, i) => (c.prototype.forward = originals[i]!));
  }
}

test('towerFeatures computes once, reads the file while nothing changed, and computes again when the weights or a file change', async () => {
  const image = new ImageModality({ size: 16 });
  const tower = new SmallCnn({ inChannels: 3, widths: [4, 8, 8] }).eval();
  const paths = readdirSync(fixture.images)
    .sort()
    .map((f) => join(fixture.images, f));
  const dir = join(fixture.dir, 'cache-unit');
  const options = { dir, modality: image, tower, rawItems: [...paths, ...paths.slice(0, 5)], batchSize: 10 };
  try {
    await countForwards([SmallCnn], async (calls) => {
      const first = await towerFeatures(options);
      assert.equal(first.reused, false);
      assert.equal(calls(), 3, '24 distinct images in batches of 10');
      assert.deepEqual(first.features.shape, [24, 8]);
      // Row of each path = the tower's output on that image alone.
      const single = await image.collate([paths[7]!]);
      const one = noGrad(() => tower.forward(image.evalInput(single)));
      assertClose(first.features.select(0, first.index.get(paths[7]!)!), one.select(0, 0), 1e-6, 1e-5);

      const again = await towerFeatures(options);
      assert.equal(again.reused, true);
      assert.equal(calls(), 4, 'read from the file: the tower did not run (the 4th call is the check above)');
      assert.deepEqual(again.features.toFlatArray(), first.features.toFlatArray());

      noGrad(() => tower.parameters()[0]!.add_(0.5));
      const changed = await towerFeatures(options);
      assert.equal(changed.reused, false, 'new weights');
      assert.equal(calls(), 7);
      assert.notDeepEqual(changed.features.toFlatArray(), first.features.toFlatArray());

      utimesSync(paths[3]!, new Date(), new Date(Date.now() + 5000));
      assert.equal((await towerFeatures(options)).reused, false, 'a file was modified');
      assert.equal((await towerFeatures(options)).reused, true);
    });
  } finally {
    await image.close();
  }
});

function config(extra: string[]) {
  return resolveConfig({
    flags: { data: { train: `coco:${fixture.annotations}`, images: fixture.images } },
    overrides: [
      'image.size=16',
      'text.dModel=16',
      'text.layers=1',
      'text.heads=2',
      'text.vocabSize=64',
      'text.maxLength=8',
      'model.projectionHiddenDim=32',
      'model.projectionDim=16',
      'model.predictionHiddenDim=32',
      'train.batchSize=8',
      'train.epochs=2',
      'image.freeze=true',
      'image.views=false',
      'text.freeze=true',
      'text.views=false',
      ...extra,
    ],
  });
}

const lossesOf = (out: string): Record<string, number>[] =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { terms: Record<string, number> }).terms);

test('a run with both towers locked and views off computes their features in a first pass and never runs them while training; the losses equal training through the towers', async () => {
  const cachedRun = join(fixture.dir, 'run-cached');
  await countForwards([SmallCnn, TextTransformer], async (calls) => {
    const atFirstStep: number[] = [];
    const messages: string[] = [];
    await train({
      config: config([]),
      out: cachedRun,
      threads: 1,
      onStep: () => void atFirstStep.push(calls()),
      onMessage: (m) => messages.push(m),
    });
    assert.equal(atFirstStep.length, 6);
    // 24 images in batches of 8, 48 distinct captions in batches of 8: then no tower call at all.
    assert.equal(atFirstStep[0], 3 + 6);
    assert.equal(calls(), 3 + 6, 'the towers ran after the first pass');
    assert.ok(
      messages.some((m) => /feature cache: image computed 24 items/.test(m)),
      messages.join('\n'),
    );
    assert.ok(messages.some((m) => /feature cache: text computed 48 items/.test(m)));
  });
  assert.ok(existsSync(join(cachedRun, 'feature-cache', 'image.safetensors')));
  assert.ok(existsSync(join(cachedRun, 'feature-cache', 'text.safetensors')));

  const throughTowers = join(fixture.dir, 'run-uncached');
  await train({ config: config(['train.featureCache=false']), out: throughTowers, threads: 1 });
  const [cached, uncached] = [lossesOf(cachedRun), lossesOf(throughTowers)];
  assert.equal(cached.length, 6);
  cached.forEach((terms, step) => {
    assert.deepEqual(Object.keys(terms).sort(), Object.keys(uncached[step]!).sort());
    for (const [k, v] of Object.entries(terms)) assertClose(v, uncached[step]![k]!, 1e-5, 1e-4);
  });
});

test('a resumed run reads its cache instead of running the towers', async () => {
  const out = join(fixture.dir, 'run-resume');
  await train({ config: config([]), out, threads: 1, stopAfter: 2 });
  await countForwards([SmallCnn, TextTransformer], async (calls) => {
    const messages: string[] = [];
    const result = await train({ out, resume: true, threads: 1, onMessage: (m) => messages.push(m) });
    assert.equal(result.finished, true);
    assert.equal(calls(), 0);
    assert.ok(
      messages.some((m) => /feature cache: image read 24 items/.test(m)),
      messages.join('\n'),
    );
  });
});
