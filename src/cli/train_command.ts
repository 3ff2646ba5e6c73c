// `byol-align train`: a run directory from a preset, a config file, flags and key=value overrides;
// `--resume` alone continues a run with its saved config.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { importPlugins, readConfigFile, resolveConfigWithPlugins } from '../config/load.js';
import { PRESETS, type PresetName } from '../config/presets.js';
import { MAX_THREADS, type ConfigInput } from '../config/schema.js';
import { train } from '../run/train_run.js';
import { ProgressBar } from './progress.js';
import {
  choiceOption,
  deviceOption,
  deviceSetting,
  integerOption,
  listOption,
  pluginOption,
  stringOption,
  UsageError,
  type CommandSpec,
  type OptionValues,
} from './options.js';
import { signalExitCode, watchStopSignals } from './signals.js';
import { joinTraining, launchEnvironment, LaunchEnvironmentError, threadsPerProcess } from '../distributed/join.js';
import { launchLocal } from '../distributed/launch_local.js';

export const threadsOption = {
  type: 'string',
  value: 'N',
  help: `libtorch threads (default: every core; at most ${MAX_THREADS})`,
} as const;

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: 'Train (or resume) an alignment run in a run directory.',
  positionals: '[key.path=value ...]',
  options: {
    preset: { type: 'string', value: 'NAME', help: `start from a preset: ${Object.keys(PRESETS).join(', ')}` },
    config: { type: 'string', value: 'FILE', help: 'a YAML or JSON config over the preset (docs/config.md lists every key)' },
    data: { type: 'string', value: 'SPEC', help: 'training data: coco:FILE, karpathy:FILE[#split] or jsonl:FILE (data.train)' },
    images: { type: 'string', value: 'DIR', help: 'the image folder of a COCO or Karpathy data set (data.images)' },
    'val-data': { type: 'string', value: 'SPEC', help: 'validation data, evaluated after every epoch (data.val)' },
    'val-images': { type: 'string', value: 'DIR', help: 'its image folder (data.valImages)' },
    'val-fraction': {
      type: 'string',
      value: 'F',
      help: 'without --val-data: validate on this fraction of the training concepts, held out of training (data.valFraction)',
    },
    epochs: { type: 'string', value: 'N', help: 'training length in epochs (train.epochs)' },
    steps: { type: 'string', value: 'N', help: 'training length in steps, instead of epochs (train.steps)' },
    'init-from': {
      type: 'string',
      value: 'RUN_OR_CHECKPOINT',
      help: "start a new run's towers and tokenizer from another run (train.initFrom; docs/pretrained.md)",
    },
    out: { type: 'string', short: 'o', value: 'RUN_DIR', help: 'the run directory', default: 'runs/run' },
    resume: { type: 'boolean', help: "continue RUN_DIR's newest good checkpoint exactly, with the run's saved config" },
    force: { type: 'boolean', help: 'write into a non-empty folder that is not a byol-align run' },
    'stop-after': { type: 'string', value: 'N', help: 'end after N more steps with a checkpoint (the schedules stay the full run’s)' },
    threads: threadsOption,
    // No parser default: without --device the run's train.device holds (its saved one on --resume).
    device: {
      type: 'string',
      value: deviceOption.value,
      help: `${deviceOption.help} (train.device, default auto; may differ on --resume)`,
    },
    precision: {
      type: 'string',
      value: 'fp32|bf16|fp16',
      help: "the forward pass's precision (train.precision, default fp32; fp16 needs CUDA; may differ on --resume)",
    },
    plugin: pluginOption,
    nproc: {
      type: 'string',
      value: 'N',
      help: 'data-parallel training in N worker processes on this machine, each with its share of the cores (docs/distributed.md)',
    },
    'dist-timeout': {
      type: 'string',
      value: 'SECONDS',
      help: 'data-parallel: how long a rank waits for the others in a collective before failing (default 1800)',
    },
    quiet: { type: 'boolean', short: 'q', help: 'no progress lines' },
  },
  notes: [
    'key.path=value overrides any config key, e.g. train.batchSize=128 loss.objective=infoNce.',
    'SIGINT or SIGTERM writes a checkpoint after the current step and exits with 130 or 143; the same',
    'signal again a second or more later stops at once. `byol-align train --out RUN --resume` is the',
    'whole command to continue a run; flags given with --resume must match its saved config, but for',
    '--threads, --device and --precision: a run may move between devices and precisions (checkpoints hold',
    'float32 CPU tensors).',
    'Under torchrun (`torchrun --no_python --nproc_per_node N byol-align train ...`) or with RANK, WORLD_SIZE,',
    'MASTER_ADDR and MASTER_PORT set, the command joins that data-parallel job; only rank 0 writes the run.',
  ].join('\n'),
};

/** True when the command line says nothing about the config (only where and how to run). */
function namesNoConfig(values: OptionValues, positionals: string[]): boolean {
  const configFlags = ['preset', 'config', 'data', 'images', 'val-data', 'val-images', 'val-fraction', 'epochs', 'steps', 'init-from'];
  return positionals.length === 0 && configFlags.every((f) => values[f] === undefined);
}

