// The training that tests/data_parallel.test.ts runs in one process and in several
// (tests/data_parallel_worker.ts): two vector modalities of 64 items, global batches of 16,
// BatchNorm in the encoders and heads, BYOL's terms with InfoNCE and VICReg's variance and
// covariance (every term that reads the batch), and views that draw nothing, so that one process
// and several see the same inputs. Its 'partial' variant (FixtureVariant) drops modality b from
// some items and BatchNorm from the model.
import { readFileSync, writeFileSync } from 'node:fs';
import { manualSeed, randn, tensor, type Tensor } from '../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/engine/safetensors.js';
import { AlignModel } from '../src/align/model.js';
import { AlignTrainer, type AlignBatch, type AlignTrainOptions, type AlignTrainerMeta } from '../src/align/train.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { IDENTITY_VECTOR_VIEW, vectorModality } from '../src/modalities/vector/index.js';
import { withName, type Modality } from '../src/modalities/modality.js';
import { shardOfBatch } from '../src/data/epoch_order.js';

export const ITEMS = 64;
export const BATCH = 16; // 4 steps per epoch
export const EPOCHS = 2;

/**
 * 'partial': modality b missing from items 8–15, so that rank 1 of 2 lacks it in the first step
 * (and some later shards have it for some rows only), and no BatchNorm anywhere (a step with a
 * modality some rank lacks normalises with each rank's own statistics, which one process cannot
 * match): the gathers' zero rows for an absent modality against one process.
 */
export type FixtureVariant = 'full' | 'partial';

const MISSING_B = new Set([8, 9, 10, 11, 12, 13, 14, 15]);

/** A fresh trainer; with `shard`, its batches are that rank's shard of each global batch. */
export async function makeTrainer(
  shard?: { rank: number; worldSize: number },
  initSeed = 5,
  variant: FixtureVariant = 'full',
): Promise<AlignTrainer> {
  const partial = variant === 'partial';
  manualSeed(21);
  const latent = randn([ITEMS, 3]);
  const rows = (t: Tensor, d: number): number[][] => {
    const flat = t.toFlatArray();
    return Array.from({ length: ITEMS }, (_, i) => flat.slice(i * d, (i + 1) * d));
  };
  const data = { a: rows(latent.matmul(randn([3, 6])), 6), b: rows(latent.matmul(randn([3, 5])), 5) };
  const views = { view1: IDENTITY_VECTOR_VIEW, view2: IDENTITY_VECTOR_VIEW };
  const hiddenDims = partial ? [] : [16];
  const a = withName(await vectorModality.fit({ featureDim: 8, hiddenDims, ...views }, data.a), 'a');
  const b = withName(await vectorModality.fit({ featureDim: 8, hiddenDims, ...views }, data.b), 'b');
  const modalities: Modality[] = [a, b];
  manualSeed(initSeed);
  const model = new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16, tauBase: 0.9, headNorm: partial ? 'layer' : 'batch' },
  );
  const order = (epoch: number): number[] => Array.from({ length: ITEMS }, (_, i) => (i * (2 * epoch + 1) + epoch) % ITEMS);
  async function* batches(epoch: number, fromStep: number): AsyncIterable<AlignBatch> {
    const o = order(epoch);
    for (let step = fromStep; step < ITEMS / BATCH; step++) {
      const idx = shard ? shardOfBatch(o, step, BATCH, shard.rank, shard.worldSize) : o.slice(step * BATCH, (step + 1) * BATCH);
      const inputs: AlignBatch['inputs'] = new Map([['a', { batch: await a.collate(idx.map((i) => data.a[i]!)), rows: null }]]);
      const withB = idx.map((_, row) => row).filter((row) => !(partial && MISSING_B.has(idx[row]!)));
      if (withB.length > 0) {
        const rows = withB.length === idx.length ? null : tensor(withB, { dtype: 'int64' });
        inputs.set('b', { batch: await b.collate(withB.map((row) => data.b[idx[row]!]!)), rows });
      }
      yield { size: idx.length, inputs };
    }
  }
  const options: AlignTrainOptions = {
    modalities,
    batches,
    stepsPerEpoch: ITEMS / BATCH,
    epochs: EPOCHS,
    batchSize: BATCH,
    weights: { ...ALIGNMENT_OBJECTIVES.byolInfoNce, varianceWeight: 0.5, covarianceWeight: 0.02 },
    // LARS (BYOL's), which leaves biases and BatchNorm's parameters to plain momentum SGD: Adam
    // would turn the rounding noise in the zero gradients of the biases before a BatchNorm (any
    // constant there is normalised away) into full-size steps, which no two summation orders share.
    optimizer: 'lars',
    baseLr: 0.2,
    scaleLrByBatch: false,
    seed: 9,
    rank: shard?.rank ?? 0,
  };
  return new AlignTrainer(model, options);
}

/** The trainer's state as safetensors bytes in `file`, its meta in the header. */
export function saveState(trainer: AlignTrainer, file: string): void {
  const { tensors, meta } = trainer.stateDict();
  writeFileSync(file, serializeSafetensors(tensors, { trainer: JSON.stringify(meta) }));
}

export function loadState(file: string): { tensors: Map<string, Tensor>; meta: AlignTrainerMeta } {
  const saved = parseSafetensors(readFileSync(file));
  return { tensors: new Map(saved.tensors), meta: JSON.parse(saved.metadata!.trainer!) as AlignTrainerMeta };
}
