#!/usr/bin/env node
// The byol-align command: a thin shell over the library's train and evaluate. Errors print one
// clear message (no stack) and exit non-zero; usage errors exit 2.
import { parseArgs } from 'node:util';
import { resolveConfig, ConfigError } from '../config/load.js';
import { PRESETS, type PresetName } from '../config/presets.js';
import type { ConfigInput } from '../config/schema.js';
import { train } from '../run/train_run.js';
import { loadModel } from '../run/model_setup.js';
import { evaluatePaired } from '../run/evaluate_run.js';
import { loadDataSource } from '../data/source.js';
import { setNumThreads } from '../engine/index.js';
import type { RetrievalSpace } from '../align/evaluate.js';
import { ProgressBar } from './progress.js';
import { embedInputs, readEmbedInputs } from '../run/embed_run.js';
import { jsonlText, writeEmbeddings } from '../run/embedding_files.js';
import { exportModel } from '../run/export_run.js';
import { buildReport } from '../report/report.js';

const HELP = `byol-align: BYOL-based heterogeneous representation alignment (images, text, vectors)

Usage:
  byol-align train [--preset NAME] [--config FILE] [--data SPEC --images DIR] [--val-data SPEC]
                   [--epochs N | --steps N] [--out RUN_DIR] [--resume] [--stop-after N] [key.path=value ...]
  byol-align eval --checkpoint CKPT --data SPEC [--images DIR] [--space S] [--json]
  byol-align embed --checkpoint CKPT --modality image|text|vector --input FILE|DIR [--out FILE]
  byol-align export --checkpoint CKPT --out DIR [--check-data SPEC --images DIR]
  byol-align report --run RUN_DIR [--data SPEC --images DIR]
  byol-align help [COMMAND]

Data SPEC: coco:ANNOTATIONS.json (with --images DIR), karpathy:dataset_coco.json[#split] (with
--images ROOT), jsonl:MANIFEST.jsonl (lines with any of "image", "text", "vector").

train options:
  --preset NAME       start from a preset: ${Object.keys(PRESETS).join(', ')}
  --config FILE       a YAML or JSON config over the preset (docs/config.md lists every key)
  --data SPEC         training data (data.train)         --images DIR      its image folder
  --val-data SPEC     validated after every epoch        --val-images DIR  its image folder
  --epochs N, --steps N   training length (train.epochs / train.steps)
  --out RUN_DIR       run directory (default runs/run): config.json, metrics.jsonl, checkpoints/
  --resume            continue from RUN_DIR's newest good checkpoint, exactly
  --stop-after N      end after N more steps with a checkpoint (the schedules stay the full run's)
  --threads N         libtorch threads (default: every core)
  key.path=value      override any config key, e.g. train.batchSize=128 loss.objective=byol
  SIGINT or SIGTERM writes a checkpoint after the current step, then exits.

eval options:
  --checkpoint CKPT   a checkpoint file, or a run directory (its newest good checkpoint)
  --data SPEC         the data to evaluate on              --images DIR  its image folder
  --space S           projection (default), pairing or encoder (docs/align.md)
  --json              one JSON object on stdout: {"i2t":{"r1","r5","r10","medr","meanr"},"t2i":{...},"n_images","n_captions"}

embed options:
  --checkpoint CKPT   a checkpoint file or a run directory
  --modality M        image (a folder of images, or one image), text (.txt, one per line, or .jsonl
                      with "id" and "text"), vector (.jsonl with "id" and "vector")
  --input FILE|DIR    what to embed
  --out FILE          .jsonl ({"id","embedding"} per line; default: stdout), .npy (+ FILE.ids.txt)
                      or .safetensors; embeddings are the l2-normalised projections (the shared space)

export options:
  --out DIR           writes model.safetensors (online network, PyTorch names), config.json,
                      tokenizer.json and check.safetensors (sample inputs and their projections);
                      python3 scripts/load_export.py DIR rebuilds it in PyTorch and checks the outputs
  --check-data SPEC   where the sample inputs come from (default: the training data in the config)

report options:
  --run RUN_DIR       writes RUN_DIR/report.html (self-contained) and RUN_DIR/figures/*.png: loss
                      terms, lr, τ, collapse monitor, Recall@K per epoch, a UMAP of held-out pairs,
                      retrieval examples
  --data SPEC         held-out data for the map and examples (default: the run's validation data)
`;

class UsageError extends Error {}

