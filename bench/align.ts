// `npm run bench -- align`: image–text pairs per second of the default configuration as the
// byol-align command trains it (preset cpu-small: SmallCnn on 32 px icons, 2-layer text
// Transformer, shared 4096→256 heads, batch 256, BYOL's cross term + VICReg's terms
// (lightCrossPlusVicReg), AdamW), with the streaming manifest loader decoding on worker threads,
// and the share of each step spent waiting for data; then the same steps again from the same
// initial weights on the same batches decoded beforehand, as the PyTorch side has its data; then
// the same step in PyTorch (bench/align_torch.py) from the same initial weights on the same thread
// count, and both ratios. The two byol-align runs differ only in where decoding happens: streaming,
// libvips decodes the next batch on the same cores while the step runs.
// The icon data set is built first when it is missing. With --speech: the three modalities of the
// spoken icon set (image, text, audio; items lacking some, docs/speech-data.md) with the audio
// settings of the measured three-way run (audio.channels=16, audio.clipSeconds=2, docs/audio.md),
// byol-align alone (the PyTorch peer covers image–text), to show that decoding the clips and their
// log-mel features does not starve the step. With precision 'bf16' both sides run the forward pass
// under autocast to bfloat16 with the losses in float32 (train.precision; src/align/train.ts).
// With device 'cuda:N' (--device) both sides train there (train.device); the PyTorch side is told
// through bench.json.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setNumThreads, getNumThreads, libtorchVersion, type Device } from '../src/index.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import type { PairedDataset } from '../src/data/paired.js';
import type { Modality } from '../src/modalities/modality.js';
import { modalityFactory } from '../src/modalities/registry.js';
import type { Config } from '../src/config/schema.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { ImageDecodePool } from '../src/data/image_pool.js';
import { AlignTrainer, type AlignBatch, type AlignStepRecord, type AlignTrainOptions } from '../src/align/train.js';
import { manifestBatches } from '../src/align/batches.js';
import { resolveConfig } from '../src/config/load.js';
import { buildModel, fitModalities, runDataOptions, trainOptions, type LoadedModel } from '../src/run/model_setup.js';
import { exportModel } from '../src/run/export_run.js';
import type { ImageModality } from '../src/modalities/image/index.js';
import type { TextModality } from '../src/modalities/text/index.js';
import { runTorchScript, machineDescription } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const torchScript = path.join(here, '..', '..', 'bench', 'align_torch.py');
const buildIconsScript = path.join(here, '..', 'scripts', 'build-icon-dataset.js');
const buildSpeechScript = path.join(here, '..', 'scripts', 'build-speech-dataset.js');
const BATCH = 256;

export interface AlignBenchOptions {
  /** libtorch's intra-op threads, on both sides. */
  threads: number;
  /** Steps trained before the clock starts (default 3). */
  warmup?: number;
  /** Steps timed (default 15). */
  timed?: number;
  /** The icon data set (default data/icons; built there when missing). */
  dataDir?: string;
  /** Three modalities: the spoken icon set beside the icon set (data/icons-speech; built when missing). */
  speech?: boolean;
  /** The forward pass's precision on both sides: 'fp32' (default) or 'bf16' (autocast, losses in float32). */
  precision?: 'fp32' | 'bf16';
  /** Where both sides train: 'cpu' (default) or 'cuda:N', resolved (src/run/device.ts resolveDevice). */
  device?: Device;
}

/** The audio settings of the three-way run measured in docs/audio.md. */
const SPEECH_OVERRIDES = ['audio.channels=16', 'audio.clipSeconds=2', 'data.allowOutsideImages=true'];

/**
 * Builds the icon data set in `dataDir` when it has no training split, as `npm run data:icons`
 * does; only its main collection, the one this benchmark trains on.
 */
export function ensureIconData(dataDir: string): void {
  if (existsSync(path.join(dataDir, 'captions_train.json'))) return;
  console.log(`building the icon data set in ${dataDir} (npm run data:icons -- --collection main) ...`);
  execFileSync(process.execPath, [buildIconsScript, '--out', dataDir, '--collection', 'main'], { stdio: 'inherit' });
}

