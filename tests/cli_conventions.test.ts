// The command's conventions: version and help generated from the option tables, exit codes, one
// step/epoch numbering, resume from the run's saved config from any folder, files that are never
// overwritten without --force, torn metrics lines, and signals relayed twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CLI, cli, TINY, trainAndSignal, useCliFixture } from './cli_fixture.js';
import { listCheckpoints, loadCheckpoint } from '../src/run/checkpoint.js';
import { libtorchVersion } from '../src/engine/index.js';
import { trainSpec } from '../src/cli/train_command.js';
import { evalSpec } from '../src/cli/eval_command.js';
import { embedSpec } from '../src/cli/embed_command.js';
import { exportSpec } from '../src/cli/export_command.js';
import { reportSpec } from '../src/cli/report_command.js';
import { MAX_THREADS } from '../src/config/schema.js';

const { dir, images, annotations, data, trainedRun } = useCliFixture();
const SPECS = [trainSpec, evalSpec, embedSpec, exportSpec, reportSpec];

/** The command run from another working directory. */
function cliIn(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [resolve(CLI), ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const metricsLines = (run: string): { step?: number; epoch: number; space?: string }[] =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('--version and -V print the package version, the libtorch version and whether CUDA is available', () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = cli(flag);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `byol-align ${version}\nlibtorch ${libtorchVersion}, CUDA not available\n`);
  }
});

test('help COMMAND prints that command only, with every option its parser accepts; no arguments prints help on stderr, exit 2', () => {
  for (const spec of SPECS) {
    const viaHelp = cli('help', spec.name);
    assert.equal(viaHelp.status, 0);
    assert.ok(viaHelp.stdout.startsWith(`Usage: byol-align ${spec.name} [options]`), viaHelp.stdout);
    for (const other of SPECS.filter((s) => s !== spec)) assert.doesNotMatch(viaHelp.stdout, new RegExp(`byol-align ${other.name} `));
    for (const [name, option] of Object.entries(spec.options)) {
      assert.match(viaHelp.stdout, new RegExp(`--${name}\\b`), `${spec.name} --${name} is in its help`);
      if (option.short !== undefined) assert.match(viaHelp.stdout, new RegExp(`-${option.short}, --${name}`));
    }
    assert.equal(cli(spec.name, '--help').stdout, viaHelp.stdout);
    assert.equal(cli(spec.name, '-h').stdout, viaHelp.stdout);
  }
  // Every flag named in a command's help is accepted by its parser (an unknown one is refused with 2).
  const helpFlags = [...cli('help', 'eval').stdout.matchAll(/--([a-z-]+)/g)].map((m) => m[1]);
  assert.deepEqual(helpFlags.sort(), [...Object.keys(evalSpec.options), 'help'].sort());
  const none = cli();
  assert.equal(none.status, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /Usage: byol-align COMMAND/);
  const top = cli('--help');
  assert.equal(top.status, 0);
  assert.equal(top.stdout, none.stderr);
  const unknown = cli('help', 'frobnicate');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
});

test('the completion script offers every command and each command’s flags, and is valid bash', () => {
  const r = cli('completion', 'bash');
  assert.equal(r.status, 0);
  for (const spec of SPECS) {
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith(`${spec.name})`));
    assert.ok(line, spec.name);
    for (const name of Object.keys(spec.options)) assert.match(line, new RegExp(`--${name}\\b`));
  }
  const syntax = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' });
  assert.equal(syntax.status, 0, syntax.stderr);
  assert.equal(cli('completion', 'fish').status, 2);
});

