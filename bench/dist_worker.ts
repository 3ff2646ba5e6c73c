// One process of `npm run bench -- dist` (bench/dist.ts): `node dist_worker.js RANK WORLD PORT
// WARMUP TIMED DATA_DIR [BATCH]`. It trains the default configuration (preset cpu-small, global
// batch BATCH, default 256) on one libtorch thread, its shard of each batch decoded before the clock starts, alone
// (WORLD 1: the plain trainer) or data-parallel (DataParallel over loopback), then times the
// gradients' all-reduce alone, and prints one JSON line of what it measured.
//
// BYOL_ALIGN_BENCH_DIST_OFF lists parts of data-parallel training to leave out, comma-separated:
// `samehost` (everything through Gloo, as between machines, although the ranks share this one:
// sameHostMemory false), `channel` (the step's collectives through Gloo, the gradients still
// through shared memory), `syncbn` (local BatchNorm, as train.syncBatchNorm false), `gathers` (the losses over each rank's
// own rows), `gradients` (no averaging: the ranks' weights drift apart), `stop` (no all-reduce a
// step to agree on stopping), `group` (no process group at all: each rank trains its shard alone).
// The bench times `syncbn` and `group` as arms of their own; bench/results/data-parallel/ablate.sh
// takes the parts away one at a time. A run without gathers, gradients or stop no longer trains
// what one process trains; its time says what the parts left out cost.
import path from 'node:path';
import { distributed, setNumThreads } from '../src/index.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { decodeBatches } from './align.js';
import { AlignTrainer, type AlignBatch } from '../src/align/train.js';
import { resolveConfig } from '../src/config/load.js';
import { buildModel, fitModalities, trainOptions } from '../src/run/model_setup.js';
import { DataParallel } from '../src/distributed/data_parallel.js';
import { zeros } from '../src/engine/index.js';

/** CPU time so far, every thread of the process, and the part of it in the kernel (system), ms. */
function cpuMs(): { all: number; system: number } {
  const { user, system } = process.cpuUsage();
  return { all: (user + system) / 1000, system: system / 1000 };
}

const [rankText, worldText, portText, warmupText, timedText, dataDir, batchText] = process.argv.slice(2);
const batchSize = Number(batchText ?? 256);
const rank = Number(rankText);
const worldSize = Number(worldText);
const warmup = Number(warmupText);
const steps = warmup + Number(timedText);

setNumThreads(1);
const config = resolveConfig({ preset: 'cpu-small' });
const data = loadCocoCaptions(path.join(dataDir!, 'captions_train.json'), path.join(dataDir!, 'images'));
const modalities = await fitModalities(config, data.items);
const loader = new ManifestLoader(data, {
  batchSize,
  size: config.image.size,
  channels: config.image.channels,
  seed: 0,
  poolSize: 1,
  ...(worldSize > 1 ? { shard: { rank, worldSize } } : {}),
});
// Decoded before the clock starts: the step is measured, not the images' decoding. The TIMED
// batches come round again and again, so that a warm-up of as many steps has run each of them
// once: a step at a caption width not seen before allocates its activations afresh (about 0.5 s
// more), and in a run of a few steps which arm meets new widths while timed was chance, where a
// long training run has met them all (bench/RESULTS.md, issue 15).
const decodedOnce = await decodeBatches(loader, modalities, Number(timedText));
// Each step's own copy, made now: the trainer disposes a batch's tensors after its step.
const batches = Array.from({ length: steps }, (_, step): AlignBatch => {
  const batch = decodedOnce[step % decodedOnce.length]!;
  if (step < decodedOnce.length) return batch;
  const inputs = new Map(
    [...batch.inputs].map(([name, input]) => [name, { ...input, batch: input.batch.clone(), rows: input.rows?.clone() ?? null }]),
  );
  return { size: batch.size, inputs };
});
const model = buildModel(config, modalities);
const decoded = async function* (): AsyncGenerator<AlignBatch> {
  yield* batches;
};
const trainer = new AlignTrainer(model, { ...trainOptions(config, modalities, () => decoded(), loader.batchesPerEpoch), batchSize, rank });
const parameters = model.online.parameters().reduce((n, p) => n + p.size, 0);

