// `npm run bench -- align`: image–text pairs per second of the default configuration as the
// byol-align command trains it (preset cpu-small: SmallCnn on 32 px icons, 2-layer text
// Transformer, shared 4096→256 heads, batch 256, BYOL's cross term + VICReg's terms
// (lightCrossPlusVicReg), AdamW), with the streaming manifest loader decoding on worker threads,
// and the share of each step spent waiting for data.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads, getNumThreads, libtorchVersion } from '../src/index.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { ImageDecodePool } from '../src/data/image_pool.js';
import { AlignTrainer } from '../src/align/train.js';
import { manifestBatches } from '../src/align/batches.js';
import { resolveConfig } from '../src/config/load.js';
import { buildModel, fitModalities, trainOptions } from '../src/run/model_setup.js';
import { machineDescription } from './measure.js';

const WARMUP = 3;
const TIMED = 15;
const BATCH = 256;

export async function benchAlign(threads: number, dataDir = 'data/icons'): Promise<void> {
  console.log(`alignment training benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  if (!existsSync(join(dataDir, 'captions_train.json')))
    throw new Error(`${dataDir}/captions_train.json is missing; run npm run data:icons first`);
  setNumThreads(threads);
  const config = resolveConfig({ preset: 'cpu-small' });
  const data = loadCocoCaptions(join(dataDir, 'captions_train.json'), join(dataDir, 'images'));
  const modalities = await fitModalities(config, data.items);
  const model = buildModel(config, modalities);
  const loader = new ManifestLoader(data, { batchSize: BATCH, size: config.image.size, channels: config.image.channels, seed: 0 });
  const options = trainOptions(
    config,
    modalities,
    (epoch, fromStep) => manifestBatches(loader, modalities, epoch, fromStep),
    loader.batchesPerEpoch,
  );
  const log = await new AlignTrainer(model, options).run({ stopAfter: WARMUP + TIMED });
  await loader.close();
  console.log(`objective ${config.loss.objective} (the default)`);
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
