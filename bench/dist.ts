// `npm run bench -- dist`: data-parallel speed of the default configuration (preset cpu-small,
// global batch 256) in 1 process and in 2 processes on loopback, 1 libtorch thread each, on
// batches decoded before the clock starts (bench/dist_worker.ts): step time and image–text pairs
// per second, the speed-up (target ≥ 1.8×), and the gradients' all-reduce: its time per step alone
// (blocking, bucket after bucket) and what of it was left to wait for after backward, the rest
// having run while backward did.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { libtorchVersion } from '../src/index.js';
import { freeLoopbackPort } from '../src/distributed/launch_local.js';
import { ensureIconData } from './align.js';
import { machineDescription } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const worker = path.join(here, 'dist_worker.js');
const BATCH = 256;

interface WorkerResult {
  rank: number;
  parameters: number;
  stepMs: number[];
  cpuMs: number[];
  losses: number[];
  exposedMs: number[];
  allReduceMs?: number;
  buckets: number[];
}

async function runWorkers(worldSize: number, warmup: number, timed: number, dataDir: string, batch = BATCH): Promise<WorkerResult[]> {
  const port = await freeLoopbackPort();
  const results = await Promise.all(
    Array.from(
      { length: worldSize },
      (_, rank) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const child = spawn(process.execPath, [worker, ...[rank, worldSize, port, warmup, timed].map(String), dataDir, String(batch)], {
            stdio: ['ignore', 'pipe', 'inherit'],
            env: { ...process.env, OMP_NUM_THREADS: '1' },
          });
          let stdout = '';
          child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
          child.once('exit', (code) => {
            const line = stdout.trim().split('\n').pop() ?? '';
            if (code !== 0 || !line.startsWith('{')) reject(new Error(`bench dist: worker ${rank} of ${worldSize} exited with ${code}`));
            else resolve(JSON.parse(line) as WorkerResult);
          });
        }),
    ),
  );
  return results.sort((a, b) => a.rank - b.rank);
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

export async function benchDist(options: { warmup?: number; timed?: number; dataDir?: string } = {}): Promise<void> {
  const { warmup = 2, timed = 6, dataDir = 'data/icons' } = options;
  console.log(`data-parallel training benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  ensureIconData(dataDir);
  const one = await runWorkers(1, warmup, timed, dataDir);
  const two = await runWorkers(2, warmup, timed, dataDir);
  // One process on half the batch: what a rank's share of the work costs without any communication.
  const half = await runWorkers(1, warmup, timed, dataDir, BATCH / 2);
  const msPerStep = (r: WorkerResult): number => mean(r.stepMs.slice(warmup));
  const cpuPerStep = (r: WorkerResult): number => mean(r.cpuMs.slice(warmup));
  const single = msPerStep(one[0]!);
  // The ranks wait for each other every step: the job runs at its slower rank's pace.
  const parallel = Math.max(...two.map(msPerStep));
  const singleCpu = cpuPerStep(one[0]!);
  const parallelCpu = Math.max(...two.map(cpuPerStep));
  const pairs = (ms: number): number => (BATCH * 1000) / ms;
  const exposed = mean(two[0]!.exposedMs.slice(warmup));
  const allReduce = two[0]!.allReduceMs!;
  const megabytes = (two[0]!.buckets.reduce((a, b) => a + b, 0) * 4) / 2 ** 20;
  console.log(
    `preset cpu-small (the default objective), global batch ${BATCH}, 1 libtorch thread a process, batches decoded beforehand, ${timed} timed steps after ${warmup} warm-up`,
  );
  console.log(`  parameters (online network): ${one[0]!.parameters}`);
  console.log(
    `  1 process:   ${single.toFixed(0)} ms/step, ${pairs(single).toFixed(1)} image-text pairs/s (CPU ${singleCpu.toFixed(0)} ms/step)`,
  );
  console.log(
    `  2 processes: ${parallel.toFixed(0)} ms/step, ${pairs(parallel).toFixed(1)} image-text pairs/s: ${(single / parallel).toFixed(2)}x one process (target >= 1.8x)`,
  );
  console.log(
    `    CPU per step of the busier rank ${parallelCpu.toFixed(0)} ms (${two.map((r) => cpuPerStep(r).toFixed(0)).join(' and ')}): ` +
      `${(singleCpu / parallelCpu).toFixed(2)}x less than one process's, the speed-up where each process has a core of its own`,
  );
  const halfCpu = cpuPerStep(half[0]!);
  console.log(
    `    1 process on half the batch (${BATCH / 2}): CPU ${halfCpu.toFixed(0)} ms/step (${(singleCpu / halfCpu).toFixed(2)}x less than the whole batch: ` +
      `the bound, as a step's fixed costs do not halve); data-parallel costs a rank ${(parallelCpu - halfCpu).toFixed(0)} ms/step more`,
  );
  console.log(
    `    gradient all-reduce: ${megabytes.toFixed(1)} MB in ${two[0]!.buckets.length} buckets, ${allReduce.toFixed(1)} ms a step alone (blocking); ` +
      `${exposed.toFixed(1)} ms a step still waited for after backward: ${Math.max(0, 100 * (1 - exposed / allReduce)).toFixed(0)}% hidden behind backward`,
  );
  console.log(
    `  loss at step 1: 1 process ${one[0]!.losses[0]!.toFixed(4)}, 2 processes ${two[0]!.losses[0]!.toFixed(4)} (the same batch; each rank draws its own views)`,
  );
}
