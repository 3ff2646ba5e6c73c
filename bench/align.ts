// `npm run bench -- align`: image–text pairs per second of the icon example's default
// configuration (examples/align_icons.ts: SmallCnn on 32 px icons, 2-layer text Transformer,
// shared 4096→256 heads, batch 256, heterogeneous BYOL, AdamW) with the streaming loader, and the
// share of each step spent waiting for data.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { manualSeed, setNumThreads, getNumThreads, libtorchVersion } from '../src/index.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { PairedImageLoader } from '../src/data/loader.js';
import { ImageDecodePool } from '../src/data/image_pool.js';
import { ImageModality } from '../src/modalities/image/index.js';
import { textModality } from '../src/modalities/text/index.js';
import { AlignModel } from '../src/align/model.js';
import { trainAlignment } from '../src/align/train.js';
import { imageTextBatches } from '../src/align/batches.js';
import { ALIGNMENT_OBJECTIVES } from '../src/align/loss.js';
import { machineDescription } from './measure.js';

const WARMUP = 3;
const TIMED = 15;
const BATCH = 256;

export async function benchAlign(threads: number, dataDir = 'data/icons'): Promise<void> {
  console.log(`alignment training benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  if (!existsSync(join(dataDir, 'captions_train.json')))
    throw new Error(`${dataDir}/captions_train.json is missing; run npm run data:icons first`);
  setNumThreads(threads);
  manualSeed(0);
  const data = loadCocoCaptions(join(dataDir, 'captions_train.json'), join(dataDir, 'images'));
  const image = new ImageModality({ size: 32, channels: 3 });
  const text = await textModality.fit(
    { vocabSize: 4096, maxLength: 24, dModel: 128, layers: 2, heads: 4 },
    data.items.flatMap((i) => i.captions),
  );
  const model = new AlignModel(
    [image, text].map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { tauBase: 0.99 },
  );
  const loader = new PairedImageLoader(data, { batchSize: BATCH, size: 32, channels: 3 });
  const log = await trainAlignment(model, {
    modalities: [image, text],
    batches: (epoch) => imageTextBatches(loader, text, epoch),
    stepsPerEpoch: WARMUP + TIMED,
    epochs: 1,
    batchSize: BATCH,
    weights: ALIGNMENT_OBJECTIVES.byol,
    optimizer: 'adamw',
    baseLr: 1e-3,
  });
  await loader.close();
  const timed = log.slice(WARMUP);
  const waitMs = timed.reduce((s, r) => s + r.waitMs, 0);
  const stepMs = timed.reduce((s, r) => s + r.stepMs, 0);
  console.log(
    `threads: ${getNumThreads()}, decode workers: ${ImageDecodePool.defaultSize()}, batch ${BATCH}, ${TIMED} timed steps after ${WARMUP} warm-up`,
  );
  console.log(`  ${((TIMED * BATCH * 1000) / (waitMs + stepMs)).toFixed(1)} image-text pairs/s`);
  console.log(
    `  data wait ${((100 * waitMs) / (waitMs + stepMs)).toFixed(1)}% of step time (${(waitMs / TIMED).toFixed(1)} ms/step waiting, ${(stepMs / TIMED).toFixed(1)} ms/step computing)`,
  );
}
