// The losses of data-parallel training see the global batch. Each rank runs its shard of the batch
// through the model; its outputs are then all-gathered, in rank order, so that every rank holds the
// outputs of the whole batch, row for row what one process would have made of it, and computes the
// same loss on them: VICReg's variance and covariance terms and InfoNCE's negatives span the global
// batch (as VICReg's and solo-learn's FullGatherLayer do), and BYOL's per-item terms average over
// it. The online outputs are gathered with their gradient (the sum over ranks of the gradients of
// this rank's rows, ProcessGroup.allGatherWithGrad), so that averaging the parameters' gradients
// over the ranks gives the gradient of that loss exactly.
//
// Shards need not be equal: each rank's rows are padded to the largest shard with rows marked absent
// (`present` false), which every term already leaves out. A modality that some rank's shard lacks
// enters as absent rows there; one that no rank has is left out, as one process leaves it out.
import { cat, isGradEnabled, noGrad, tensor, zeros, type Tensor } from '../engine/index.js';
import type { ProcessGroup } from '../engine/distributed.js';
import type { AlignModel, ModalityOutputs, ModalityViews } from '../align/model.js';
import type { SyncControl } from './sync_batch_norm.js';

/** The fields of ModalityOutputs besides `present`; the online ones carry gradients. */
const ONLINE = ['q1', 'q2', 'p1', 'p2'] as const;
const TARGET = ['z1', 'z2'] as const;

type ForwardViews = AlignModel['forwardViews'];

/**
 * Makes `model.forwardViews` return the outputs of all ranks' batches (see the top of this file).
 * Before each forward the ranks exchange their batch sizes and which modalities they have; BatchNorm
 * layers converted with `control` synchronise only in steps where every modality is on every rank
 * or on none (a layer of a modality some rank lacks would wait for it forever), and normalise with
 * each rank's own statistics otherwise.
 */
export function gatherOutputsOverRanks(model: AlignModel, group: ProcessGroup, control: SyncControl, syncBatchNorm: boolean): void {
  const own: ForwardViews = model.forwardViews.bind(model);
  const gathered: ForwardViews = (views, batchSize) => {
    const counts = exchangeCounts(group, model.modalities, views, batchSize);
    const shardRows = Math.max(...counts.map((c) => c.size));
    const presentAnywhere = model.modalities.filter((_, m) => counts.some((c) => c.rows[m]! > 0));
    const everywhere = presentAnywhere.every((name) => counts.every((c) => c.rows[model.modalities.indexOf(name)]! > 0));
    control.enabled = syncBatchNorm && everywhere;
    const outputs = own(views, batchSize);
    // One process orders the modalities as its batch does; so does a rank that has them all.
    const order = everywhere ? [...outputs.keys()] : presentAnywhere;
    const widths = everywhere ? null : exchangeWidths(group, order, outputs);
    return gatherModalities(group, order, outputs, widths, batchSize, shardRows);
  };
  Object.defineProperty(model, 'forwardViews', { value: gathered, configurable: true, writable: true });
}

interface RankCounts {
  size: number;
  /** Rows with each of model.modalities, 0 where absent. */
  rows: number[];
}

/** Every rank's batch size and rows per modality, by rank. */
function exchangeCounts(
  group: ProcessGroup,
  modalities: readonly string[],
  views: Map<string, ModalityViews>,
  batchSize: number,
): RankCounts[] {
  const own = modalities.map((name) => {
    const v = views.get(name);
    return v === undefined ? 0 : v.rows === null ? batchSize : v.rows.shape[0]!;
  });
  const all = noGrad(() => group.allGather(tensor([[batchSize, ...own]], { dtype: 'int64' })).toArray()) as number[][];
  return all.map(([size, ...rows]) => ({ size: size!, rows }));
}

