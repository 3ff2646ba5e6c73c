// A pretrained text tower from a folder laid out as the Hugging Face hub lays out a model:
// config.json (the architecture), model.safetensors (the weights) and tokenizer.json (the
// tokenizer, served by `tokenizers`). Every weight is checked against the architecture before any
// is copied, and what does not fit is listed in one error naming the file.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, noGrad, tidy, type Tensor } from '../../engine/index.js';
import { bertConfig, type BertConfig, type BertEncoder } from './bert.js';
import { TextTokenizer } from './tokenizer.js';

/** The files a pretrained text folder must hold. */
export const PRETRAINED_TEXT_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'] as const;

/** A pretrained folder or weights file that cannot be used; the message names the file, and the keys where they are the problem. */
export class PretrainedTextError extends Error {
  override readonly name = 'PretrainedTextError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** What a pretrained text folder holds, read and checked (the weights only located: they are read into each encoder). */
export interface PretrainedTextFolder {
  config: BertConfig;
  /** tokenizer.json's tokenizer. */
  tokenizer: TextTokenizer;
  /** The model.safetensors path. */
  weightsFile: string;
}

/**
 * Reads a folder with config.json, model.safetensors and tokenizer.json; missing files are listed
 * in one error.
 *
 * @example
 * const { config, tokenizer, weightsFile } = readPretrainedTextFolder('models/all-MiniLM-L6-v2');
 */
export function readPretrainedTextFolder(dir: string): PretrainedTextFolder {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new PretrainedTextError(
      dir,
      `text.pretrained must be a folder holding ${PRETRAINED_TEXT_FILES.join(', ')}; there is no folder here`,
    );
  }
  const missing = PRETRAINED_TEXT_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new PretrainedTextError(
      dir,
      `missing ${missing.map((f) => join(dir, f)).join(', ')}; a pretrained text folder holds ${PRETRAINED_TEXT_FILES.join(', ')} ` +
        '(docs/pretrained.md says how to write them from a Hugging Face model)',
    );
  }
  const configFile = join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configFile, 'utf8'));
  } catch (err) {
    throw new PretrainedTextError(configFile, `not valid JSON: ${(err as Error).message}`);
  }
  const config = bertConfig(json, configFile);
  const tokenizerFile = join(dir, 'tokenizer.json');
  let tokenizer: TextTokenizer;
  try {
    tokenizer = TextTokenizer.load(tokenizerFile);
  } catch (err) {
    throw new PretrainedTextError(tokenizerFile, (err as Error).message);
  }
  return { config, tokenizer, weightsFile: join(dir, 'model.safetensors') };
}

/**
 * A Hugging Face BERT state dict's keys as BertEncoder names them, each with the key it had in the
 * file: a task model's `bert.` prefix (BertForMaskedLM, BertForSequenceClassification) is stripped
 * and its head (cls.*, classifier.*) left out; the pooler, which mean and CLS pooling do not use,
 * and the position_ids buffer older files carry are left out; TensorFlow-era LayerNorm.gamma/beta
 * are read as weight/bias, as transformers does.
 */
export function bertStateKeys(fileKeys: Iterable<string>): Map<string, string> {
  const keys = [...fileKeys];
  const prefixed = keys.some((k) => k.startsWith('bert.'));
  const out = new Map<string, string>();
  for (const fileKey of keys) {
    if (prefixed && !fileKey.startsWith('bert.')) continue;
    const key = (prefixed ? fileKey.slice('bert.'.length) : fileKey).replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
    if (key.startsWith('pooler.') || key === 'embeddings.position_ids') continue;
    out.set(key, fileKey);
  }
  return out;
}

/**
 * Copies a Hugging Face BertModel's weights (a model.safetensors) into `encoder`. Every key is
 * checked first: missing keys, unexpected keys and wrong shapes are listed together in one
 * PretrainedTextError naming the file, and nothing is copied.
 *
 * @example
 * const encoder = new BertEncoder(config);
 * loadBertWeights(encoder, 'models/all-MiniLM-L6-v2/model.safetensors');
 */
export function loadBertWeights(encoder: BertEncoder, file: string): void {
  tidy(() => {
    if (!existsSync(file)) throw new PretrainedTextError(file, 'no such file');
    const { tensors } = loadSafetensors(file);
    const fileKeys = bertStateKeys(tensors.keys());
    const own = encoder.stateDict();
    const problems: string[] = [];
    const missing = [...own.keys()].filter((k) => !fileKeys.has(k));
    const unexpected = [...fileKeys].filter(([k]) => !own.has(k)).map(([, fileKey]) => fileKey);
    const wrongShape: string[] = [];
    for (const [key, target] of own) {
      const fileKey = fileKeys.get(key);
      if (fileKey === undefined) continue;
      const source = tensors.get(fileKey)!;
      if (!sameShape(source, target)) wrongShape.push(`${fileKey} is [${source.shape.join(', ')}], expected [${target.shape.join(', ')}]`);
    }
    if (missing.length > 0) problems.push(`missing keys: ${missing.join(', ')}`);
    if (unexpected.length > 0) problems.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (wrongShape.length > 0) problems.push(`wrong shapes: ${wrongShape.join('; ')}`);
    if (problems.length > 0) {
      throw new PretrainedTextError(file, `the weights do not fit the BERT that config.json describes: ${problems.join('; ')}`);
    }
    noGrad(() => {
      for (const [key, target] of own) target.copy_(tensors.get(fileKeys.get(key)!)!);
    });
  });
}

function sameShape(a: Tensor, b: Tensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}
