// `npm run bench -- align --locked RUN`: what locking a run's towers buys (issue 16). The image and
// text towers of RUN (a byol-align run trained on the icon set) start three trainings of new heads
// on the icon training set, with RUN's settings (its preset's batch, heads, optimizer):
//   full     everything trains, with the run's views (the default step, towers in the graph);
//   locked   both towers frozen whole (image.freeze, text.freeze) and views off, but run every step
//            (train.featureCache=false): forward only, no backward through them, images decoded;
//   cached   the same with the feature cache: the towers run once per distinct image and caption
//            in a first pass, then each step reads features (no decoding) and trains only the heads.
// Each arm times `timed` steps after `warmup` (the first pass falls in the warm-up and is timed on
// its own), streaming as `train` does, and prints pairs/s, the ratio to full training, the time of
// one epoch with the first pass included, and the trainable parameters (optimizer state is AdamW's
// two moments of each).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setNumThreads, getNumThreads, libtorchVersion, type Device } from '../src/index.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { AlignTrainer } from '../src/align/train.js';
import { manifestBatches } from '../src/align/batches.js';
import { resolveConfig } from '../src/config/load.js';
import { modalityFactory } from '../src/modalities/registry.js';
import { buildModel, fitModalities, trainOptions } from '../src/run/model_setup.js';
import { initModalitySpec, initModelFrom, readInitSource } from '../src/run/init_from.js';
import { planFeatureCache } from '../src/run/feature_cache_run.js';
import { ensureIconData, timedSteps } from './align.js';
import { machineDescription } from './measure.js';

export interface LockedBenchOptions {
  /** The run whose towers are reused. */
  run: string;
  threads: number;
  /** Steps before the clock starts (default 3; the cached arm's first pass happens in the first). */
  warmup?: number;
  /** Steps timed (default 15). */
  timed?: number;
  dataDir?: string;
  device?: Device;
}

interface ArmResult {
  name: string;
  pairsPerSecond: number;
  msPerStep: number;
  /** The median timed step (wait included): steady under other processes' bursts, which the mean is not. */
  medianMsPerStep: number;
  /** Each timed step's milliseconds, wait included. */
  stepsMs: number[];
  waitShare: number;
  firstPassSeconds: number;
  epochSeconds: number;
  trainable: number;
  total: number;
}

const ARMS: { name: string; overrides: string[] }[] = [
  { name: 'full', overrides: [] },
  {
    name: 'locked',
    overrides: ['image.freeze=true', 'text.freeze=true', 'image.views=false', 'text.views=false', 'train.featureCache=false'],
  },
  { name: 'cached', overrides: ['image.freeze=true', 'text.freeze=true', 'image.views=false', 'text.views=false'] },
];

export async function benchAlignLocked(options: LockedBenchOptions): Promise<void> {
  const { run, threads, warmup = 3, timed = 15, dataDir = 'data/icons', device = 'cpu' } = options;
  if (!Number.isInteger(warmup) || warmup < 1)
    throw new RangeError(`bench align --locked: warm-up steps must be an integer ≥ 1, got ${warmup}`);
  console.log(`locked-tower benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  ensureIconData(dataDir);
  setNumThreads(threads);
  const source = readInitSource(run);
  const data = loadCocoCaptions(path.join(dataDir, 'captions_train.json'), path.join(dataDir, 'images'));
  const results: ArmResult[] = [];
  for (const arm of ARMS) results.push(await benchArm(arm, { source, data, warmup, timed, device }));

  const base = source.config;
  console.log(
    `towers of ${source.checkpoint.file}: image ${base.image.encoder} at ${base.image.size} px, text ${base.text.layers}×${base.text.dModel}; ` +
      `heads ${base.model.projectionHiddenDim}→${base.model.projectionDim}${base.model.sharedHeads ? ' shared' : ''}, batch ${base.train.batchSize}, objective ${base.loss.objective}`,
  );
  console.log(`threads: ${getNumThreads()}, device ${device}, ${data.items.length} items, ${timed} timed steps after ${warmup} warm-up`);
  const full = results[0]!;
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(7)} ${r.pairsPerSecond.toFixed(1).padStart(8)} pairs/s (${(r.pairsPerSecond / full.pairsPerSecond).toFixed(2)}× full; ` +
        `${r.msPerStep.toFixed(0)} ms/step, data wait ${(100 * r.waitShare).toFixed(0)}%), one epoch ${r.epochSeconds.toFixed(0)} s` +
        `${r.firstPassSeconds > 0 ? ` with the first pass's ${r.firstPassSeconds.toFixed(1)} s` : ''}; trainable parameters ${r.trainable} of ${r.total}`,
    );
  }
  for (const r of results) {
    const pairs = (1000 * source.config.train.batchSize) / r.medianMsPerStep;
    console.log(
      `  ${r.name.padEnd(7)} median step ${r.medianMsPerStep.toFixed(0)} ms: ${pairs.toFixed(1)} pairs/s (${(full.medianMsPerStep / r.medianMsPerStep).toFixed(2)}× full); steps ${r.stepsMs.map((ms) => ms.toFixed(0)).join(' ')}`,
    );
  }
}

