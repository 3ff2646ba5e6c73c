// `npm run bench -- dist`: data-parallel speed of the default configuration (preset cpu-small,
// global batch 256) in 1 process and in 2 processes on loopback, 1 libtorch thread each, on
// batches decoded before the clock starts (bench/dist_worker.ts): step time and image–text pairs
// per second, the speed-up (target ≥ 1.8×), and the gradients' averaging: through shared memory
// (the default for ranks on one machine, as are the step's collectives), what was left to wait
// for after backward; through Gloo,
// its time per step alone (blocking, bucket after bucket) and what of it was left to wait for
// after backward, the rest having run while backward did; then 2 processes with local BatchNorm
// (train.syncBatchNorm false), and 2 that communicate through Gloo alone (sameHostMemory false, as
// between machines). Beside them three bounds: one process on half the batch, two such processes at once
// without communicating (what the two cores give when both compute), and the two ranks' shards at
// once without communicating (the ranks' own batches). And the same step in PyTorch
// (bench/align_torch.py, from the same initial weights) in 1 process and in 2 with
// DistributedDataParallel, as a PyTorch user would run it on the CPU: local BatchNorm (PyTorch's
// SyncBatchNorm refuses CPU tensors), so its like is our local-BatchNorm arm. Every arm runs once
// per round, --rounds times (default 3), and the speed-up printed last is the median of the
// rounds' ratios: this machine is shared, and a single run moved by ±15%.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { libtorchVersion } from '../src/index.js';
import { freeLoopbackPort } from '../src/distributed/launch_local.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { ManifestLoader } from '../src/data/manifest_loader.js';
import { AlignTrainer } from '../src/align/train.js';
import { manifestBatches } from '../src/align/batches.js';
import { resolveConfig } from '../src/config/load.js';
import { buildModel, fitModalities, trainOptions } from '../src/run/model_setup.js';
import { ensureIconData, writeTorchPeerFolder } from './align.js';
import { machineDescription, median, PYTHON_WITH_TORCH } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const worker = path.join(here, 'dist_worker.js');
const torchScript = path.join(here, '..', '..', 'bench', 'align_torch.py');
const BATCH = 256;

interface WorkerResult {
  rank: number;
  parameters: number;
  stepMs: number[];
  cpuMs: number[];
  /** The kernel's part of cpuMs. */
  systemMs: number[];
  losses: number[];
  exposedMs: number[];
  allReduceMs?: number;
  buckets: number[];
  transport?: string;
}

/**
 * One process per rank of `worldSize`, each started by `start(rank, port)` with one libtorch
 * thread and a loopback port free a moment ago for the rendezvous; each one's last stdout line, a
 * JSON object, in rank order. `what` names the processes in an error.
 */
async function runRanks(
  worldSize: number,
  what: string,
  start: (rank: number, port: number) => { command: string; args: string[]; env?: Record<string, string> },
): Promise<unknown[]> {
  const port = await freeLoopbackPort();
  return Promise.all(
    Array.from(
      { length: worldSize },
      (_, rank) =>
        new Promise<unknown>((resolve, reject) => {
          const { command, args, env = {} } = start(rank, port);
          const child = spawn(command, args, {
            stdio: ['ignore', 'pipe', 'inherit'],
            env: { ...process.env, OMP_NUM_THREADS: '1', ...env },
          });
          let stdout = '';
          child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
          child.once('exit', (code) => {
            const line = stdout.trim().split('\n').pop() ?? '';
            if (code !== 0 || !line.startsWith('{')) reject(new Error(`bench dist: ${what} ${rank} of ${worldSize} exited with ${code}`));
            else resolve(JSON.parse(line));
          });
        }),
    ),
  );
}

/** `off`: the parts of data-parallel training the workers leave out (bench/dist_worker.ts, BYOL_ALIGN_BENCH_DIST_OFF). */
async function runWorkers(
  worldSize: number,
  warmup: number,
  timed: number,
  dataDir: string,
  batch = BATCH,
  off = '',
): Promise<WorkerResult[]> {
  const results = await runRanks(worldSize, 'worker', (rank, port) => ({
    command: process.execPath,
    args: [worker, ...[rank, worldSize, port, warmup, timed].map(String), dataDir, String(batch)],
    env: { BYOL_ALIGN_BENCH_DIST_OFF: off },
  }));
  return results as WorkerResult[];
}

