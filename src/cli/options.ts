// The command's option definitions: one table per command that both parses the arguments
// (node:util parseArgs) and writes that command's help, so no flag can go undocumented and help
// cannot drift from what is accepted.
import { parseArgs } from 'node:util';
import { DEVICE_SETTING } from '../config/schema.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One-letter alias, e.g. 'o' for -o. */
  short?: string;
  /** The value's placeholder in help, e.g. 'DIR' (string options). */
  value?: string;
  help: string;
  default?: string | boolean;
  /** May be given more than once (string options); the values come as a list. */
  multiple?: boolean;
}

export interface CommandSpec {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** What follows the options in the usage line, e.g. '[key.path=value ...]'. */
  positionals?: string;
  options: Record<string, OptionSpec>;
  /** Paragraphs after the option list. */
  notes?: string;
}

/** A usage mistake: unknown flag, missing or malformed value. Exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** The options every command takes. */
export const HELP_OPTION: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', help: "print this command's help" },
};

/** Parses `argv` against `spec`; positionals only where the spec names them. */
export function parseCommand(spec: CommandSpec, argv: string[]): { values: OptionValues; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries({ ...spec.options, ...HELP_OPTION }).map(([name, o]) => [
      name,
      {
        type: o.type,
        ...(o.short === undefined ? {} : { short: o.short }),
        ...(o.default === undefined ? {} : { default: o.default }),
        ...(o.multiple === true ? { multiple: true } : {}),
      },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: spec.positionals !== undefined, strict: true });
    return { values: values as OptionValues, positionals };
  } catch (err) {
    throw new UsageError(`${spec.name}: ${(err as Error).message}`);
  }
}

/** A string option's value, or undefined. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string option's values, [] when not given. */
export function listOption(values: OptionValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/**
 * `--plugin MODULE`, on every command that reads a config or a run: a module that registers
 * modalities, imported before the config is validated (docs/modalities.md).
 */
export const pluginOption: OptionSpec = {
  type: 'string',
  value: 'MODULE',
  multiple: true,
  help: 'import a module that registers modalities first (a path relative to here, or a package); repeatable',
};

/**
 * `--device DEVICE`, on every command that runs a trained model: auto (CUDA when the linked
 * libtorch has a GPU), cpu, cuda or cuda:N, whatever device trained it. src/run/device.ts resolves
 * it; a GPU that is not there is a ConfigError naming the libtorch (exit code 2). `train` has its
 * own (trainDeviceOption), whose default is the run's train.device.
 */
export const deviceOption: OptionSpec = {
  type: 'string',
  value: 'DEVICE',
  help: 'where the model runs: auto (CUDA when this libtorch has a GPU, else the CPU), cpu, cuda or cuda:N',
  default: 'auto',
};

/** `--exact`, on `search` and `serve`: the in-memory search's float32 products alone (src/index/memory.ts). */
export const exactOption: OptionSpec = {
  type: 'boolean',
  help: 'search the rows in memory with float32 products alone (default: on a CPU with bfloat16 arithmetic, a bfloat16 first pass whose best candidates are rescored in float32)',
};

/** `--bf16-queries`, on `search` and `serve`: a search's queries embedded under bfloat16 autocast (OpenIndexOptions.bf16Queries). */
export const bf16QueriesOption: OptionSpec = {
  type: 'boolean',
  help: 'embed the queries under bfloat16 autocast: on a CPU with bfloat16 arithmetic a third less time for the text tower, scores within about 1e-3 of float32 (slower where the CPU emulates bfloat16; not with --exact)',
};

/** `--exact` and `--bf16-queries` as SearchIndex.open takes them; both at once are refused. */
export function precisionOptions(values: OptionValues): { exact: boolean; bf16Queries: boolean } {
  const exact = values.exact === true;
  const bf16Queries = values['bf16-queries'] === true;
  if (exact && bf16Queries) throw new UsageError('--exact searches in float32 alone; it cannot be given with --bf16-queries');
  return { exact, bf16Queries };
}

/** `--device`'s value, checked for its form (auto, cpu, cuda, cuda:N); undefined when not given. */
export function deviceSetting(values: OptionValues): string | undefined {
  const v = stringOption(values, 'device');
  if (v !== undefined && !DEVICE_SETTING.test(v)) throw new UsageError(`--device must be auto, cpu, cuda or cuda:N, got '${v}'`);
  return v;
}

/** A string option that must be given. */
export function requiredOption(values: OptionValues, spec: CommandSpec, name: string): string {
  const v = stringOption(values, name);
  if (v === undefined) {
    const o = spec.options[name]!;
    throw new UsageError(`${spec.name} needs --${name} ${o.value ?? 'VALUE'} (${o.help})`);
  }
  return v;
}

/** A positive integer option, at most `max`, or undefined. */
export function integerOption(values: OptionValues, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = stringOption(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got '${v}'`);
  if (n > max) throw new UsageError(`--${name} must be at most ${max}, got ${n}`);
  return n;
}

/** One of `allowed`, or undefined. */
export function choiceOption<T extends string>(values: OptionValues, name: string, allowed: readonly T[]): T | undefined {
  const v = stringOption(values, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

function flagText(name: string, o: OptionSpec): string {
  const long = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}${o.multiple === true ? ' ...' : ''}`;
  return o.short === undefined ? `    ${long}` : `-${o.short}, ${long}`;
}

/** The usage line of a command. */
export function usageLine(spec: CommandSpec): string {
  return `byol-align ${spec.name} [options]${spec.positionals === undefined ? '' : ` ${spec.positionals}`}`;
}

/** One command's help: usage, summary, every option with its help and default, notes. */
export function commandHelp(spec: CommandSpec): string {
  const all = { ...spec.options, ...HELP_OPTION };
  const flags = Object.entries(all).map(([name, o]) => [flagText(name, o), o] as const);
  const width = Math.max(...flags.map(([f]) => f.length)) + 2;
  const lines = flags.map(([f, o]) => {
    const fallback = o.default === undefined || o.type === 'boolean' ? '' : ` (default: ${String(o.default)})`;
    return `  ${f.padEnd(width)}${o.help}${fallback}`;
  });
  return [`Usage: ${usageLine(spec)}`, '', spec.summary, '', 'Options:', ...lines, ...(spec.notes ? ['', spec.notes] : []), ''].join('\n');
}