async function benchArm(
  arm: { name: string; overrides: string[] },
  context: {
    source: ReturnType<typeof readInitSource>;
    data: ReturnType<typeof loadCocoCaptions>;
    warmup: number;
    timed: number;
    device: Device;
  },
): Promise<ArmResult> {
  const { source, data, warmup, timed, device } = context;
  const config = resolveConfig({
    base: source.config as unknown as Record<string, unknown>,
    // One epoch's schedule (the source's own length may be a few steps): the speed does not depend on it.
    overrides: [`train.initFrom=${source.checkpoint.file}`, 'data.valFraction=0', 'train.epochs=1', ...arm.overrides],
  });
  const modalities = await fitModalities(config, data.items, (name) => initModalitySpec(config, source, name));
  const model = buildModel(config, modalities);
  initModelFrom(model, source, false);
  const out = mkdtempSync(path.join(tmpdir(), `byol-align-bench-locked-${arm.name}-`));
  try {
    let firstPassMs = 0;
    const cache = planFeatureCache(config, model, modalities, data, {
      out,
      onMessage: (m) => {
        const seconds = / in ([\d.]+) s /.exec(m);
        if (seconds) firstPassMs += 1000 * Number(seconds[1]);
      },
    });
    const others = modalities.filter((m) => m.name !== 'image').map((m) => modalityFactory(m.name).rawItems);
    const loader = new ManifestLoader(cache?.source.dataset ?? data, {
      batchSize: config.train.batchSize,
      size: config.image.size,
      channels: config.image.channels,
      seed: config.train.seed,
      hasOtherModality: cache?.source.hasOtherModality ?? ((item) => others.some((rawItems) => rawItems(item).length > 0)),
    });
    const trainer = new AlignTrainer(model, {
      ...trainOptions(
        config,
        modalities,
        (epoch, fromStep) => cache?.batches(loader, epoch, fromStep) ?? manifestBatches(loader, modalities, epoch, fromStep),
        loader.batchesPerEpoch,
      ),
      device,
    });
    if (trainer.totalSteps < warmup + timed)
      throw new RangeError(`bench align --locked: one epoch has ${trainer.totalSteps} steps, fewer than ${warmup} + ${timed}`);
    const { measured, waitMs, stepMs } = await timedSteps(trainer, loader, warmup, timed);
    const msPerStep = (waitMs + stepMs) / timed;
    const stepsMs = measured.map((r) => r.waitMs + r.stepMs);
    const sorted = [...stepsMs].sort((a, b) => a - b);
    const medianMsPerStep = (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
    const optimized = trainer.optimizer.paramGroups.flatMap((g) => g.params).reduce((s, p) => s + p.size, 0);
    return {
      name: arm.name,
      pairsPerSecond: (timed * config.train.batchSize * 1000) / (waitMs + stepMs),
      msPerStep,
      medianMsPerStep,
      stepsMs,
      waitShare: waitMs / (waitMs + stepMs),
      firstPassSeconds: firstPassMs / 1000,
      epochSeconds: firstPassMs / 1000 + (loader.batchesPerEpoch * msPerStep) / 1000,
      trainable: optimized,
      total: model.online.parameters().reduce((s, p) => s + p.size, 0),
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