/** The width of each online and target field of each modality, from the ranks that have it. */
function exchangeWidths(group: ProcessGroup, order: readonly string[], outputs: Map<string, ModalityOutputs>): number[][] {
  const fields = [...ONLINE, ...TARGET];
  const own = order.flatMap((name) => fields.map((f) => outputs.get(name)?.[f].shape[1] ?? 0));
  const widths = noGrad(() => group.allReduce(tensor(own, { dtype: 'int64' }), 'max').toFlatArray());
  return order.map((_, i) => widths.slice(i * fields.length, (i + 1) * fields.length));
}

/**
 * Every modality's outputs over all ranks, in two gathers a step whatever the modalities: the
 * online fields of all of them side by side in one gather with gradient, the target fields and
 * masks in one without (each collective is a point where the ranks wait for each other, and costs
 * about 0.5 ms on loopback). Where this rank lacks modality `order[i]` (not in `outputs`), its
 * rows are zeros marked absent, with the shapes `widths[i]` gives.
 */
function gatherModalities(
  group: ProcessGroup,
  order: readonly string[],
  outputs: Map<string, ModalityOutputs>,
  widths: number[][] | null,
  batchSize: number,
  shardRows: number,
): Map<string, ModalityOutputs> {
  const blocks = order.map((name, i) => {
    const local = outputs.get(name);
    const widthOf = (field: (typeof ONLINE)[number] | (typeof TARGET)[number], k: number): number =>
      local === undefined ? widths![i]![k]! : local[field].shape[1]!;
    return {
      local,
      onlineWidths: ONLINE.map((f, k) => widthOf(f, k)),
      targetWidths: TARGET.map((f, k) => widthOf(f, ONLINE.length + k)),
    };
  });
  const pad = (t: Tensor, rows: number): Tensor => (rows === shardRows ? t : cat([t, zeros([shardRows - rows, t.shape[1]!])]));
  // Float32 whatever the forward's precision: the losses take float32, and Gloo has no bfloat16.
  const online = cat(
    blocks.map(({ local, onlineWidths }) =>
      local === undefined
        ? zeros([shardRows, sum(onlineWidths)])
        : pad(
            cat(
              ONLINE.map((f) => (local[f].dtype === 'float32' ? local[f] : local[f].float())),
              1,
            ),
            batchSize,
          ),
    ),
    1,
  );
  // Every rank gathers with gradient or none does (the backward is a collective too): a rank
  // whose outputs ask for none (it lacks every modality) joins with a placeholder that does.
  const withGrad = isGradEnabled();
  if (withGrad && !online.requiresGrad) online.requiresGrad_(true);
  const onlineAll = withGrad ? group.allGatherWithGrad(online) : group.allGather(online);
  const target = noGrad(() =>
    group.allGather(
      cat(
        blocks.map(({ local, targetWidths }) =>
          local === undefined
            ? zeros([shardRows, sum(targetWidths) + 1])
            : pad(cat([...TARGET.map((f) => local[f].detach().float()), local.present.reshape(batchSize, 1).float()], 1), batchSize),
        ),
        1,
      ),
    ),
  );
  const onlineParts = splitColumns(
    onlineAll,
    blocks.map((b) => sum(b.onlineWidths)),
  );
  const targetParts = splitColumns(
    target,
    blocks.map((b) => sum(b.targetWidths) + 1),
  );
  const global = new Map<string, ModalityOutputs>();
  for (const [i, name] of order.entries()) {
    const { onlineWidths, targetWidths } = blocks[i]!;
    const [q1, q2, p1, p2] = splitColumns(onlineParts[i]!, onlineWidths) as [Tensor, Tensor, Tensor, Tensor];
    const [z1, z2, present] = splitColumns(targetParts[i]!, [...targetWidths, 1]) as [Tensor, Tensor, Tensor];
    global.set(name, { q1, q2, p1, p2, z1, z2, present: present.reshape(present.shape[0]!).bool() });
  }
  return global;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function splitColumns(t: Tensor, widths: readonly number[]): Tensor[] {
  let start = 0;
  return widths.map((w) => {
    const part = t.narrow(1, start, w);
    start += w;
    return part;
  });
}