/** Builds the spoken icon set in `speechDir` from the icon set in `dataDir` when it is missing, as `npm run data:speech` does. */
function ensureSpeechData(dataDir: string, speechDir: string): void {
  if (existsSync(path.join(speechDir, 'train.jsonl'))) return;
  console.log(`building the spoken icon set in ${speechDir} (npm run data:speech, about 7 minutes) ...`);
  execFileSync(process.execPath, [buildSpeechScript, '--icons', dataDir, '--out', speechDir], { stdio: 'inherit' });
}

export async function benchAlign(options: AlignBenchOptions): Promise<void> {
  const { threads, warmup = 3, timed = 15, dataDir = 'data/icons', speech = false, precision = 'fp32', device = 'cpu' } = options;
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError(`bench align: warm-up steps must be an integer ≥ 0, got ${warmup}`);
  if (!Number.isInteger(timed) || timed < 1) throw new RangeError(`bench align: timed steps must be an integer ≥ 1, got ${timed}`);
  console.log(`alignment training benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  ensureIconData(dataDir);
  setNumThreads(threads);
  const speechDir = path.join(path.dirname(dataDir), 'icons-speech');
  if (speech) ensureSpeechData(dataDir, speechDir);
  const config = resolveConfig({ preset: 'cpu-small', overrides: [...(speech ? SPEECH_OVERRIDES : []), `train.precision=${precision}`] });
  const data = speech
    ? loadJsonlManifest(path.join(speechDir, 'train.jsonl'), runDataOptions(config))
    : loadCocoCaptions(path.join(dataDir, 'captions_train.json'), path.join(dataDir, 'images'));
  const modalities = await fitModalities(config, data.items);
  if (speech) return benchSpeech(config, data, modalities, { warmup, timed, device });
  const model = buildModel(config, modalities);
  const loader = new ManifestLoader(data, { batchSize: BATCH, size: config.image.size, channels: config.image.channels, seed: 0 });
  const trainerOptions = trainOptions(
    config,
    modalities,
    (epoch, fromStep) => manifestBatches(loader, modalities, epoch, fromStep),
    loader.batchesPerEpoch,
  );
  const ourParameters = model.online.parameters().reduce((sum, p) => sum + p.size, 0);

  // The PyTorch side's folder, written before training.
  const peerDir = mkdtempSync(path.join(tmpdir(), 'byol-align-bench-align-'));
  try {
    const trainer = new AlignTrainer(model, { ...trainerOptions, precision: config.train.precision, device });
    await writeTorchPeerFolder(peerDir, {
      config,
      model,
      modalities,
      trainer,
      weights: trainerOptions.weights,
      threads,
      warmup,
      timed,
      dataDir,
      device,
    });

    const { log, waitMs, stepMs } = await timedSteps(trainer, loader, warmup, timed);
    const ours = (timed * BATCH * 1000) / (waitMs + stepMs);
    const oursCompute = (timed * BATCH * 1000) / stepMs;
    const inMemory = await stepOnDecodedBatches(config, data, modalities, warmup + timed, device);
    const oursInMemory = (timed * BATCH * 1000) / inMemory.slice(warmup).reduce((s, r) => s + r.waitMs + r.stepMs, 0);
    if (inMemory.some((r, i) => r.loss !== log[i]!.loss))
      throw new Error('bench align: the run on batches decoded beforehand trained differently from the streaming one');

    // One process at a time: the PyTorch side starts after byol-align's loader has closed.
    const torch = runTorchScript(torchScript, [peerDir]);
    const theirs = torch ? Number(torch.pairs_per_s) : NaN;
    const theirParameters = torch ? Number(torch.parameters) : NaN;

    console.log(
      `objective ${config.loss.objective} (the default), preset cpu-small, precision ${config.train.precision}, device ${device}`,
    );
    console.log(
      `threads: ${getNumThreads()}, decode workers: ${ImageDecodePool.defaultSize()}, batch ${BATCH}, ${timed} timed steps after ${warmup} warm-up`,
    );
    console.log(`  parameters (online network): byol-align ${ourParameters}, PyTorch ${torch ? theirParameters : 'n/a'}`);
    console.log(
      `  loss at step 1 (same initial weights, different random views): byol-align ${log[0]!.loss.toFixed(4)}, PyTorch ${torch ? Number(torch.first_loss).toFixed(4) : 'n/a'}`,
    );
    console.log(`  byol-align ${ours.toFixed(1)} image-text pairs/s streaming (${oursCompute.toFixed(1)} computing only)`);
    console.log(
      `    data wait ${((100 * waitMs) / (waitMs + stepMs)).toFixed(1)}% of step time (${(waitMs / timed).toFixed(1)} ms/step waiting, ${(stepMs / timed).toFixed(1)} ms/step computing)`,
    );
    console.log(
      `  byol-align ${oursInMemory.toFixed(1)} image-text pairs/s on the same batches decoded beforehand (${((timed * BATCH * 1000) / oursInMemory / timed).toFixed(1)} ms/step; same losses)`,
    );
    console.log(
      `  PyTorch    ${torch ? theirs.toFixed(1) : 'n/a'} image-text pairs/s${torch ? ` (torch ${torch.torch}, data batched in memory beforehand, ${Number(torch.ms_per_step).toFixed(1)} ms/step)` : ''}`,
    );
    console.log(
      `  speed ratio (byol-align / PyTorch), the step alone, both sides' data decoded beforehand: ${torch ? (oursInMemory / theirs).toFixed(3) : 'n/a'}`,
    );
    console.log(
      `  speed ratio (byol-align / PyTorch), byol-align streaming: ${torch ? (ours / theirs).toFixed(3) : 'n/a'}${torch ? ` (computing only: ${(oursCompute / theirs).toFixed(3)})` : ''}`,
    );
    if (torch && theirParameters !== ourParameters)
      throw new Error(
        `bench align: the PyTorch model has ${theirParameters} parameters and byol-align's ${ourParameters}; the two architectures differ, so the ratio compares different steps`,
      );
  } finally {
    rmSync(peerDir, { recursive: true, force: true });
  }
}

