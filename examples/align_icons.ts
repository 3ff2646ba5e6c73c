// `npm run example:icons`: byol-align as a library, in the few calls the command makes: resolve a
// config, train a run directory, load its model, measure retrieval on the held-out concepts, embed
// a few captions. One epoch of the `cpu-small` preset on the icon data set (built on first use),
// a few minutes on 2 cores. The ablation behind docs/align.md runs through the command itself
// (bench/results/quality/run.sh), so what it measures is what users get.
import { existsSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embed, evaluate, loadDataSource, loadModel, resolveConfig, train } from '../src/index.js';

const data = 'data/icons';
if (!existsSync(join(data, 'captions_train.json'))) {
  console.log(`building the icon data set in ${data} (npm run data:icons) ...`);
  execFileSync(process.execPath, ['dist/scripts/build-icon-dataset.js', '--out', data], { stdio: 'inherit' });
}

// The same sources the command merges: a preset, then sections (its flags), then key=value overrides.
const config = resolveConfig({
  preset: 'cpu-small',
  flags: { data: { train: `coco:${data}/captions_train.json`, images: `${data}/images`, valFraction: 0.05 } },
  overrides: ['train.epochs=1'],
});
const out = mkdtempSync(join(tmpdir(), 'byol-align-example-'));
const result = await train({
  config,
  out,
  onMessage: (m) => console.log(m),
  onStep: (record, progress) => {
    if (progress.step % 20 === 0) console.log(`step ${progress.step}/${progress.totalSteps} loss ${record.loss.toFixed(3)}`);
  },
});
console.log(`trained ${result.step} steps; checkpoint ${result.checkpoint}`);

// The run's model, in the space its validation measured best (what `embed` returns).
const loaded = loadModel(out);
const { model, modalities, retrievalSpace } = loaded;
const test = loadDataSource(`coco:${data}/captions_test.json`, { images: `${data}/images` });
const [measured] = await evaluate(model, modalities, test, {
  size: config.image.size,
  channels: config.image.channels,
  spaces: [retrievalSpace],
});
const { metrics, chance } = measured!;
if (!metrics || !chance) throw new Error('the icon run has images and captions: image–text metrics expected');
console.log(
  `test split, ${retrievalSpace} space: rsum ${metrics.rsum.toFixed(2)} (chance ${chance.rsum.toFixed(2)}); R@10 i2t ${metrics.i2t.r10.toFixed(2)}, t2i ${metrics.t2i.r10.toFixed(2)}`,
);

const { embeddings } = await embed(loaded, 'text', { ids: ['a', 'b'], items: ['red heart', 'arrow pointing left'] });
console.log(`two captions embedded: ${embeddings.shape.join(' × ')}, unit length`);
