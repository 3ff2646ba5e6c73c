// `npm run example:fashion-mnist`: BYOL on Fashion-MNIST (Debian's dataset-fashion-mnist), then
// kNN and linear-probe accuracy of the trained encoder and of a randomly initialised one.
//
// Options: --epochs N (default 4), --batch N (256), --optimizer adam|adamw|lars (adam),
// --lr X (1e-3, used as is for Adam/AdamW; per 256 items for LARS), --lr-schedule
// warmup-cosine|constant (warmup-cosine: 10% warm-up, then cosine to 0), --tau X (0.99), --tau-schedule constant|cosine (constant),
// --crop-min X (smallest crop area, 0.08), --subset N (all 60,000), --threads N (all cores),
// --device auto|cpu|cuda|cuda:N (auto: CUDA when the linked libtorch has a GPU; evaluation runs on
// the CPU either way).
import { parseArgs } from 'node:util';
import { manualSeed, setNumThreads, type Tensor } from '../src/index.js';
import { loadMnistSplit, DEBIAN_FASHION_MNIST_DIR } from '../src/data/idx.js';
import { byolView1, byolView2, normalizeChannels, type ViewConfig } from '../src/modalities/image/augment.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { Byol } from '../src/byol/model.js';
import { trainByol, type OptimizerName } from '../src/byol/train.js';
import { extractFeatures } from '../src/eval/features.js';
import { knnAccuracy } from '../src/eval/knn.js';
import { linearProbe } from '../src/eval/linear_probe.js';
import type { TensorModule } from '../src/nn/index.js';
import { moveModule } from '../src/nn/device.js';
import { ConfigError } from '../src/config/load.js';
import { resolveDevice } from '../src/run/device.js';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '4' },
    batch: { type: 'string', default: '256' },
    optimizer: { type: 'string', default: 'adam' },
    lr: { type: 'string', default: '1e-3' },
    'lr-schedule': { type: 'string', default: 'warmup-cosine' },
    tau: { type: 'string', default: '0.99' },
    'tau-schedule': { type: 'string', default: 'constant' },
    'crop-min': { type: 'string', default: '0.08' },
    threads: { type: 'string' },
    subset: { type: 'string' },
    seed: { type: 'string', default: '0' },
    device: { type: 'string', default: 'auto' },
  },
});

// Before any data is read: CUDA where the linked libtorch has none is refused, naming it.
let device: string;
try {
  device = resolveDevice(args.device, '--device');
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}

const optimizer = args.optimizer as OptimizerName;
if (!['adam', 'adamw', 'lars'].includes(optimizer)) throw new Error(`--optimizer must be adam, adamw or lars, got ${args.optimizer}`);
const lrSchedule = args['lr-schedule'] as 'constant' | 'warmup-cosine';
if (!['constant', 'warmup-cosine'].includes(lrSchedule))
  throw new Error(`--lr-schedule must be constant or warmup-cosine, got ${lrSchedule}`);
const tauSchedule = args['tau-schedule'] as 'constant' | 'cosine';
if (!['constant', 'cosine'].includes(tauSchedule)) throw new Error(`--tau-schedule must be constant or cosine, got ${tauSchedule}`);
if (args.threads) setNumThreads(Number(args.threads));
manualSeed(Number(args.seed));
const train = loadMnistSplit(DEBIAN_FASHION_MNIST_DIR, 'train');
const test = loadMnistSplit(DEBIAN_FASHION_MNIST_DIR, 't10k');
const trainImages = args.subset ? train.images.slice(0, 0, Number(args.subset)) : train.images;
const toInput = (batch: Tensor): Tensor => normalizeChannels(batch.float().div(255), [0.5], [0.5]);

function evaluate(encoder: TensorModule): { knn: number; linear: number } {
  const trainFeatures = extractFeatures(encoder, train.images, toInput);
  const testFeatures = extractFeatures(encoder, test.images, toInput);
  const knn = knnAccuracy(trainFeatures, train.labels, testFeatures, test.labels, 10, { k: 200, temperature: 0.1 });
  const { testAccuracy } = linearProbe(trainFeatures, train.labels, testFeatures, test.labels, 10);
  return { knn, linear: testAccuracy };
}

const byol = new Byol(() => new SmallCnn({ inChannels: 1 }), { featureDim: 128, tauBase: Number(args.tau), tauSchedule });
const random = evaluate(byol.online.encoder);
console.log(`random-init encoder: kNN ${(random.knn * 100).toFixed(2)}%  linear probe ${(random.linear * 100).toFixed(2)}%`);

const started = Date.now();
const epochs = Number(args.epochs);
trainByol(byol, {
  images: trainImages,
  views: [byolView1(28, 1), byolView2(28, 1)].map((v) => ({ ...v, cropScale: [Number(args['crop-min']), 1] })) as [ViewConfig, ViewConfig],
  lrSchedule,
  // With a constant rate there is no warm-up either (a measured choice, see docs/byol.md).
  warmupSteps: lrSchedule === 'constant' ? 0 : undefined,
  batchSize: Number(args.batch),
  epochs,
  device,
  optimizer,
  baseLr: Number(args.lr),
  scaleLrByBatch: optimizer === 'lars',
  onStep: (r) => {
    if (r.step % 50 === 0) {
      console.log(
        `epoch ${r.epoch + 1}/${epochs} step ${r.step}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  τ ${r.tau.toFixed(5)}  collapse std/ref ${r.collapseRatio.toFixed(3)}`,
      );
    }
  },
  onCollapseWarning: (r) => console.warn(`warning: step ${r.step}: representations collapsing (std ratio ${r.collapseRatio.toFixed(3)})`),
});
const minutes = (Date.now() - started) / 60000;
moveModule(byol, 'cpu');
const trained = evaluate(byol.online.encoder);
console.log(
  `BYOL encoder (${epochs} epochs, ${minutes.toFixed(1)} min): kNN ${(trained.knn * 100).toFixed(2)}%  linear probe ${(trained.linear * 100).toFixed(2)}%`,
);