export async function trainCommand(values: OptionValues, positionals: string[]): Promise<number> {
  const preset = choiceOption(values, 'preset', Object.keys(PRESETS) as PresetName[]);
  const data: Record<string, string> = {};
  for (const [flag, key] of [
    ['data', 'train'],
    ['images', 'images'],
    ['val-data', 'val'],
    ['val-images', 'valImages'],
  ] as const) {
    const v = stringOption(values, flag);
    if (v !== undefined) data[key] = v;
  }
  const valFraction = stringOption(values, 'val-fraction');
  const dataFlags: Record<string, string | number> = { ...data };
  if (valFraction !== undefined) {
    const f = Number(valFraction);
    if (valFraction.trim() === '' || !Number.isFinite(f)) throw new UsageError(`--val-fraction must be a number, got '${valFraction}'`);
    dataFlags.valFraction = f;
  }
  const trainFlags: Record<string, number | string> = {};
  const epochs = integerOption(values, 'epochs');
  const steps = integerOption(values, 'steps');
  if (epochs !== undefined) trainFlags.epochs = epochs;
  if (steps !== undefined) trainFlags.steps = steps;
  const initFrom = stringOption(values, 'init-from');
  if (initFrom !== undefined) trainFlags.initFrom = resolve(initFrom);
  const threads = integerOption(values, 'threads', MAX_THREADS);
  const device = deviceSetting(values);
  const precision = choiceOption(values, 'precision', ['fp32', 'bf16', 'fp16'] as const);
  // A new run's config records it; on --resume it may differ from the saved one, as --device.
  if (precision !== undefined) trainFlags.precision = precision;
  const resume = values.resume === true;
  const out = stringOption(values, 'out')!;
  // With --resume, what the command line says goes over the run's saved config, and the trainer
  // refuses any difference: so `train --out RUN --resume` alone is the whole command.
  const saved = resume && existsSync(join(out, 'config.json')) ? readConfigFile(join(out, 'config.json')) : undefined;
  // The run's own plug-ins first: resuming with its saved config validates their sections.
  if (Array.isArray(saved?.plugins)) await importPlugins(saved.plugins as string[], join(out, 'config.json'));
  const plugins = listOption(values, 'plugin');
  const config =
    resume && namesNoConfig(values, positionals) && plugins.length === 0
      ? undefined
      : await resolveConfigWithPlugins({
          base: saved,
          preset,
          file: stringOption(values, 'config'),
          flags: { data: dataFlags, train: trainFlags } as ConfigInput,
          overrides: positionals,
          plugins,
        });

  // Data-parallel: --nproc starts the workers (this process trains nothing), each of which, like
  // a process torchrun starts, finds its rank in the environment and joins the job.
  const nproc = integerOption(values, 'nproc');
  const timeoutSeconds = integerOption(values, 'dist-timeout');
  let launch;
  try {
    launch = launchEnvironment();
  } catch (err) {
    if (err instanceof LaunchEnvironmentError) throw new UsageError(`data-parallel training: ${err.message}`);
    throw err;
  }
  if (nproc !== undefined && launch === undefined) {
    const args = [process.argv[1]!, ...withoutOption(process.argv.slice(2), 'nproc')];
    if (threads === undefined) args.push('--threads', String(threadsPerProcess(nproc)));
    return launchLocal({ nproc, args });
  }
  const groups =
    launch !== undefined && launch.worldSize > 1
      ? joinTraining(launch, { timeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000 })
      : undefined;
  // Only rank 0 speaks: the others' progress and messages would repeat it.
  const speaks = groups === undefined || groups.rank === 0;
  const quiet = values.quiet === true || !speaks;
  const bar = new ProgressBar();
  const say = (message: string): void => {
    if (!speaks) return;
    bar.finish();
    process.stderr.write(`${message}\n`);
  };
  if (groups) say(`data-parallel training: ${groups.worldSize} processes, global batch split ${groups.worldSize} ways`);
  const stop = watchStopSignals(say);
  try {
    const result = await train({
      config,
      out,
      resume,
      force: values.force === true,
      threads: threads ?? (launch?.localWorldSize === undefined ? undefined : threadsPerProcess(launch.localWorldSize)),
      // Gloo's collectives are on the CPU: a data-parallel run trains there unless told otherwise.
      device: device ?? (groups ? 'cpu' : undefined),
      precision,
      stopAfter: integerOption(values, 'stop-after'),
      shouldStop: () => stop.signal !== undefined,
      onStep: quiet ? undefined : (record, progress) => bar.update(record, progress),
      onMessage: say,
      distributed: groups,
    });
    bar.finish();
    const status = result.finished ? 'finished' : `stopped at step ${result.step} of ${result.totalSteps} (continue with --resume)`;
    if (speaks) process.stderr.write(`${status}; checkpoint ${result.checkpoint}\n`);
    return stop.signal === undefined ? 0 : signalExitCode(stop.signal);
  } finally {
    bar.finish();
    stop.dispose();
    groups?.destroy();
  }
}

/** argv without `--name VALUE` and `--name=VALUE`. */
function withoutOption(argv: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) i++;
    else if (!argv[i]!.startsWith(`--${name}=`)) out.push(argv[i]!);
  }
  return out;
}