const PARTS = ['samehost', 'channel', 'syncbn', 'gathers', 'gradients', 'stop', 'group'];
const off = new Set((process.env.BYOL_ALIGN_BENCH_DIST_OFF ?? '').split(',').filter((part) => part !== ''));
for (const part of off) {
  if (!PARTS.includes(part)) throw new Error(`BYOL_ALIGN_BENCH_DIST_OFF: unknown part '${part}' (parts: ${PARTS.join(', ')})`);
}

let parallel: DataParallel | undefined;
let group: distributed.ProcessGroup | undefined;
let gradientGroup: distributed.ProcessGroup | undefined;
if (worldSize > 1 && !off.has('group')) {
  const timeoutMs = 10 * 60 * 1000;
  const store = distributed.Store.connect({ host: '127.0.0.1', port: Number(portText), isServer: rank === 0, worldSize, timeoutMs });
  group = distributed.ProcessGroup.create(store, { rank, worldSize, hostname: '127.0.0.1', timeoutMs, name: 'train' });
  gradientGroup = distributed.ProcessGroup.create(store, { rank, worldSize, hostname: '127.0.0.1', timeoutMs, name: 'gradients' });
  parallel = new DataParallel(trainer, {
    group,
    gradientGroup,
    syncBatchNorm: !off.has('syncbn'),
    sameHostMemory: !off.has('samehost'),
  });
  // The own forward again, in place of the one that gathers the ranks' outputs.
  if (off.has('gathers')) delete (model as { forwardViews?: unknown }).forwardViews;
  if (off.has('gradients')) parallel.close();
  if (off.has('channel')) group.shareMemory(null);
}
const averaging = parallel !== undefined && !off.has('gradients');
const exposedMs: number[] = [];
// Wall time from one step's end to the next's: everything a step costs, the ranks' waiting for
// each other included.
const stepEnds: number[] = [performance.now()];
// And the CPU time of each step, every thread of the process: on a machine others share, what a
// step needs (wall time also measures what the others took); its system part is the kernel's
// (on loopback, Gloo's TCP copies among it).
const cpuEnds = [cpuMs()];
const records = await (off.has('stop') ? trainer : (parallel ?? trainer)).run({
  stopAfter: steps,
  afterStep: () => {
    // The timed steps start on both ranks at once. Without this barrier, a rank's wait for the
    // other's last warm-up step (at the stop all-reduce after this hook) fell in its first timed
    // step: a warm-up step at a caption width met for the first time takes 0.3–0.5 s longer.
    if (group && stepEnds.length === warmup) group.barrier();
    stepEnds.push(performance.now());
    cpuEnds.push(cpuMs());
    if (averaging) exposedMs.push(parallel!.gradientStats().lastWaitMs);
  },
});

// The same all-reduces alone through Gloo, one after another and blocking: what averaging costs
// unhidden between machines (the gradient group has no shared memory for its collectives).
let allReduceMs: number | undefined;
let buckets: number[] = [];
if (averaging && gradientGroup) {
  buckets = parallel!.gradientStats().bucketSizes;
  const tensors = buckets.map((n) => zeros([n]));
  const times: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    gradientGroup.barrier();
    const start = performance.now();
    for (const t of tensors) gradientGroup.allReduce(t);
    times.push(performance.now() - start);
  }
  allReduceMs = times.sort((a, b) => a - b)[2];
}
process.stdout.write(
  `${JSON.stringify({
    rank,
    worldSize,
    parameters,
    stepMs: stepEnds.slice(1).map((end, k) => end - stepEnds[k]!),
    cpuMs: cpuEnds.slice(1).map((end, k) => end.all - cpuEnds[k]!.all),
    systemMs: cpuEnds.slice(1).map((end, k) => end.system - cpuEnds[k]!.system),
    losses: records.map((r) => r.loss),
    exposedMs,
    allReduceMs,
    buckets,
    transport: parallel?.gradientStats().transport,
  })}\n`,
);