/** What bench/align_torch.py's folder is made from: the model before training, and the step's settings. */
export interface TorchPeerSetup {
  config: Config;
  model: LoadedModel['model'];
  modalities: Modality[];
  trainer: AlignTrainer;
  weights: AlignTrainOptions['weights'];
  threads: number;
  warmup: number;
  timed: number;
  dataDir: string;
  device: Device;
  /** Default 256. */
  batchSize?: number;
}

/**
 * The PyTorch side's folder: the online network's initial weights as an export
 * (python/byol_align_export.py loads it strictly), and bench.json with what the step needs
 * besides. Written before the trainer moves the model to its device.
 */
export async function writeTorchPeerFolder(dir: string, setup: TorchPeerSetup): Promise<void> {
  const { config, model, modalities, trainer, weights, threads, warmup, timed, dataDir, device, batchSize = BATCH } = setup;
  // exportModel reads the model, its modalities, the config and the space, never the checkpoint.
  await exportModel({ model, modalities, config, retrievalSpace: 'projection' } as LoadedModel, dir);
  const image = modalities.find((m) => m.name === 'image') as ImageModality;
  const text = modalities.find((m) => m.name === 'text') as TextModality;
  const bench = {
    threads,
    warmupSteps: warmup,
    timedSteps: timed,
    batchSize,
    seed: config.train.seed,
    data: { annotations: path.resolve(dataDir, 'captions_train.json'), images: path.resolve(dataDir, 'images') },
    views: { image: [image.view1, image.view2], text: [text.settings.view1, text.settings.view2] },
    specialIds: text.tokenizer.specialIds,
    weights,
    optimization: trainer.optimization,
    ema: { tauBase: model.tauBase, tauSchedule: model.tauSchedule },
    precision: config.train.precision,
    device,
  };
  writeFileSync(path.join(dir, 'bench.json'), `${JSON.stringify(bench, null, 2)}\n`);
}

/**
 * The default step's `steps` records from a fresh model (buildModel: the same initial weights as
 * the streaming run), on the loader's first `steps` batches decoded before the first step, as the
 * PyTorch side has its data: nothing decodes while a step runs.
 */
