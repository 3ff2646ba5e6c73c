// Issue 18's asymmetry hunt on a trained run: retrieval and hubness in the projection and encoder
// spaces with the BatchNorm running statistics as trained, and with them re-estimated per modality
// on clean (un-augmented) training items, as evaluation sees them. With shared heads the projector's
// BatchNorm normalises each modality by its own batch in training (forwardViews runs one modality
// at a time) but both modalities by one set of running statistics, a mixture of the two, in eval
// mode; the encoder's BatchNorm was tracked on augmented views. Prints one JSON line per collection,
// space and statistics, and writes them all to --json.
//
// node dist/bench/align_quality_diagnose.js --checkpoint runs/quality-default --json OUT.json
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { cat, keep, noGrad, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';
import { BatchNorm, type Module } from '../src/nn/index.js';
import { loadModel } from '../src/run/model_setup.js';
import { loadDataSource } from '../src/data/source.js';
import { PairedImageLoader } from '../src/data/loader.js';
import type { PairedDataset } from '../src/data/paired.js';
import type { Modality } from '../src/modalities/modality.js';
import type { AlignModel } from '../src/align/model.js';
import { retrievalChance, retrievalMetrics } from '../src/eval/retrieval.js';
import { hubness } from '../src/eval/hubness.js';

type Statistics = 'running' | 'per-modality-heads' | 'per-modality-all';

interface Collection {
  label: string;
  captions: string[];
  captionToImage: number[];
  /** uint8 [N, C, size, size], all images of the collection. */
  images: Tensor;
}

async function loadImages(dataset: PairedDataset, size: number, channels: 1 | 3): Promise<Tensor> {
  const loader = new PairedImageLoader(dataset, { batchSize: 256, size, channels, shuffle: false, dropLast: false });
  const parts: Tensor[] = [];
  try {
    for await (const batch of loader.epoch(0)) parts.push(keep(batch.images));
  } finally {
    await loader.close();
  }
  const all = keep(cat(parts));
  for (const p of parts) p.dispose();
  return all;
}

async function loadCollection(spec: string, size: number, channels: 1 | 3, limit?: number): Promise<Collection> {
  const [label, annotations, images] = spec.split(':') as [string, string, string];
  const dataset = loadDataSource(`coco:${annotations}`, { images });
  const items = dataset.items.filter((i) => i.image !== undefined && i.captions.length > 0).slice(0, limit);
  return {
    label,
    captions: items.flatMap((i) => i.captions),
    captionToImage: items.flatMap((i, index) => i.captions.map(() => index)),
    images: await loadImages({ ...dataset, items }, size, channels),
  };
}

function batchNorms(module: Module): BatchNorm[] {
  return module.modules().filter((m): m is BatchNorm => m instanceof BatchNorm);
}

/** Copies of every BatchNorm buffer, to put back after a re-estimate. */
function saveBuffers(norms: BatchNorm[]): Tensor[][] {
  return norms.map((bn) => [bn.runningMean!, bn.runningVar!, bn.numBatchesTracked!].map((t) => keep(t.clone())));
}

function restoreBuffers(norms: BatchNorm[], saved: Tensor[][]): void {
  norms.forEach((bn, i) => [bn.runningMean!, bn.runningVar!, bn.numBatchesTracked!].forEach((t, j) => t.copy_(saved[i]![j]!)));
}

/**
 * Re-estimates the running statistics of `norms` as the mean over batches of `inputs` (momentum
 * null), the rest of the model in eval mode, so they are what these BatchNorms see at evaluation.
 */
function reestimate(model: AlignModel, modality: string, norms: BatchNorm[], inputs: Tensor[]): void {
  model.eval();
  const momenta = norms.map((bn) => bn.momentum);
  for (const bn of norms) {
    bn.resetRunningStats();
    bn.momentum = null;
    bn.train();
  }
  noGrad(() => {
    for (const input of inputs) tidy(() => model.online.project(modality, model.online.encode(modality, input)));
  });
  norms.forEach((bn, i) => {
    bn.momentum = momenta[i]!;
    bn.eval();
  });
}

function embedAll(model: AlignModel, modality: string, inputs: Tensor[], stage: 'projection' | 'encoder'): Tensor {
  return keep(tidy(() => cat(inputs.map((input) => model.embed(modality, input, stage)))));
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      checkpoint: { type: 'string' },
      train: { type: 'string', default: 'data/icons/captions_train.json:data/icons/images' },
      collection: { type: 'string', multiple: true },
      calibration: { type: 'string', default: '2048' },
      threads: { type: 'string', default: '1' },
      json: { type: 'string' },
    },
    strict: true,
  });
  if (args.checkpoint === undefined) throw new Error('--checkpoint RUN_DIR is required');
  setNumThreads(Number(args.threads));
  const { model, modalities, config } = loadModel(args.checkpoint);
  const image = modalities.find((m) => m.name === 'image')!;
  const text = modalities.find((m) => m.name === 'text') as Modality<string>;
  const { size, channels } = config.image;
  const specs = args.collection ?? [
    'icons:data/icons/captions_test.json:data/icons/images',
    'other:data/icons-other/captions_other.json:data/icons-other/images',
  ];
  const batches = (n: number, batchSize: number): [number, number][] =>
    Array.from({ length: Math.ceil(n / batchSize) }, (_, b) => [b * batchSize, Math.min(n, (b + 1) * batchSize)]);

  // Calibration items: the first N training images (in file order) and one caption each, as training draws them.
  const calibrationCount = Number(args.calibration);
  const [trainAnnotations, trainImages] = args.train.split(':') as [string, string];
  const calibration = await loadCollection(`train:${trainAnnotations}:${trainImages}`, size, channels, calibrationCount);
  const firstCaption = calibration.captionToImage
    .map((image, c) => (c === 0 || calibration.captionToImage[c - 1] !== image ? c : -1))
    .filter((c) => c >= 0);
  const calibrationInputs = {
    image: batches(calibrationCount, 256).map(([a, b]) => keep(image.evalInput(calibration.images.slice(0, a, b)))),
    text: await Promise.all(
      batches(firstCaption.length, 256).map(async ([a, b]) => {
        const collated = await text.collate(firstCaption.slice(a, b).map((c) => calibration.captions[c]!));
        return keep(text.evalInput(collated));
      }),
    ),
  };

  const projectorNorms = batchNorms(model.online.projectors);
  const allNorms = batchNorms(model.online);
  const saved = saveBuffers(allNorms);
  // How far the shared running mean sits from each modality's own mean, per projector BatchNorm.
  const runningVsModality: Record<string, number[]> = {};
  for (const name of ['image', 'text'] as const) {
    reestimate(model, name, projectorNorms, calibrationInputs[name]);
    runningVsModality[name] = projectorNorms.map((bn) =>
      tidy(() => bn.runningMean!.sub(saved[allNorms.indexOf(bn)]![0]!).norm().div(bn.runningVar!.sqrt().norm()).item()),
    );
    restoreBuffers(allNorms, saved);
  }
  console.log(JSON.stringify({ projectorRunningMeanOffset: runningVsModality }));

  const results: Record<string, unknown>[] = [];
  for (const spec of specs) {
    const collection = await loadCollection(spec, size, channels);
    const imageInputs = batches(collection.images.shape[0]!, 256).map(([a, b]) => keep(image.evalInput(collection.images.slice(0, a, b))));
    const textInputs = await Promise.all(
      batches(collection.captions.length, 512).map(async ([a, b]) =>
        keep(text.evalInput(await text.collate(collection.captions.slice(a, b)))),
      ),
    );
    const chance = retrievalChance(collection.captionToImage, collection.images.shape[0]!);
    for (const statistics of ['running', 'per-modality-heads', 'per-modality-all'] as Statistics[]) {
      for (const stage of ['projection', 'encoder'] as const) {
        if (stage === 'encoder' && statistics === 'per-modality-heads') continue; // the heads come after the encoder
        const embeddings: Record<string, Tensor> = {};
        for (const [name, inputs] of [
          ['image', imageInputs],
          ['text', textInputs],
        ] as const) {
          if (statistics !== 'running')
            reestimate(model, name, statistics === 'per-modality-heads' ? projectorNorms : allNorms, calibrationInputs[name]);
          embeddings[name] = embedAll(model, name, inputs, stage);
          restoreBuffers(allNorms, saved);
        }
        const metrics = retrievalMetrics(embeddings.image!, embeddings.text!, collection.captionToImage);
        const line = {
          checkpoint: args.checkpoint,
          collection: collection.label,
          space: stage,
          statistics,
          ...metrics,
          chanceRsum: chance.rsum,
          hubness: hubness(embeddings.image!, embeddings.text!),
        };
        console.log(JSON.stringify(line));
        results.push(line);
        embeddings.image!.dispose();
        embeddings.text!.dispose();
      }
    }
  }
  if (args.json !== undefined)
    writeFileSync(args.json, `${JSON.stringify({ projectorRunningMeanOffset: runningVsModality, results }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(`align_quality_diagnose: ${(err as Error).message}`);
  process.exitCode = 1;
});
