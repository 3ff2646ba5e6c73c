// Turning config files, presets and `key=value` overrides into one validated Config, with errors
// that name the file, the key and what is allowed there.
import { extname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { jsonErrorOffset, lineColumn } from '../data/paired.js';
import { decodeUtf8, InvalidUtf8Error, NotRegularFileError, readRegularFile } from '../data/safe_read.js';
import { configSchema, type Config, type ConfigInput } from './schema.js';
import { PRESETS, type PresetName } from './presets.js';

/** A configuration that cannot be used; the message names where (file, key) and why. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Plain = Record<string, unknown>;
const isPlain = (x: unknown): x is Plain => typeof x === 'object' && x !== null && !Array.isArray(x);

/** b's keys over a's, recursively for nested objects. */
export function deepMerge(a: Plain, b: Plain): Plain {
  const out: Plain = { ...a };
  for (const [key, value] of Object.entries(b))
    out[key] = isPlain(value) && isPlain(out[key]) ? deepMerge(out[key] as Plain, value) : value;
  return out;
}

/** The keys an object schema allows at `path` (for error messages), or [] if it is not an object there. */
function allowedKeys(path: PropertyKey[]): string[] {
  let schema: z.ZodType = configSchema;
  for (const key of path) {
    const shape = objectShape(schema);
    if (!shape || typeof key !== 'string' || !(key in shape)) return [];
    schema = shape[key]!;
  }
  return Object.keys(objectShape(schema) ?? {});
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let s: unknown = schema;
  // Unwrap defaults, optionals and refinements down to the object.
  for (let i = 0; i < 8 && s !== undefined; i++) {
    const def = (s as { def?: { type?: string; innerType?: unknown; in?: unknown; shape?: Record<string, z.ZodType> } }).def;
    if (def?.type === 'object') return def.shape;
    s = def?.innerType ?? def?.in;
  }
  return undefined;
}

/** One line per problem: `source: key.path: message`. */
function describeIssues(error: z.ZodError, source: string): string {
  return error.issues
    .flatMap((issue) => {
      const at = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        const allowed = allowedKeys(issue.path);
        return issue.keys.map(
          (key) =>
            `${source}: unknown key '${at ? `${at}.` : ''}${key}'${allowed.length > 0 ? `; allowed here: ${allowed.join(', ')}` : ''}`,
        );
      }
      return [`${source}: ${at || '(top level)'}: ${issue.message}`];
    })
    .join('\n');
}

/** Validates and fills in defaults; throws a ConfigError naming every bad key. */
export function parseConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(describeIssues(result.error, source));
  return result.data;
}

/**
 * Reads a YAML (.yaml, .yml) or JSON (.json) config file, unvalidated. Every failure is a
 * ConfigError starting with the file (and line): not a regular file, not UTF-8, a syntax error, or
 * a YAML alias bomb (the yaml package refuses one, and any nesting too deep to parse).
 */
export function readConfigFile(file: string): Plain {
  let text: string;
  try {
    text = decodeUtf8(readRegularFile(file));
  } catch (err) {
    if (err instanceof InvalidUtf8Error)
      throw new ConfigError(`${file}:${err.line}:${err.column}: not valid UTF-8; save the config file as UTF-8`);
    const reason = err instanceof NotRegularFileError ? err.kind : ((err as NodeJS.ErrnoException).code ?? String(err));
    throw new ConfigError(`${file}: cannot read the config file (${reason})`);
  }
  const ext = extname(file).toLowerCase();
  let value: unknown;
  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      const { line, column } = lineColumn(text, jsonErrorOffset(text, err));
      throw new ConfigError(`${file}:${line}:${column}: not valid JSON (${err.message.replace(/\s+/g, ' ')})`);
    }
  } else if (ext === '.yaml' || ext === '.yml') {
    try {
      value = parseYaml(text);
    } catch (err) {
      if (err instanceof YAMLParseError) {
        const at = err.linePos?.[0];
        throw new ConfigError(`${file}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML (${err.code})`);
      }
      // e.g. the ReferenceError "Excessive alias count indicates a resource exhaustion attack".
      throw new ConfigError(`${file}: not a usable YAML config (${(err as Error)?.message ?? String(err)})`);
    }
  } else throw new ConfigError(`${file}: a config file must end in .yaml, .yml or .json`);
  if (value === null || value === undefined) return {};
  if (!isPlain(value))
    throw new ConfigError(`${file}: the config must be a mapping of sections (data, image, text, model, loss, optim, train)`);
  return value;
}

/**
 * `key.path=value` → a nested object; the value is read as YAML (so `3`, `false`, `1e-3` and
 * `[1, 2]` have their types) and a string otherwise.
 */
export function parseOverride(override: string): Plain {
  const eq = override.indexOf('=');
  if (eq <= 0) throw new ConfigError(`override '${override}': expected key.path=value, e.g. train.epochs=5`);
  const path = override.slice(0, eq).split('.');
  if (path.some((p) => p === '')) throw new ConfigError(`override '${override}': empty key in '${override.slice(0, eq)}'`);
  const raw = override.slice(eq + 1);
  let value: unknown;
  try {
    value = parseYaml(raw);
  } catch {
    value = raw;
  }
  return path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Plain;
}

export interface ConfigSources {
  /** A config to start from, under everything else (a resumed run's saved config). */
  base?: Plain;
  /** A preset to start from. */
  preset?: PresetName;
  /** A config file over the preset. */
  file?: string;
  /** Sections over the file (the CLI's --data, --epochs, ...). */
  flags?: ConfigInput;
  /** `key.path=value` overrides, last. */
  overrides?: string[];
}

/**
 * The configuration from a preset, a file, flags and overrides, in that order, validated.
 *
 * @example
 * const config = resolveConfig({ preset: 'cpu-small', file: 'run.yaml', overrides: ['train.epochs=5'] });
 */
export function resolveConfig(sources: ConfigSources): Config {
  let merged: Plain = {};
  // A later layer's train.steps replaces an earlier train.epochs and the other way round: they are
  // two ways of giving one length, so a preset's epochs do not clash with --steps.
  const layer = (value: Plain): void => {
    const train = isPlain(value.train) ? value.train : {};
    const before = isPlain(merged.train) ? { ...merged.train } : undefined;
    if (before && 'steps' in train && !('epochs' in train)) delete before.epochs;
    if (before && 'epochs' in train && !('steps' in train)) delete before.steps;
    merged = deepMerge(before ? { ...merged, train: before } : merged, value);
  };
  if (sources.base !== undefined) layer(sources.base);
  if (sources.preset !== undefined) {
    const preset = PRESETS[sources.preset];
    if (!preset) throw new ConfigError(`unknown preset '${sources.preset}'; presets: ${Object.keys(PRESETS).join(', ')}`);
    layer(preset as Plain);
  }
  if (sources.file !== undefined) layer(readConfigFile(sources.file));
  if (sources.flags !== undefined) layer(sources.flags as Plain);
  // The overrides are one layer: train.steps=3 train.epochs=2 together is refused, not one dropped.
  const overrides = (sources.overrides ?? []).map(parseOverride);
  if (overrides.length > 0) layer(overrides.reduce(deepMerge, {}));
  return parseConfig(merged, sources.file ?? 'config');
}