test('exit codes: 2 for usage and config errors, 1 for a failed run', () => {
  const cases: [string[], number, RegExp][] = [
    [['train', '--bogus'], 2, /Unknown option '--bogus'/],
    [['train', '--threads', String(MAX_THREADS + 1)], 2, new RegExp(`--threads must be at most ${MAX_THREADS}`)],
    [['train', ...data, `train.threads=1000000000`], 2, /train\.threads/],
    [['train', ...data, 'train.steps=3', 'train.epochs=2'], 2, /give train\.epochs or train\.steps, not both/],
    [['eval', '--data', 'coco:x.json'], 2, /eval needs --checkpoint CKPT/],
    [['eval', '--checkpoint', join(dir, 'nowhere'), '--data', 'coco:x.json'], 1, /nowhere: no such checkpoint/],
    [
      ['embed', '--checkpoint', 'x', '--modality', 'image', '--input', 'x', '--space', 'pairing'],
      2,
      /--space must be one of projection, encoder/,
    ],
  ];
  for (const [args, code, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('steps and epochs count from 1 in metrics, checkpoints and the progress lines; validation records the best space', () => {
  const out = join(dir, 'numbering');
  const r = cli('train', ...data, '--val-data', `coco:${annotations}`, '--steps', '6', '--out', out, ...TINY);
  assert.equal(r.status, 0, r.stderr);
  const lines = metricsLines(out);
  const steps = lines.filter((l) => l.step !== undefined);
  assert.deepEqual(
    steps.map((l) => [l.step, l.epoch]),
    [
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 2],
      [5, 2],
      [6, 2],
    ],
  );
  const val = lines.filter((l) => l.step === undefined) as {
    epoch: number;
    space: string;
    val: { rsum: number };
    rsumBySpace: Record<string, number>;
  }[];
  assert.deepEqual(
    val.map((l) => l.epoch),
    [1, 2],
  );
  for (const l of val) assert.equal(l.val.rsum, l.rsumBySpace[l.space]);
  assert.equal(val[1]!.space, val[1]!.rsumBySpace.encoder! >= val[1]!.rsumBySpace.projection! ? 'encoder' : 'projection');
  assert.equal(loadCheckpoint(join(out, 'checkpoints', 'step-000000006.safetensors')).retrievalSpace, val[1]!.space);
  // stderr is a pipe here: a plain progress line from the very first step on.
  assert.match(r.stderr, /epoch 1\/2 step 1\/6 loss/);
  assert.match(r.stderr, /epoch 2\/2 step 6\/6 loss/);
  assert.match(r.stderr, /epoch 1 validation: rsum [\d.]+ in the (encoder|projection) space/);
});

test('with separate heads and encoders of different widths, validation and eval use the projection space', () => {
  const out = join(dir, 'separate-heads');
  const r = cli('train', ...data, '--val-data', `coco:${annotations}`, '--steps', '3', '--out', out, ...TINY, 'model.sharedHeads=false');
  assert.equal(r.status, 0, r.stderr);
  const [val] = metricsLines(out).filter((l) => l.step === undefined) as unknown as {
    space: string;
    rsumBySpace: Record<string, number>;
  }[];
  assert.equal(val!.space, 'projection');
  assert.deepEqual(Object.keys(val!.rsumBySpace), ['projection']);
  const e = cli('eval', '--checkpoint', out, '--data', `coco:${annotations}`, '--images', images, '--json');
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).space, 'projection');
});

test('--val-fraction validates on training concepts held out of training', () => {
  const out = join(dir, 'val-fraction');
  const r = cli('train', ...data, '--val-fraction', '0.25', '--steps', '2', '--out', out, ...TINY, 'train.batchSize=4');
  assert.equal(r.status, 0, r.stderr);
  const held = /validation: (\d+) items of 0\.25 of the training concepts/.exec(r.stderr);
  assert.ok(held, r.stderr);
  assert.ok(Number(held[1]) > 0 && Number(held[1]) < 24);
  const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { data: { valFraction: number } };
  assert.equal(saved.data.valFraction, 0.25);
  assert.equal(cli('train', ...data, '--val-fraction', 'half', '--out', join(dir, 'vf2')).status, 2);
  assert.equal(cli('train', ...data, '--val-fraction', '0.9', '--out', join(dir, 'vf3')).status, 2);
});

test('--resume alone continues a run with its saved config, from any folder; eval and export work from any folder', () => {
  const out = join(dir, 'resume-alone');
  // Relative data paths, from the fixture's folder.
  const relative = ['--data', `coco:${basename(annotations)}`, '--images', basename(images)];
  const first = cliIn(dir, 'train', ...relative, '--steps', '6', '--stop-after', '3', '--out', out, ...TINY);
  assert.equal(first.status, 0, first.stderr);
  const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { data: { train: string; images: string } };
  assert.equal(saved.data.train, `coco:${annotations}`);
  assert.equal(saved.data.images, images);
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  const second = cliIn(elsewhere, 'train', '--out', out, '--resume', '--threads', '1');
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, /resuming .*step-000000003\.safetensors at step 3 of 6/);
  assert.match(second.stderr, /finished; checkpoint .*step-000000006/);
  const e = cliIn(elsewhere, 'eval', '--checkpoint', out, '--data', `coco:${annotations}`, '--images', images, '--json');
  assert.equal(e.status, 0, e.stderr);
  // export needs no data: its self-check uses the samples the run saved.
  const x = cliIn(elsewhere, 'export', '--checkpoint', out, '--out', 'export');
  assert.equal(x.status, 0, x.stderr);
  assert.ok(existsSync(join(elsewhere, 'export', 'check.safetensors')), x.stderr);
  // Flags given with --resume must match the saved config.
  const other = cli('train', '--out', out, '--resume', 'model.tauBase=0.5');
  assert.equal(other.status, 1);
  assert.match(other.stderr, /its config differs in model\.tauBase/);
  // --resume with the same flags as the first run, given relative to another folder, matches.
  const same = cliIn(dir, 'train', ...relative, '--steps', '6', '--out', out, '--resume', ...TINY);
  assert.equal(same.status, 0, same.stderr);
});

