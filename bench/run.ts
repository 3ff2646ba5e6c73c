// `npm run bench -- NAME [...] [--threads N] [--warmup N] [--timed N]`: runs the named benchmarks
// (all when none is named). --threads sets libtorch's threads on both sides (default: every core;
// engine measures 1 thread besides); --warmup and --timed the alignment benchmark's step counts,
// --speech its three-modality variant (image, text, audio), --precision fp32|bf16 its forward pass's
// precision on both sides (train.precision; default fp32), --device cpu|cuda|cuda:N where both
// sides run it (default cpu; CUDA where this libtorch has none is an error naming it, exit 2).
// align --locked RUN trains new heads on RUN's towers three ways instead: all trainable, locked,
// and locked on the feature cache (bench/align_locked.ts).
// serve takes --run RUN, --items N, --requests N, --seconds S, --connections 1,50, --queries N,
// --train-steps N and --rounds N (bench/serve.ts); text takes --run RUN, --queries N and --batch N (bench/text_forward.ts).
// dist trains the default configuration in 1 and in 2 processes of 1 thread each, --warmup and
// --timed steps, --rounds times (bench/dist.ts).
import os from 'node:os';
import { parseArgs } from 'node:util';
import { benchEngine } from './engine.js';
import { benchByol } from './byol.js';
import { benchAlign } from './align.js';
import { benchAlignLocked } from './align_locked.js';
import { resolveDevice } from '../src/run/device.js';
import { ConfigError } from '../src/config/load.js';
import type { Device } from '../src/engine/index.js';
import { benchServe } from './serve.js';
import { benchText } from './text_forward.js';
import { benchDist } from './dist.js';

const { values, positionals: requested } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string' },
    warmup: { type: 'string' },
    timed: { type: 'string' },
    run: { type: 'string' },
    items: { type: 'string' },
    requests: { type: 'string' },
    seconds: { type: 'string' },
    connections: { type: 'string' },
    queries: { type: 'string' },
    'train-steps': { type: 'string' },
    batch: { type: 'string' },
    speech: { type: 'boolean' },
    rounds: { type: 'string' },
    precision: { type: 'string' },
    device: { type: 'string' },
    locked: { type: 'string' },
  },
});

/** The integer value of --name, at least `min`, or `fallback` when it is not given. */
function count(name: string, value: string | undefined, fallback: number | undefined, min: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer ≥ ${min}, got '${value}'`);
    process.exit(2);
  }
  return n;
}

const threads = count('threads', values.threads, os.availableParallelism(), 1)!;
const warmup = count('warmup', values.warmup, undefined, 0);
const timed = count('timed', values.timed, undefined, 1);
const connections = values.connections?.split(',').map((c) => count('connections', c, undefined, 1)!);
// The benchmarks run on the CPU, whose autocast has bfloat16 only (fp16 needs CUDA).
const precision = values.precision ?? 'fp32';
if (precision !== 'fp32' && precision !== 'bf16') {
  console.error(`--precision must be fp32 or bf16 (the CPU's autocast has no fp16), got '${precision}'`);
  process.exit(2);
}
let device: Device = 'cpu';
try {
  device = resolveDevice(values.device ?? 'cpu', '--device');
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}

const benchmarks: Record<string, () => void | Promise<void>> = {
  engine: () => benchEngine([...new Set([1, threads])]),
  byol: () => benchByol(threads),
  align: () =>
    values.locked !== undefined
      ? benchAlignLocked({ run: values.locked, threads, warmup, timed, device })
      : benchAlign({ threads, warmup, timed, speech: values.speech === true, precision, device }),
  serve: () =>
    benchServe({
      threads,
      run: values.run,
      items: count('items', values.items, undefined, 1),
      requests: count('requests', values.requests, undefined, 1),
      seconds: count('seconds', values.seconds, undefined, 1),
      connections,
      queries: count('queries', values.queries, undefined, 1),
      trainSteps: count('train-steps', values['train-steps'], undefined, 1),
      rounds: count('rounds', values.rounds, undefined, 1),
    }),
  text: () =>
    benchText({
      run: values.run,
      queries: count('queries', values.queries, undefined, 1),
      batch: count('batch', values.batch, undefined, 1),
    }),
  dist: () => benchDist({ warmup, timed, rounds: count('rounds', values.rounds, undefined, 1) }),
};

const unknown = requested.filter((name) => !(name in benchmarks));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${Object.keys(benchmarks).join(', ')}`);
  process.exit(2);
}
for (const name of requested.length > 0 ? requested : Object.keys(benchmarks)) await benchmarks[name]!();