function integer(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

async function trainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      preset: { type: 'string' },
      config: { type: 'string' },
      data: { type: 'string' },
      images: { type: 'string' },
      'val-data': { type: 'string' },
      'val-images': { type: 'string' },
      epochs: { type: 'string' },
      steps: { type: 'string' },
      out: { type: 'string', default: 'runs/run' },
      resume: { type: 'boolean', default: false },
      'stop-after': { type: 'string' },
      threads: { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  if (values.preset !== undefined && !(values.preset in PRESETS))
    throw new UsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${values.preset}'`);
  const data: Record<string, string> = {};
  if (values.data !== undefined) data.train = values.data;
  if (values.images !== undefined) data.images = values.images;
  if (values['val-data'] !== undefined) data.val = values['val-data'];
  if (values['val-images'] !== undefined) data.valImages = values['val-images'];
  const trainFlags: Record<string, number> = {};
  const epochs = integer(values.epochs, '--epochs');
  const steps = integer(values.steps, '--steps');
  if (epochs !== undefined) trainFlags.epochs = epochs;
  if (steps !== undefined) trainFlags.steps = steps;
  const threads = integer(values.threads, '--threads');
  if (threads !== undefined) trainFlags.threads = threads;
  const config = resolveConfig({
    preset: values.preset as PresetName | undefined,
    file: values.config,
    flags: { data, train: trainFlags } as ConfigInput,
    overrides: positionals,
  });
  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal !== undefined) process.exit(signal === 'SIGINT' ? 130 : 143); // a second signal: stop now
    stopSignal = signal;
    process.stderr.write(`\n${signal}: stopping after this step with a checkpoint (send it again to stop at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const bar = new ProgressBar();
  const result = await train({
    config,
    out: values.out,
    resume: values.resume,
    stopAfter: integer(values['stop-after'], '--stop-after'),
    shouldStop: () => stopSignal !== undefined,
    onStep: values.quiet ? undefined : (record, progress) => bar.update(record, progress),
    onMessage: (message) => {
      bar.finish();
      process.stderr.write(`${message}\n`);
    },
  });
  bar.finish();
  const status = result.finished ? 'finished' : `stopped at step ${result.step} of ${result.totalSteps} (continue with --resume)`;
  process.stderr.write(`${status}; checkpoint ${result.checkpoint}\n`);
  if (stopSignal !== undefined) return stopSignal === 'SIGINT' ? 130 : 143;
  return 0;
}

async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' },
      data: { type: 'string' },
      images: { type: 'string' },
      space: { type: 'string', default: 'projection' },
      json: { type: 'boolean', default: false },
      threads: { type: 'string' },
    },
  });
  if (values.checkpoint === undefined) throw new UsageError('eval needs --checkpoint CKPT (a checkpoint file or a run directory)');
  if (values.data === undefined) throw new UsageError('eval needs --data SPEC, e.g. --data coco:captions_test.json --images images/');
  if (!['projection', 'pairing', 'encoder'].includes(values.space))
    throw new UsageError(`--space must be projection, pairing or encoder, got '${values.space}'`);
  const threads = integer(values.threads, '--threads');
  if (threads !== undefined) setNumThreads(threads);
  const { config, modalities, model, checkpoint } = loadModel(values.checkpoint, (m) =>
    process.stderr.write(`skipping a broken checkpoint: ${m}\n`),
  );
  const dataset = loadDataSource(values.data, { images: values.images, defaultSplit: 'test', onBadRecord: config.data.onBadRecord });
  const { metrics, chance } = await evaluatePaired(model, modalities, dataset, {
    size: config.image.size,
    channels: config.image.channels,
    fit: config.image.fit,
    space: values.space as RetrievalSpace,
  });
  const direction = (d: typeof metrics.i2t): Record<string, number> => ({ r1: d.r1, r5: d.r5, r10: d.r10, medr: d.medr, meanr: d.meanr });
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ i2t: direction(metrics.i2t), t2i: direction(metrics.t2i), n_images: metrics.nImages, n_captions: metrics.nCaptions })}\n`,
    );
    return 0;
  }
  const f = (x: number): string => x.toFixed(2).padStart(6);
  const row = (name: string, d: typeof metrics.i2t): string =>
    `${name}  ${f(d.r1)} ${f(d.r5)} ${f(d.r10)}  medr ${d.medr}  meanr ${d.meanr.toFixed(1)}`;
  process.stdout.write(
    [
      `${checkpoint.file} on ${values.data}: ${metrics.nImages} images, ${metrics.nCaptions} captions (${values.space} space)`,
      '               R@1    R@5   R@10',
      row('image→text', metrics.i2t),
      row('text→image', metrics.t2i),
      `rsum ${metrics.rsum.toFixed(2)} (chance ${chance.rsum.toFixed(2)})`,
      '',
    ].join('\n'),
  );
  return 0;
}