/** The PyTorch side's folder (bench/align_torch.py): the default model's initial weights and the step's settings. */
async function torchPeerFolder(dataDir: string, warmup: number, timed: number): Promise<string> {
  const config = resolveConfig({ preset: 'cpu-small' });
  const data = loadCocoCaptions(path.join(dataDir, 'captions_train.json'), path.join(dataDir, 'images'));
  const modalities = await fitModalities(config, data.items);
  const model = buildModel(config, modalities);
  const loader = new ManifestLoader(data, {
    batchSize: BATCH,
    size: config.image.size,
    channels: config.image.channels,
    seed: 0,
    poolSize: 1,
  });
  // The trainer is made for its optimizer settings (bench.json): it trains nothing here.
  const options = trainOptions(
    config,
    modalities,
    (epoch, fromStep) => manifestBatches(loader, modalities, epoch, fromStep),
    loader.batchesPerEpoch,
  );
  await loader.close();
  const folder = mkdtempSync(path.join(tmpdir(), 'byol-align-bench-dist-'));
  const trainer = new AlignTrainer(model, options);
  await writeTorchPeerFolder(folder, {
    config,
    model,
    modalities,
    trainer,
    weights: options.weights,
    threads: 1,
    warmup,
    timed,
    dataDir,
    device: 'cpu',
  });
  return folder;
}

/** What one PyTorch rank reports: its ms a step over the timed steps, and the first step's loss. */
interface TorchResult {
  msPerStep: number;
  firstLoss: number;
}