async function stepOnDecodedBatches(
  config: Config,
  data: PairedDataset,
  modalities: Modality[],
  steps: number,
  device: Device,
): Promise<AlignStepRecord[]> {
  const loader = new ManifestLoader(data, { batchSize: BATCH, size: config.image.size, channels: config.image.channels, seed: 0 });
  const batches = await decodeBatches(loader, modalities, steps);
  const model = buildModel(config, modalities);
  const decoded = async function* (): AsyncGenerator<AlignBatch> {
    yield* batches;
  };
  const trainer = new AlignTrainer(model, {
    ...trainOptions(config, modalities, () => decoded(), loader.batchesPerEpoch),
    precision: config.train.precision,
    device,
  });
  return trainer.run({ stopAfter: steps });
}

/** The three-modality step: pairs/s and the share of each step spent waiting for data (no peer). */
async function benchSpeech(
  config: Config,
  data: PairedDataset,
  modalities: Modality[],
  { warmup, timed, device }: { warmup: number; timed: number; device: Device },
): Promise<void> {
  const model = buildModel(config, modalities);
  const loader = new ManifestLoader(data, { batchSize: BATCH, size: config.image.size, channels: config.image.channels, seed: 0 });
  const trainer = new AlignTrainer(model, {
    ...trainOptions(config, modalities, (epoch, fromStep) => manifestBatches(loader, modalities, epoch, fromStep), loader.batchesPerEpoch),
    precision: config.train.precision,
    device,
  });
  const { waitMs, stepMs } = await timedSteps(trainer, loader, warmup, timed);
  const present = (name: string): number => data.items.filter((item) => modalityFactory(name).rawItems(item).length > 0).length;
  console.log(
    `objective ${config.loss.objective} (the default), preset cpu-small, ${SPEECH_OVERRIDES.join(' ')}, precision ${config.train.precision}`,
  );
  console.log(`  modalities ${modalities.map((m) => `${m.name} (${present(m.name)} of ${data.items.length} items)`).join(', ')}`);
  console.log(
    `threads: ${getNumThreads()}, decode workers: ${ImageDecodePool.defaultSize()}, batch ${BATCH}, ${timed} timed steps after ${warmup} warm-up`,
  );
  console.log(
    `  byol-align ${((timed * BATCH * 1000) / (waitMs + stepMs)).toFixed(1)} items/s (${((timed * BATCH * 1000) / stepMs).toFixed(1)} computing only)`,
  );
  console.log(
    `    data wait ${((100 * waitMs) / (waitMs + stepMs)).toFixed(1)}% of step time (${(waitMs / timed).toFixed(1)} ms/step waiting, ${(stepMs / timed).toFixed(1)} ms/step computing)`,
  );
  console.log('  PyTorch: not run (bench/align_torch.py is the image–text step)');
}

/**
 * The first `count` batches of `loader`'s epoch 0, decoded into memory; the loader is closed after.
 * A step timed on them times no decoding.
 */
export async function decodeBatches(loader: ManifestLoader, modalities: readonly Modality[], count: number): Promise<AlignBatch[]> {
  const batches: AlignBatch[] = [];
  try {
    for await (const batch of manifestBatches(loader, modalities, 0, 0)) {
      batches.push(batch);
      if (batches.length === count) break;
    }
  } finally {
    await loader.close();
  }
  return batches;
}

/** Runs `warmup + timed` steps of `trainer` (closing `loader` after) and sums the timed steps' waiting and computing. */
export async function timedSteps(
  trainer: AlignTrainer,
  loader: ManifestLoader,
  warmup: number,
  timed: number,
): Promise<{ log: AlignStepRecord[]; measured: AlignStepRecord[]; waitMs: number; stepMs: number }> {
  let log: AlignStepRecord[];
  try {
    log = await trainer.run({ stopAfter: warmup + timed });
  } finally {
    await loader.close();
  }
  const measured = log.slice(warmup);
  return {
    log,
    measured,
    waitMs: measured.reduce((s, r) => s + r.waitMs, 0),
    stepMs: measured.reduce((s, r) => s + r.stepMs, 0),
  };
}
