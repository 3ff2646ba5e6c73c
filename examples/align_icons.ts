// `npm run example:icons`: heterogeneous BYOL on the icon captions data set (scripts/build-icon-dataset.ts,
// built on first use), then image↔text retrieval on its held-out concepts with COCO's protocol.
//
// Options: --objective NAME (any of ALIGNMENT_OBJECTIVES; default lightCrossPlusVicReg, the library's default), --heads shared|separate,
// --epochs N (3), --batch N (256), --size PX (32), --lr X (1e-3 per 256 items, AdamW), --tau X (0.996),
// --tau-schedule cosine|constant, --split val|test (test: the held-out concepts; val: 5% of the
// training concepts, for tuning), --subset N (training items), --json FILE (write the results), --seed N, --threads N,
// --each-epoch (also evaluate that split after every epoch, in the projection and pairing spaces),
// --first-stage-epochs N with --first-stage-objective NAME (default intraOnly): a first stage of N
// of the epochs trained with another objective, --weight KEY=X (repeatable): change one weight of the
// objective, e.g. --weight crossWeight=0.25.
import { existsSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { manualSeed, setNumThreads, type Tensor } from '../src/index.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { hashFraction } from '../src/data/stable_hash.js';
import { PairedImageLoader } from '../src/data/loader.js';
import type { PairedDataset } from '../src/data/paired.js';
import { ImageModality } from '../src/modalities/image/index.js';
import { textModality } from '../src/modalities/text/index.js';
import { AlignModel } from '../src/align/model.js';
import { trainAlignment, type AlignStepRecord } from '../src/align/train.js';
import { imageTextBatches } from '../src/align/batches.js';
import { evaluateRetrieval, type RetrievalEvaluation, type RetrievalSpace } from '../src/align/evaluate.js';
import { ALIGNMENT_OBJECTIVES } from '../src/align/loss.js';
import { resolveConfig } from '../src/config/load.js';
import { lossWeights } from '../src/run/model_setup.js';

const { values: args } = parseArgs({
  options: {
    objective: { type: 'string', default: 'lightCrossPlusVicReg' },
    heads: { type: 'string', default: 'shared' },
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '256' },
    size: { type: 'string', default: '32' },
    lr: { type: 'string', default: '1e-3' },
    tau: { type: 'string', default: '0.996' },
    'tau-schedule': { type: 'string', default: 'cosine' },
    split: { type: 'string', default: 'test' },
    subset: { type: 'string' },
    json: { type: 'string' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string' },
    data: { type: 'string', default: 'data/icons' },
    'each-epoch': { type: 'boolean', default: false },
    'first-stage-epochs': { type: 'string', default: '0' },
    'first-stage-objective': { type: 'string', default: 'intraOnly' },
    weight: { type: 'string', multiple: true, default: [] },
  },
});

const objectiveName = args.objective as keyof typeof ALIGNMENT_OBJECTIVES;
if (!ALIGNMENT_OBJECTIVES[objectiveName])
  throw new Error(`--objective must be one of ${Object.keys(ALIGNMENT_OBJECTIVES).join(', ')}, got ${args.objective}`);
// --weight KEY=X is the config's own loss.KEY=X override, parsed and checked by resolveConfig.
const weights = lossWeights(
  resolveConfig({ flags: { loss: { objective: objectiveName } }, overrides: args.weight.map((w) => `loss.${w}`) }),
);
const firstStageWeights = ALIGNMENT_OBJECTIVES[args['first-stage-objective'] as keyof typeof ALIGNMENT_OBJECTIVES];
if (!firstStageWeights) throw new Error(`--first-stage-objective must be one of ${Object.keys(ALIGNMENT_OBJECTIVES).join(', ')}`);
const firstStageEpochs = Number(args['first-stage-epochs']);
if (!['shared', 'separate'].includes(args.heads)) throw new Error(`--heads must be shared or separate, got ${args.heads}`);
if (!['val', 'test'].includes(args.split)) throw new Error(`--split must be val or test, got ${args.split}`);
const tauSchedule = args['tau-schedule'] as 'cosine' | 'constant';
if (!['cosine', 'constant'].includes(tauSchedule)) throw new Error(`--tau-schedule must be cosine or constant`);
const batchSize = Number(args.batch);
const size = Number(args.size);
if (args.threads) setNumThreads(Number(args.threads));
manualSeed(Number(args.seed));

if (!existsSync(join(args.data, 'captions_train.json'))) {
  console.log(`building the icon data set in ${args.data} (npm run data:icons) ...`);
  execFileSync(process.execPath, ['dist/scripts/build-icon-dataset.js', '--out', args.data], { stdio: 'inherit' });
}
const trainAll = loadCocoCaptions(join(args.data, 'captions_train.json'), join(args.data, 'images'));
// Validation: 5% of the training concepts (by hash, as the test split is made), never the test set.
const isVal = (item: PairedDataset['items'][number]): boolean => hashFraction(`val:${String(item.extra?.concept ?? item.id)}`) < 0.05;
let trainItems = args.split === 'val' ? trainAll.items.filter((i) => !isVal(i)) : trainAll.items;
if (args.subset) trainItems = trainItems.slice(0, Number(args.subset));
const evalItems =
  args.split === 'val'
    ? trainAll.items.filter(isVal)
    : loadCocoCaptions(join(args.data, 'captions_test.json'), join(args.data, 'images')).items;
const trainSet: PairedDataset = { ...trainAll, items: trainItems };
const evalSet: PairedDataset = { ...trainAll, items: evalItems };

const started = performance.now();
const image = new ImageModality({ size, channels: 3 });
const text = await textModality.fit(
  { vocabSize: 4096, maxLength: 24, dModel: 128, layers: 2, heads: 4 },
  trainItems.flatMap((i) => i.captions),
);
const model = new AlignModel(
  [image, text].map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
  { sharedHeads: args.heads === 'shared', tauBase: Number(args.tau), tauSchedule },
);
// One retrieval evaluation, used after every epoch (--each-epoch) and at the end.
const evalLoader = new PairedImageLoader(evalSet, { batchSize: 512, size, channels: 3, shuffle: false, dropLast: false });
const captions = evalItems.flatMap((i) => i.captions);
const captionToImage = evalItems.flatMap((i, index) => i.captions.map(() => index));
async function evaluate(spaces: RetrievalSpace[]): Promise<Record<string, RetrievalEvaluation>> {
  const results: Record<string, RetrievalEvaluation> = {};
  for (const space of spaces) {
    async function* imageBatches(): AsyncIterable<Tensor> {
      for await (const b of evalLoader.epoch(0)) yield b.images;
    }
    results[space] = await evaluateRetrieval(model, {
      imageModality: image,
      textModality: text,
      imageBatches: imageBatches(),
      captions,
      captionToImage,
      space,
    });
  }
  return results;
}
const perEpoch: { epoch: number; rsum: Record<string, number> }[] = [];
let validationMs = 0; // per-epoch evaluation, left out of the training time
const loader = new PairedImageLoader(trainSet, { batchSize, size, channels: 3, seed: Number(args.seed) });
console.log(
  `training ${objectiveName} (${JSON.stringify(weights)}), ${args.heads} heads, on ${trainItems.length} icons, ${args.epochs} epochs of ${loader.batchesPerEpoch} steps` +
    (firstStageEpochs > 0 ? `, the first ${firstStageEpochs} with ${args['first-stage-objective']}` : ''),
);
const log: AlignStepRecord[] = await trainAlignment(model, {
  modalities: [image, text],
  batches: (epoch) => imageTextBatches(loader, text, epoch),
  stepsPerEpoch: loader.batchesPerEpoch,
  epochs: Number(args.epochs),
  batchSize,
  weights,
  firstStageEpochs,
  firstStageWeights,
  optimizer: 'adamw',
  baseLr: Number(args.lr),
  onStep: (r) => {
    if (r.step % 20 === 0)
      console.log(
        JSON.stringify({
          step: r.step,
          epoch: r.epoch,
          ...r.terms,
          tau: +r.tau.toFixed(5),
          collapse: r.collapse,
          waitMs: Math.round(r.waitMs),
          stepMs: Math.round(r.stepMs),
        }),
      );
  },
  onEpoch: args['each-epoch']
    ? async (epoch) => {
        const validationStart = performance.now();
        const results = await evaluate(['projection', 'pairing']);
        const rsum = Object.fromEntries(Object.entries(results).map(([space, r]) => [space, r.metrics.rsum]));
        perEpoch.push({ epoch, rsum });
        console.log(JSON.stringify({ epoch, rsum }));
        validationMs += performance.now() - validationStart;
      }
    : undefined,
});
await loader.close();
const trainSeconds = (performance.now() - started - validationMs) / 1000;
const results = await evaluate(['projection', 'pairing', 'encoder']);
await evalLoader.close();
await image.close?.();

const fmt = (x: number): string => x.toFixed(2);
const { chance } = results.projection!;
console.log(`\n${args.split} split: ${evalItems.length} images, ${captions.length} captions; trained in ${trainSeconds.toFixed(0)} s`);
console.log('space       i2t R@1  R@5   R@10  | t2i R@1  R@5   R@10  | rsum');
for (const [space, r] of Object.entries(results)) {
  const m = r.metrics;
  console.log(
    `${space.padEnd(11)} ${fmt(m.i2t.r1)}  ${fmt(m.i2t.r5)}  ${fmt(m.i2t.r10)} | ${fmt(m.t2i.r1)}  ${fmt(m.t2i.r5)}  ${fmt(m.t2i.r10)} | ${fmt(m.rsum)}`,
  );
}
console.log(
  `chance      ${fmt(chance.i2t.r1)}  ${fmt(chance.i2t.r5)}  ${fmt(chance.i2t.r10)} | ${fmt(chance.t2i.r1)}  ${fmt(chance.t2i.r5)}  ${fmt(chance.t2i.r10)} | ${fmt(chance.rsum)}`,
);
const last = log.slice(-20);
const collapse = Object.fromEntries(model.modalities.map((m) => [m, last.reduce((s, r) => s + r.collapse[m]!, 0) / last.length]));
const waitShare = log.reduce((s, r) => s + r.waitMs, 0) / log.reduce((s, r) => s + r.waitMs + r.stepMs, 0);
console.log(
  `collapse ratio (last 20 steps, 1 = spread out): ${JSON.stringify(collapse)}; data wait ${(100 * waitShare).toFixed(1)}% of training`,
);
if (args.json) {
  writeFileSync(
    args.json,
    JSON.stringify(
      {
        args,
        weights,
        trainSeconds,
        collapse,
        waitShare,
        perEpoch,
        results: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.metrics])),
        chance,
      },
      null,
      2,
    ),
  );
}
