#!/usr/bin/env node
// The byol-align command: a thin shell over the library. Each command's options are one table
// (src/cli/options.ts) that parses the arguments and writes its help. Errors print one message
// (no stack). Exit codes: 0 done, 1 a failed run, 2 a usage or config error, 130/143 stopped by
// SIGINT/SIGTERM.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/load.js';
import { cuda, libtorchVersion } from '../engine/index.js';
import { commandHelp, parseCommand, UsageError, type CommandSpec, type OptionValues } from './options.js';
import { trainCommand, trainSpec } from './train_command.js';
import { evalCommand, evalSpec } from './eval_command.js';
import { embedCommand, embedSpec } from './embed_command.js';
import { exportCommand, exportSpec } from './export_command.js';
import { reportCommand, reportSpec } from './report_command.js';
import { indexCommand, indexSpec } from './index_command.js';
import { searchCommand, searchSpec } from './search_command.js';
import { serveCommand, serveSpec } from './serve_command.js';
import { completionScript } from './completion.js';

type Run = (values: OptionValues, positionals: string[]) => Promise<number>;

const COMMANDS: readonly { spec: CommandSpec; run: Run }[] = [
  { spec: trainSpec, run: trainCommand },
  { spec: evalSpec, run: evalCommand },
  { spec: embedSpec, run: embedCommand },
  { spec: exportSpec, run: exportCommand },
  { spec: reportSpec, run: reportCommand },
  { spec: indexSpec, run: indexCommand },
  { spec: searchSpec, run: searchCommand },
  { spec: serveSpec, run: serveCommand },
];

function packageVersion(): string {
  // dist/src/cli/main.js → the package root holds package.json.
  const file = fileURLToPath(new URL('../../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function versionText(): string {
  const gpus = cuda.deviceCount();
  return `byol-align ${packageVersion()}\nlibtorch ${libtorchVersion}, CUDA ${gpus > 0 ? `available (${gpus} device${gpus > 1 ? 's' : ''})` : 'not available'}\n`;
}

function overview(): string {
  const width = 'completion'.length + 2;
  return [
    'byol-align: BYOL-based heterogeneous representation alignment (images, text, vectors)',
    '',
    'Usage: byol-align COMMAND [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`),
    `  ${'help'.padEnd(width)}byol-align help COMMAND prints that command's options`,
    `  ${'completion'.padEnd(width)}byol-align completion bash|zsh prints a shell completion script`,
    '',
    'Options: -h, --help (this text), -V, --version (the version, libtorch and CUDA)',
    '',
    'Data SPEC: coco:ANNOTATIONS.json (with --images DIR), karpathy:dataset_coco.json[#split] (with',
    '--images ROOT), jsonl:MANIFEST.jsonl (lines with any of "image", "text", "vector").',
    'Exit codes: 0 done, 1 failed, 2 usage or config error, 130/143 stopped by SIGINT/SIGTERM.',
    'Docs: docs/cli.md (getting started), docs/config.md (every config key).',
    '',
  ].join('\n');
}

function findCommand(name: string): { spec: CommandSpec; run: Run } {
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (command === undefined)
    throw new UsageError(`unknown command '${name}'; commands: ${COMMANDS.map((c) => c.spec.name).join(', ')}, help, completion`);
  return command;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(overview());
    return 2;
  }
  if (name === '--help' || name === '-h') {
    process.stdout.write(overview());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(versionText());
    return 0;
  }
  if (name === 'help') {
    if (rest.length > 1) throw new UsageError('help takes one command name');
    process.stdout.write(rest[0] === undefined ? overview() : commandHelp(findCommand(rest[0]).spec));
    return 0;
  }
  if (name === 'completion') {
    const shell = rest[0];
    if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`completion needs bash or zsh, got '${shell ?? ''}'`);
    process.stdout.write(
      completionScript(
        shell,
        COMMANDS.map((c) => c.spec),
      ),
    );
    return 0;
  }
  const command = findCommand(name);
  const { values, positionals } = parseCommand(command.spec, rest);
  if (values.help === true) {
    process.stdout.write(commandHelp(command.spec));
    return 0;
  }
  return command.run(values, positionals);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const usage = err instanceof UsageError || err instanceof ConfigError;
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    err instanceof UsageError
      ? `run 'byol-align help${process.argv[2] && !process.argv[2].startsWith('-') ? ` ${process.argv[2]}` : ''}' for usage\n`
      : '';
  process.stderr.write(`byol-align: ${err instanceof ConfigError ? 'config error:\n' : ''}${message}\n${hint}`);
  process.exitCode = usage ? 2 : 1;
}
