// Turning config files, presets and `key=value` overrides into one validated Config, with errors
// that name the file, the key and what is allowed there.
import { dirname, extname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { jsonErrorOffset, lineColumn } from '../engine/json_text.js';
import { decodeUtf8, InvalidUtf8Error, NotRegularFileError, readRegularFile } from '../data/safe_read.js';
import { modalityFactory, registeredModalities } from '../modalities/registry.js';
import { importModalityPlugins, isPluginImported, PluginError, resolvePluginSpecifier } from '../modalities/plugins.js';
import { configSchemaWith, CORE_SECTIONS, type Config, type ConfigInput } from './schema.js';
import { PRESETS, type PresetName } from './presets.js';
import { towerShape, withTowerKeys } from './tower.js';

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

/**
 * The config schema as it stands: the core sections and one for each registered modality that
 * declares a configSchema (a plug-in's section, validated by its own schema).
 */
export function currentConfigSchema(): ReturnType<typeof configSchemaWith> {
  const sections: Record<string, z.ZodType> = {};
  for (const name of registeredModalities()) {
    const schema = modalityFactory(name).configSchema;
    if (schema === undefined) {
      // A plug-in without settings of its own still has the generic ones (freeze, views).
      if (!CORE_SECTIONS.includes(name)) sections[name] = z.strictObject(towerShape).prefault({});
      continue;
    }
    if (CORE_SECTIONS.includes(name))
      throw new ConfigError(
        `modality '${name}' declares a config section, but '${name}' is a section of the core config; rename the modality`,
      );
    sections[name] = withTowerKeys(schema).prefault({});
  }
  return configSchemaWith(sections);
}

/** The keys an object schema allows at `path` (for error messages), or [] if it is not an object there. */
function allowedKeys(path: PropertyKey[]): string[] {
  let schema: z.ZodType = currentConfigSchema();
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

/**
 * Validates and fills in defaults; throws a ConfigError naming every bad key. The config's
 * plug-ins must have been imported (importModalityPlugins, or {@link resolveConfigWithPlugins}).
 */
export function parseConfig(input: unknown, source = 'config'): Config {
  const plugins = isPlain(input) && Array.isArray(input.plugins) ? input.plugins : [];
  const missing = plugins.filter((p) => typeof p === 'string' && !isPluginImported(p));
  if (missing.length > 0)
    throw new ConfigError(
      `${source}: plugins: ${missing.join(', ')} not imported; import the config's plug-ins first (resolveConfigWithPlugins, importModalityPlugins)`,
    );
  const result = currentConfigSchema().safeParse(input);
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
  /** Plug-in modules (the CLI's --plugin), relative to the working folder; added to the config's `plugins`. */
  plugins?: string[];
}

/**
 * `plugins` made absolute against `baseDir` (a config file's folder, or the working folder). A
 * value that is not a list of strings is left for the schema to refuse.
 */
function resolvedPlugins(value: unknown, baseDir: string, source: string): unknown {
  if (!Array.isArray(value) || !value.every((p) => typeof p === 'string')) return value;
  try {
    return value.map((p) => resolvePluginSpecifier(p, baseDir));
  } catch (err) {
    if (err instanceof PluginError) throw new ConfigError(`${source}: plugins: ${err.message}`);
    throw err;
  }
}

/**
 * The configuration from a preset, a file, flags and overrides, in that order, validated.
 *
 * @example
 * const config = resolveConfig({ preset: 'cpu-small', file: 'run.yaml', overrides: ['train.epochs=5'] });
 */
export function resolveConfig(sources: ConfigSources): Config {
  return parseConfig(mergeConfigSources(sources), sources.file ?? 'config');
}

/**
 * {@link resolveConfig} after importing the plug-ins the sources name (the config's `plugins` and
 * `sources.plugins`), so that their modalities' sections validate.
 *
 * @example
 * const config = await resolveConfigWithPlugins({ file: 'run.yaml', plugins: ['./tone.mjs'] });
 */
export async function resolveConfigWithPlugins(sources: ConfigSources): Promise<Config> {
  const merged = mergeConfigSources(sources);
  const source = sources.file ?? 'config';
  if (Array.isArray(merged.plugins)) await importPlugins(merged.plugins as string[], source);
  return parseConfig(merged, source);
}

/** Imports plug-ins as recorded in a config (absolute paths, package names); a failure is a ConfigError naming `source`. */
export async function importPlugins(plugins: readonly string[], source: string): Promise<void> {
  try {
    await importModalityPlugins(plugins);
  } catch (err) {
    if (err instanceof PluginError) throw new ConfigError(`${source}: ${err.message}`);
    throw err;
  }
}

/** The layers of `sources` merged, unvalidated; `plugins` of every layer together, made absolute. */
function mergeConfigSources(sources: ConfigSources): Plain {
  let merged: Plain = {};
  // A later layer's train.steps replaces an earlier train.epochs and the other way round: they are
  // two ways of giving one length, so a preset's epochs do not clash with --steps.
  // Plug-ins add up instead of replacing: a --plugin does not drop the config file's.
  const layer = (value: Plain, baseDir: string, source: string): void => {
    const train = isPlain(value.train) ? value.train : {};
    const before = isPlain(merged.train) ? { ...merged.train } : undefined;
    if (before && 'steps' in train && !('epochs' in train)) delete before.epochs;
    if (before && 'epochs' in train && !('steps' in train)) delete before.steps;
    const earlier = merged.plugins;
    const plugins = resolvedPlugins(value.plugins, baseDir, source);
    merged = deepMerge(before ? { ...merged, train: before } : merged, value);
    if (plugins === undefined) return;
    merged.plugins = Array.isArray(plugins) && Array.isArray(earlier) ? [...new Set([...(earlier as string[]), ...plugins])] : plugins;
  };
  const cwd = process.cwd();
  if (sources.base !== undefined) layer(sources.base, cwd, 'config');
  if (sources.preset !== undefined) {
    const preset = PRESETS[sources.preset];
    if (!preset) throw new ConfigError(`unknown preset '${sources.preset}'; presets: ${Object.keys(PRESETS).join(', ')}`);
    layer(preset as Plain, cwd, `preset ${sources.preset}`);
  }
  if (sources.file !== undefined) layer(readConfigFile(sources.file), dirname(sources.file), sources.file);
  if (sources.flags !== undefined) layer(sources.flags as Plain, cwd, 'flags');
  // The overrides are one layer: train.steps=3 train.epochs=2 together is refused, not one dropped.
  const overrides = (sources.overrides ?? []).map(parseOverride);
  if (overrides.length > 0) layer(overrides.reduce(deepMerge, {}), cwd, 'overrides');
  if (sources.plugins !== undefined && sources.plugins.length > 0) layer({ plugins: sources.plugins }, cwd, '--plugin');
  return merged;
}