/** PyTorch's step on `worldSize` processes of one thread (DDP over Gloo on loopback where 2): each rank's result. */
async function runTorch(folder: string, worldSize: number): Promise<TorchResult[]> {
  const results = await runRanks(worldSize, 'PyTorch rank', (rank, port) => ({
    command: PYTHON_WITH_TORCH,
    args: [torchScript, folder],
    // WORLD_SIZE 1 as well: a job this bench runs under must not make the single process a rank of it.
    env: { RANK: String(rank), WORLD_SIZE: String(worldSize), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
  }));
  return (results as { ms_per_step: number; first_loss: number }[]).map((r) => ({ msPerStep: r.ms_per_step, firstLoss: r.first_loss }));
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** What one round measured: each arm's ms per step (wall and CPU, the slower rank's where two run). */
interface Round {
  single: number;
  singleCpu: number;
  parallel: number;
  parallelCpu: number[];
  parallelSystem: number[];
  /** 2 processes with local BatchNorm (train.syncBatchNorm false). */
  localBatchNorm: number;
  /** 2 processes communicating through Gloo alone (as between machines), not shared memory. */
  glooOnly: number;
  /** Two independent processes on the same half batch, at once: the two cores' speed without communication. */
  pairOfHalves: number;
  /** The two ranks' shards at once, without a process group: the ranks' own work, the slower one's pace. */
  shardsAlone: number;
  shardsSystem: number[];
  half: number;
  halfCpu: number;
  /** PyTorch in 1 process and in 2 with DDP (local BatchNorm); null without Debian's python3-torch. */
  torch: { single: number; parallel: number; singleLoss: number; parallelLoss: number } | null;
  two: WorkerResult[];
  gloo: WorkerResult[];
  one: WorkerResult;
}

async function runRound(warmup: number, timed: number, dataDir: string, torchFolder: string | null): Promise<Round> {
  const msPerStep = (r: WorkerResult): number => mean(r.stepMs.slice(warmup));
  const cpuPerStep = (r: WorkerResult): number => mean(r.cpuMs.slice(warmup));
  const systemPerStep = (r: WorkerResult): number => mean(r.systemMs.slice(warmup));
  const [one] = await runWorkers(1, warmup, timed, dataDir);
  const two = await runWorkers(2, warmup, timed, dataDir);
  // The same with each rank's own BatchNorm statistics (train.syncBatchNorm false).
  const localBn = await runWorkers(2, warmup, timed, dataDir, BATCH, 'syncbn');
  // The default through Gloo alone, as between machines (sameHostMemory false).
  const gloo = await runWorkers(2, warmup, timed, dataDir, BATCH, 'samehost');
  // One process on half the batch: what a rank's share of the work costs without any communication.
  const [half] = await runWorkers(1, warmup, timed, dataDir, BATCH / 2);
  // Two such processes at once: the cores, caches and memory shared as the two ranks share them.
  const halves = (await Promise.all([0, 1].map(() => runWorkers(1, warmup, timed, dataDir, BATCH / 2)))).flat();
  // The two ranks' shards at once, without a process group: the ranks' own batches, where the
  // processes above train other items of the epoch (its first batches of 128).
  const shards = await runWorkers(2, warmup, timed, dataDir, BATCH, 'group');
  let torch: Round['torch'] = null;
  // A failing PyTorch side is reported, and the round keeps byol-align's figures.
  if (torchFolder) {
    try {
      const [single] = await runTorch(torchFolder, 1);
      const parallel = await runTorch(torchFolder, 2);
      torch = {
        single: single!.msPerStep,
        parallel: Math.max(...parallel.map((r) => r.msPerStep)),
        singleLoss: single!.firstLoss,
        parallelLoss: parallel[0]!.firstLoss,
      };
    } catch (err) {
      console.error(`PyTorch side failed: ${(err as Error).message}`);
    }
  }
  return {
    single: msPerStep(one!),
    singleCpu: cpuPerStep(one!),
    // The ranks wait for each other every step: the job runs at its slower rank's pace.
    parallel: Math.max(...two.map(msPerStep)),
    parallelCpu: two.map(cpuPerStep),
    parallelSystem: two.map(systemPerStep),
    localBatchNorm: Math.max(...localBn.map(msPerStep)),
    glooOnly: Math.max(...gloo.map(msPerStep)),
    pairOfHalves: Math.max(...halves.map(msPerStep)),
    shardsAlone: Math.max(...shards.map(msPerStep)),
    shardsSystem: shards.map(systemPerStep),
    half: msPerStep(half!),
    halfCpu: cpuPerStep(half!),
    torch,
    two,
    gloo,
    one: one!,
  };
}

export async function benchDist(options: { warmup?: number; timed?: number; rounds?: number; dataDir?: string } = {}): Promise<void> {
  const { timed = 6, rounds = 3, dataDir = 'data/icons' } = options;
  // One untimed pass over the batches that are then timed: every caption width met before the clock
  // starts (bench/dist_worker.ts).
  const warmup = options.warmup ?? timed;
  console.log(`data-parallel training benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  ensureIconData(dataDir);
  console.log(
    `preset cpu-small (the default objective), global batch ${BATCH}, 1 libtorch thread a process, batches decoded beforehand, ${timed} timed steps after ${warmup} warm-up steps over the same batches; ` +
      `${rounds} rounds, each running every arm once, one after the other (a shared machine drifts: a round's ratios hold, its absolute times less)`,
  );
  const pairs = (ms: number): number => (BATCH * 1000) / ms;
  const torchFolder = existsSync(PYTHON_WITH_TORCH) ? await torchPeerFolder(dataDir, warmup, timed) : null;
  const all: Round[] = [];
  try {
    for (let r = 1; r <= rounds; r++) {
      const round = await runRound(warmup, timed, dataDir, torchFolder);
      all.push(round);
      const exposed = mean(round.two[0]!.exposedMs.slice(warmup));
      const glooExposed = mean(round.gloo[0]!.exposedMs.slice(warmup));
      const allReduce = round.gloo[0]!.allReduceMs!;
      const megabytes = (round.two[0]!.buckets.reduce((a, b) => a + b, 0) * 4) / 2 ** 20;
      if (r === 1) console.log(`  parameters (online network): ${round.one.parameters}`);
      console.log(`  round ${r}:`);
      console.log(
        `    1 process:   ${round.single.toFixed(0)} ms/step, ${pairs(round.single).toFixed(1)} image-text pairs/s (CPU ${round.singleCpu.toFixed(0)} ms/step)`,
      );
      console.log(
        `    2 processes: ${round.parallel.toFixed(0)} ms/step, ${pairs(round.parallel).toFixed(1)} image-text pairs/s: ${(round.single / round.parallel).toFixed(2)}x one process ` +
          `(CPU ${round.parallelCpu.map((c) => c.toFixed(0)).join(' and ')} ms/step, of which in the kernel ${round.parallelSystem.map((c) => c.toFixed(0)).join(' and ')}; ` +
          `the shards without communication ${round.shardsSystem.map((c) => c.toFixed(0)).join(' and ')})`,
      );
      console.log(
        `    2 processes, local BatchNorm (train.syncBatchNorm false): ${round.localBatchNorm.toFixed(0)} ms/step: ${(round.single / round.localBatchNorm).toFixed(2)}x one process`,
      );
      console.log(
        `    2 processes through Gloo alone (sameHostMemory false, as between machines): ${round.glooOnly.toFixed(0)} ms/step: ${(round.single / round.glooOnly).toFixed(2)}x one process`,
      );
      console.log(
        `    bounds: 1 process on half the batch ${round.half.toFixed(0)} ms/step (CPU ${round.halfCpu.toFixed(0)}): ${(round.single / round.half).toFixed(2)}x; ` +
          `2 such processes at once, no communication, ${round.pairOfHalves.toFixed(0)} ms/step: ${(round.single / round.pairOfHalves).toFixed(2)}x; ` +
          `the 2 ranks' shards at once, no communication, ${round.shardsAlone.toFixed(0)} ms/step: ${(round.single / round.shardsAlone).toFixed(2)}x`,
      );
      console.log(
        `    gradients: ${megabytes.toFixed(1)} MB in ${round.two[0]!.buckets.length} buckets a step; through ${round.two[0]!.transport}: ${exposed.toFixed(1)} ms a step waited for after backward; ` +
          `through Gloo: ${allReduce.toFixed(1)} ms a step alone (blocking), ${glooExposed.toFixed(1)} ms waited for after backward: ${Math.max(0, 100 * (1 - glooExposed / allReduce)).toFixed(0)}% hidden behind backward`,
      );
      console.log(
        round.torch
          ? `    PyTorch (DDP, local BatchNorm): 1 process ${round.torch.single.toFixed(0)} ms/step, 2 processes ${round.torch.parallel.toFixed(0)} ms/step: ${(round.torch.single / round.torch.parallel).toFixed(2)}x; ` +
              `byol-align's 1 process against PyTorch's: ${(round.torch.single / round.single).toFixed(2)}x as fast, 2 processes (local BatchNorm) against PyTorch's 2: ${(round.torch.parallel / round.localBatchNorm).toFixed(2)}x`
          : `    PyTorch: not run (${torchFolder ? 'it failed, above' : `no ${PYTHON_WITH_TORCH}`})`,
      );
    }
  } finally {
    if (torchFolder) rmSync(torchFolder, { recursive: true, force: true });
  }
  const speedUps = all.map((r) => r.single / r.parallel);
  const localSpeedUps = all.map((r) => r.single / r.localBatchNorm);
  const glooSpeedUps = all.map((r) => r.single / r.glooOnly);
  const ceilings = all.map((r) => r.single / r.pairOfHalves);
  const shardCeilings = all.map((r) => r.single / r.shardsAlone);
  console.log(
    `  2 processes against 1, median of ${rounds} rounds: ${median(speedUps).toFixed(2)}x (rounds: ${speedUps.map((s) => s.toFixed(2)).join(', ')}; target >= 1.8x); ` +
      `the two cores without communication: ${median(ceilings).toFixed(2)}x on the same half batch, ${median(shardCeilings).toFixed(2)}x on the ranks' shards`,
  );
  console.log(
    `  with local BatchNorm (train.syncBatchNorm false), median: ${median(localSpeedUps).toFixed(2)}x (rounds: ${localSpeedUps.map((s) => s.toFixed(2)).join(', ')})`,
  );
  console.log(
    `  through Gloo alone (sameHostMemory false), median: ${median(glooSpeedUps).toFixed(2)}x (rounds: ${glooSpeedUps.map((s) => s.toFixed(2)).join(', ')})`,
  );
  // The rounds whose PyTorch side ran, each with its byol-align figures.
  const withTorch = all.flatMap((r) => (r.torch ? [{ ...r, torch: r.torch }] : []));
  if (withTorch.length > 0) {
    const torchSpeedUps = withTorch.map((r) => r.torch.single / r.torch.parallel);
    const against = (ours: (r: Round) => number, theirs: (t: NonNullable<Round['torch']>) => number): string =>
      median(withTorch.map((r) => theirs(r.torch) / ours(r))).toFixed(2);
    console.log(
      `  PyTorch DDP (local BatchNorm), 2 processes against 1, median: ${median(torchSpeedUps).toFixed(2)}x (rounds: ${torchSpeedUps.map((x) => x.toFixed(2)).join(', ')}); ` +
        `byol-align's pairs/s against PyTorch's, median: 1 process ${against(
          (r) => r.single,
          (t) => t.single,
        )}x, ` +
        `2 processes with local BatchNorm ${against(
          (r) => r.localBatchNorm,
          (t) => t.parallel,
        )}x, with synchronised BatchNorm ${against(
          (r) => r.parallel,
          (t) => t.parallel,
        )}x`,
    );
  }
  const torchLoss = withTorch[0]?.torch;
  console.log(
    `  loss at step 1: 1 process ${all[0]!.one.losses[0]!.toFixed(4)}, 2 processes ${all[0]!.two[0]!.losses[0]!.toFixed(4)} (the same batch; each rank draws its own views)` +
      (torchLoss
        ? `; PyTorch 1 process ${torchLoss.singleLoss.toFixed(4)}, 2 processes ${torchLoss.parallelLoss.toFixed(4)} (its own views and local BatchNorm)`
        : ''),
  );
}
