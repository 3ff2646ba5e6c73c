// loss.objective cca: a run that trains nothing. The two towers, frozen whole (from pretrained
// weights or train.initFrom), give each training pair's features, through the feature cache; CCA
// (src/align/cca.ts) between them is fitted in closed form and written into the model's linear
// heads (projector = centring and canonical directions, no predictor), so that `eval`, `embed` and
// `search` use it like any run, in its projection space. Validation data, when there is some, is
// measured once, as an epoch line. Every (image, caption) pair of an item is a pair for the fit.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, tensor } from '../engine/index.js';
import type { PairedDataset } from '../data/paired.js';
import type { AlignModel } from '../align/model.js';
import type { Modality } from '../modalities/modality.js';
import { modalityFactory } from '../modalities/registry.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { copyState } from '../byol/ema.js';
import { fitCca } from '../align/cca.js';
import { rawItemKey, towerFeatures, type FeatureTable } from '../align/feature_cache.js';
import { cpuCopy, modelDevice } from '../align/device.js';
import type { EpochLine } from '../report/metrics.js';
import { saveCheckpoint } from './checkpoint.js';
import { evaluatePaired } from './evaluate_run.js';
import { writeRunFolder } from './run_dir.js';
import type { TrainRunResult } from './train_run.js';

export interface CcaRunOptions {
  config: Config;
  out: string;
  model: AlignModel;
  modalities: Modality[];
  dataset: PairedDataset;
  valSet?: PairedDataset;
  /** The device the run would train on ('cpu', 'cuda:0'), recorded in the checkpoint. */
  device: string;
  say: (message: string) => void;
}

/** What the fit records in the checkpoint's trainer metadata. */
export interface CcaSummary {
  pairs: number;
  correlations: number[];
}

/**
 * Fits the CCA heads of a new run and writes its files and one checkpoint (step 0); returns its path.
 *
 * @example
 * const file = await fitCcaRun({ config, out, model, modalities, dataset, device: 'cpu', say: console.log });
 */
export async function fitCcaRun(options: CcaRunOptions): Promise<{ checkpoint: string; summary: CcaSummary }> {
  const { config, out, model, modalities, dataset, say } = options;
  if (modalities.length !== 2)
    throw new ConfigError(
      `loss.objective cca relates two modalities; this run has ${modalities.length} (${modalities.map((m) => m.name).join(', ')}): choose two with data.modalities`,
    );
  const loose = modalities.filter((m) => !model.sharedTowers.has(m.name)).map((m) => `${m.name}.freeze`);
  if (loose.length > 0)
    throw new ConfigError(`loss.objective cca fits heads on fixed features: set ${loose.join(' and ')} to true (the tower frozen whole)`);
  writeRunFolder(out, config, modalities);
  const tables: FeatureTable[] = [];
  for (const modality of modalities) {
    const tower = model.online.tower(modality.name);
    const table = await towerFeatures({
      dir: join(out, 'feature-cache'),
      modality,
      tower,
      rawItems: dataset.items.flatMap((item) => modalityFactory(modality.name).rawItems(item)),
      batchSize: config.train.batchSize,
      device: modelDevice(tower),
      skipBadItems: config.data.onBadRecord === 'skip',
    });
    await modality.close();
    say(`feature cache: ${modality.name} ${table.reused ? 'read' : 'computed'} ${table.index.size} items (${table.file})`);
    tables.push(table);
  }
  const [first, second] = modalities as [Modality, Modality];
  const [firstTable, secondTable] = tables as [FeatureTable, FeatureTable];
  const rows: [number[], number[]] = [[], []];
  for (const item of dataset.items) {
    for (const a of modalityFactory(first.name).rawItems(item)) {
      const i = firstTable.index.get(rawItemKey(a));
      if (i === undefined) continue;
      for (const b of modalityFactory(second.name).rawItems(item)) {
        const j = secondTable.index.get(rawItemKey(b));
        if (j === undefined) continue;
        rows[0].push(i);
        rows[1].push(j);
      }
    }
  }
  if (rows[0].length < 2)
    throw new Error(`cca: the training data has ${rows[0].length} ${first.name}–${second.name} pairs; at least 2 are needed`);
  const x = firstTable.features.indexSelect(0, tensor(rows[0], { dtype: 'int64' }));
  const y = secondTable.features.indexSelect(0, tensor(rows[1], { dtype: 'int64' }));
  const dim = Math.min(config.model.projectionDim, first.featureDim, second.featureDim);
  const fit = fitCca(x, y, { dim, regularization: config.loss.ccaRegularization, power: config.loss.ccaPower });
  x.dispose();
  y.dispose();
  // z = (f − μ)·P is the Linear with weight Pᵀ and bias −μ·P.
  noGrad(() => {
    for (const [name, mean, projection] of [
      [first.name, fit.meanX, fit.projectionX],
      [second.name, fit.meanY, fit.projectionY],
    ] as const) {
      const head = model.online.projectors.get(name);
      const device = modelDevice(head);
      head.stateDict().get('weight')!.copy_(projection.t().to(device));
      head.stateDict().get('bias')!.copy_(mean.unsqueeze(0).matmul(projection).squeeze(0).neg().to(device));
    }
  });
  copyState(model.target, model.online);
  const summary: CcaSummary = { pairs: rows[0].length, correlations: fit.correlations };
  const top = fit.correlations.slice(0, 3).map((c) => c.toFixed(3));
  say(`cca: ${summary.pairs} ${first.name}–${second.name} pairs, ${dim} dimensions, canonical correlations ${top.join(', ')}, …`);

  if (options.valSet !== undefined) {
    const [projection] = await evaluatePaired(model, modalities, options.valSet, {
      size: config.image.size,
      channels: config.image.channels,
      fit: config.image.fit,
      spaces: ['projection'],
    });
    const line: EpochLine = {
      epoch: 1,
      space: 'projection',
      ...(projection!.metrics ? { val: projection!.metrics, chance: projection!.chance } : {}),
      rsum: projection!.rsum,
      chanceRsum: projection!.chanceRsum,
      directions: projection!.directions,
      rsumBySpace: { projection: projection!.rsum },
    };
    appendFileSync(join(out, 'metrics.jsonl'), `${JSON.stringify(line)}\n`);
    say(`cca validation: rsum ${projection!.rsum.toFixed(2)} in the projection space (chance ${projection!.chanceRsum.toFixed(2)})`);
  }
  const tensors = new Map([...model.stateDict()].map(([k, t]) => [`model.${k}`, cpuCopy(t)]));
  const specs = modalities.map((m) => m.toJSON());
  const checkpoint = saveCheckpoint(
    join(out, 'checkpoints'),
    tensors,
    { config, modalities: specs, trainer: { step: 0, cca: summary }, step: 0, retrievalSpace: 'projection', device: options.device },
    config.train.keepCheckpoints,
  );
  for (const t of tensors.values()) t.dispose();
  return { checkpoint, summary };
}

/**
 * `train` with loss.objective cca: fits a new run (fitCcaRun), or says that a resumed one is fitted
 * already (there is nothing to continue).
 */
export async function ccaTrainRun(options: CcaRunOptions & { resumed?: string }): Promise<TrainRunResult> {
  if (options.resumed !== undefined) {
    options.say(`${options.resumed}: the CCA heads are fitted already; nothing to resume`);
    return { step: 0, totalSteps: 0, finished: true, checkpoint: options.resumed };
  }
  const { checkpoint } = await fitCcaRun(options);
  return { step: 0, totalSteps: 0, finished: true, checkpoint };
}
