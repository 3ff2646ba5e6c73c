// What makes a folder a byol-align run, and the paths a run records. A run folder carries a
// marker file, so `train --out` can tell its own folders from a user's folder (whose files it
// would otherwise overwrite), and its saved config names data by absolute paths, so `eval`,
// `report` and `export` find the data from any working directory.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Modality } from '../modalities/modality.js';
import { writeFileAtomic } from '../engine/atomic_write.js';

/** The marker file of a run folder (JSON: {"format"}). */
export const RUN_MARKER = 'byol-align-run.json';
export const RUN_FORMAT = 'byol-align-run/1';

/** True for a folder that a byol-align run wrote: the marker, or (runs written before it) checkpoints/ with config.json. */
export function isRunDir(dir: string): boolean {
  return existsSync(join(dir, RUN_MARKER)) || (existsSync(join(dir, 'checkpoints')) && existsSync(join(dir, 'config.json')));
}

/**
 * Refuses to train into `dir` when it holds files and is not a run folder, unless `force`; a
 * file in the way of the folder is refused always.
 */
export function checkRunDir(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new Error(`train: --out ${dir} is a file, not a folder`);
  if (force || isRunDir(dir)) return;
  const entries = readdirSync(dir);
  if (entries.length > 0)
    throw new Error(
      `train: --out ${dir} is not empty and is not a byol-align run (it holds ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); ` +
        `choose a new folder, or pass --force to write config.json, metrics.jsonl and checkpoints/ into it`,
    );
}

/** A data spec (`kind:FILE[#split]`) with its file made absolute (relative to `cwd`). */
export function absoluteDataSpec(spec: string, cwd = process.cwd()): string {
  const colon = spec.indexOf(':');
  if (colon <= 0) return spec; // not a spec: loading it will say so
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  const hash = kind === 'karpathy' ? rest.lastIndexOf('#') : -1;
  const file = hash >= 0 ? rest.slice(0, hash) : rest;
  return `${kind}:${resolve(cwd, file)}${hash >= 0 ? rest.slice(hash) : ''}`;
}

/** The config with every data file and image folder as an absolute path. */
export function withAbsoluteDataPaths(config: Config, cwd = process.cwd()): Config {
  const data = { ...config.data };
  if (data.train !== undefined) data.train = absoluteDataSpec(data.train, cwd);
  if (data.val !== undefined) data.val = absoluteDataSpec(data.val, cwd);
  if (data.images !== undefined) data.images = resolve(cwd, data.images);
  if (data.valImages !== undefined) data.valImages = resolve(cwd, data.valImages);
  // The run a new run starts from (train.initFrom) is a path too.
  const initFrom = config.train.initFrom;
  return initFrom === undefined ? { ...config, data } : { ...config, data, train: { ...config.train, initFrom: resolve(cwd, initFrom) } };
}

/**
 * Refuses to write `file` where it would lose data: inside a run's checkpoints/ folder (always),
 * or over an existing file unless `force`.
 */
export function checkOutputFile(file: string, force: boolean): void {
  const parent = dirname(resolve(file));
  if (basename(parent) === 'checkpoints' && isRunDir(dirname(parent)))
    throw new Error(`${file}: is inside a run's checkpoints/ folder; write it somewhere else`);
  if (existsSync(file) && !force) throw new Error(`${file} exists; pass --force to overwrite it`);
}

/** Refuses to write into a folder that holds files, unless `force`. */
export function checkOutputDir(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is a file, not a folder`);
  if (isRunDir(dir)) throw new Error(`${dir} is a training run; write into another folder`);
  if (readdirSync(dir).length > 0 && !force) throw new Error(`${dir} is not empty; pass --force to overwrite what it holds`);
}

/**
 * A run's own files besides its checkpoints: the marker, config.json, modalities.json (and the text
 * tokenizer as tokenizer.json), an empty metrics.jsonl and the checkpoints/ folder.
 */
export function writeRunFolder(out: string, config: Config, modalities: readonly Modality[]): void {
  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  const specs = modalities.map((m) => m.toJSON());
  writeFileAtomic(join(out, RUN_MARKER), Buffer.from(`${JSON.stringify({ format: RUN_FORMAT })}\n`));
  writeFileAtomic(join(out, 'config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
  writeFileAtomic(join(out, 'modalities.json'), Buffer.from(`${JSON.stringify(specs, null, 2)}\n`));
  const tokenizer = specs.find((s) => s.name === 'text')?.state?.tokenizer;
  if (typeof tokenizer === 'string') writeFileAtomic(join(out, 'tokenizer.json'), Buffer.from(tokenizer));
  writeFileAtomic(join(out, 'metrics.jsonl'), Buffer.alloc(0));
}