async function embedCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' },
      modality: { type: 'string' },
      input: { type: 'string' },
      out: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  if (values.checkpoint === undefined) throw new UsageError('embed needs --checkpoint CKPT (a checkpoint file or a run directory)');
  if (values.modality === undefined) throw new UsageError('embed needs --modality image|text|vector');
  if (values.input === undefined) throw new UsageError('embed needs --input FILE|DIR');
  if (values.out !== undefined && !/\.(jsonl|npy|safetensors)$/i.test(values.out))
    throw new UsageError(`--out must end in .jsonl, .npy or .safetensors, got '${values.out}'`);
  const threads = integer(values.threads, '--threads');
  if (threads !== undefined) setNumThreads(threads);
  const loaded = loadModel(values.checkpoint, (m) => process.stderr.write(`skipping a broken checkpoint: ${m}\n`));
  const inputs = readEmbedInputs(values.modality, values.input);
  const { ids, embeddings } = await embedInputs(loaded, values.modality, inputs);
  if (values.out === undefined) process.stdout.write(jsonlText(ids, embeddings));
  else {
    writeEmbeddings(values.out, ids, embeddings);
    process.stderr.write(`wrote ${ids.length} ${values.modality} embeddings of width ${embeddings.shape[1]} to ${values.out}\n`);
  }
  await Promise.all(loaded.modalities.map((m) => (m as { close?: () => Promise<void> }).close?.()));
  return 0;
}

async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { checkpoint: { type: 'string' }, out: { type: 'string' }, 'check-data': { type: 'string' }, images: { type: 'string' } },
  });
  if (values.checkpoint === undefined) throw new UsageError('export needs --checkpoint CKPT (a checkpoint file or a run directory)');
  if (values.out === undefined) throw new UsageError('export needs --out DIR');
  const loaded = loadModel(values.checkpoint, (m) => process.stderr.write(`skipping a broken checkpoint: ${m}\n`));
  const spec = values['check-data'] ?? loaded.config.data.train;
  if (spec === undefined) throw new UsageError('export needs --check-data SPEC: the checkpoint names no training data');
  const dataset = loadDataSource(spec, { images: values.images ?? loaded.config.data.images, defaultSplit: 'test', onBadRecord: 'skip' });
  // A few items of each modality, as the check of the export.
  const sample = dataset.items.slice(0, 8);
  const check = {
    image: sample.flatMap((i) => (i.image === undefined ? [] : [i.image])),
    text: sample.flatMap((i) => i.captions.slice(0, 1)),
    vector: sample.flatMap((i) => (i.extra?.vector === undefined ? [] : [i.extra.vector])),
  };
  await exportModel(loaded, values.out, check);
  await Promise.all(loaded.modalities.map((m) => (m as { close?: () => Promise<void> }).close?.()));
  process.stderr.write(
    `exported ${loaded.checkpoint.file} to ${values.out}; check it with: python3 scripts/load_export.py ${values.out}\n`,
  );
  return 0;
}

async function reportCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { run: { type: 'string' }, data: { type: 'string' }, images: { type: 'string' } } });
  if (values.run === undefined) throw new UsageError('report needs --run RUN_DIR');
  const { html, figures } = await buildReport({
    run: values.run,
    data: values.data,
    images: values.images,
    onMessage: (m) => process.stderr.write(`${m}\n`),
  });
  process.stderr.write(`wrote ${html} and ${figures.length} figures in ${values.run}/figures\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h' || rest.includes('--help')) {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === 'train') return trainCommand(rest);
  if (command === 'eval') return evalCommand(rest);
  if (command === 'embed') return embedCommand(rest);
  if (command === 'export') return exportCommand(rest);
  if (command === 'report') return reportCommand(rest);
  throw new UsageError(`unknown command '${command}'; commands: train, eval, embed, export, report, help`);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(
    `byol-align: ${err instanceof ConfigError ? 'config error:\n' : ''}${message}\n${usage ? "run 'byol-align help' for usage\n" : ''}`,
  );
  process.exitCode = usage ? 2 : 1;
}