test('train refuses a non-empty folder that is not a run unless --force, and overwrites nothing of it', () => {
  const out = join(dir, 'users-folder');
  mkdirSync(out);
  writeFileSync(join(out, 'config.json'), '{"mine": true}\n');
  const r = cli('train', ...data, '--steps', '2', '--out', out, ...TINY);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is not empty and is not a byol-align run .*--force/);
  assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), '{"mine": true}\n');
  assert.deepEqual(readdirSync(out), ['config.json']);
  const forced = cli('train', ...data, '--steps', '2', '--out', out, '--force', ...TINY);
  assert.equal(forced.status, 0, forced.stderr);
  assert.ok(existsSync(join(out, 'byol-align-run.json')));
  // A run folder is recognised by its marker: --resume needs no --force.
  assert.equal(cli('train', '--out', out, '--resume', '--threads', '1').status, 0);
});

test('data that fails while starting leaves no run files', () => {
  const badImages = join(dir, 'bad-images');
  mkdirSync(badImages);
  // Every image truncated, so the first batch fails whichever images it draws.
  for (const f of readdirSync(images)) {
    const png = readFileSync(join(images, f));
    writeFileSync(join(badImages, f), png.subarray(0, png.length - 20));
  }
  const out = join(dir, 'bad-start');
  const r = cli(
    'train',
    '--data',
    `coco:${annotations}`,
    '--images',
    badImages,
    '--steps',
    '6',
    '--out',
    out,
    ...TINY,
    'data.onBadRecord=fail',
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /bad-images\/\w+-\w+\.png/);
  assert.equal(existsSync(out), false, `nothing written: ${existsSync(out) ? readdirSync(out).join(', ') : ''}`);
});

test('a torn last metrics line is dropped on --resume with a message; a torn line before the end is an error naming it', () => {
  const out = join(dir, 'torn');
  assert.equal(cli('train', ...data, '--steps', '6', '--stop-after', '3', '--out', out, ...TINY).status, 0);
  const metrics = join(out, 'metrics.jsonl');
  appendFileSync(metrics, '{"step": 4, "epo');
  const r = cli('train', '--out', out, '--resume', '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /metrics\.jsonl:4: dropped a torn last line/);
  assert.deepEqual(
    metricsLines(out).map((l) => l.step),
    [1, 2, 3, 4, 5, 6],
  );
  const out2 = join(dir, 'torn2');
  assert.equal(cli('train', ...data, '--steps', '6', '--stop-after', '3', '--out', out2, ...TINY).status, 0);
  const lines = readFileSync(join(out2, 'metrics.jsonl'), 'utf8').split('\n');
  lines[1] = '{"step": 2, "lo';
  writeFileSync(join(out2, 'metrics.jsonl'), lines.join('\n'));
  const bad = cli('train', '--out', out2, '--resume', '--threads', '1');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /metrics\.jsonl:2: not a JSON line/);
});

test('embed and export never overwrite without --force, and never write into a run’s checkpoints', () => {
  const run = trainedRun();
  const out = join(dir, 'mine.jsonl');
  writeFileSync(out, 'precious\n');
  const embed = (...extra: string[]): ReturnType<typeof cli> =>
    cli('embed', '--checkpoint', run, '--modality', 'text', '--input', join(dir, 'q.txt'), ...extra);
  writeFileSync(join(dir, 'q.txt'), 'a red square\n');
  const refused = embed('--out', out);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /mine\.jsonl exists; pass --force/);
  assert.equal(readFileSync(out, 'utf8'), 'precious\n');
  assert.equal(embed('--out', out, '--force').status, 0);
  assert.match(readFileSync(out, 'utf8'), /"embedding"/);
  const [checkpoint] = listCheckpoints(join(run, 'checkpoints'));
  const before = readFileSync(checkpoint!);
  const intoRun = embed('--out', join(run, 'checkpoints', 'x.safetensors'), '--force');
  assert.equal(intoRun.status, 1);
  assert.match(intoRun.stderr, /inside a run's checkpoints\/ folder/);
  assert.equal(existsSync(join(run, 'checkpoints', 'x.safetensors')), false);
  assert.deepEqual(readFileSync(checkpoint!), before);

  const exportDir = join(dir, 'export-mine');
  mkdirSync(exportDir);
  writeFileSync(join(exportDir, 'config.json'), 'mine');
  const exported = cli('export', '--checkpoint', run, '--out', exportDir);
  assert.equal(exported.status, 1);
  assert.match(exported.stderr, /export-mine is not empty; pass --force/);
  assert.equal(readFileSync(join(exportDir, 'config.json'), 'utf8'), 'mine');
  const intoRunDir = cli('export', '--checkpoint', run, '--out', run, '--force');
  assert.equal(intoRunDir.status, 1);
  assert.match(intoRunDir.stderr, /is a training run/);
});

test('SIGTERM relayed twice within a second (as `timeout` does to a process group) still ends with a checkpoint, exit 143', async () => {
  const out = join(dir, 'sigterm-twice');
  const { code, stderr } = await trainAndSignal(
    out,
    [...data, '--steps', '120', ...TINY, 'train.checkpointEvery=1000'],
    ['SIGTERM', 'SIGTERM'],
  );
  assert.equal(code, 143, stderr);
  const files = listCheckpoints(join(out, 'checkpoints'));
  assert.equal(files.length, 1, stderr);
  assert.match(stderr, /stopped at step \d+ of 120/);
});
