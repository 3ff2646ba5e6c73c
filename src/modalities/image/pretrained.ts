// Pretrained image weights: a safetensors state dict (torchvision's `model.state_dict()` saved with
// safetensors, or timm's `model.safetensors`) copied into a freshly built encoder. Every key is
// checked before anything is copied, and every problem is listed in one error naming the file, so
// a wrong architecture or a renamed key shows at once rather than one key per attempt.
import { existsSync } from 'node:fs';
import { loadSafetensors, type Tensor } from '../../engine/index.js';
import type { Module } from '../../nn/index.js';

/** The weights file does not fit the encoder, or cannot be read; `file` names it. */
export class PretrainedWeightsError extends Error {
  override readonly name = 'PretrainedWeightsError';
  constructor(
    readonly file: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`image weights ${file}: ${problem}`, options);
  }
}

/** What loading copied and what it left out on purpose. */
export interface PretrainedLoad {
  file: string;
  /** How many of the encoder's tensors came from the file. */
  loaded: number;
  /** Keys of the file's classifier (`fc.*`), not part of an encoder that outputs pooled features. */
  ignored: string[];
}

// ImageNet classifiers: torchvision's and timm's ResNets call theirs `fc`. An encoder with an `fc`
// of its own loads it like any other key.
const CLASSIFIER_PREFIX = 'fc.';
// Lists longer than this are cut, with a count of the rest: a file of another architecture misses
// hundreds of keys, and the first few already show what is wrong.
const LISTED = 20;

function listed(what: string, keys: string[]): string {
  const shown = keys.slice(0, LISTED).join(', ');
  return `${what} (${keys.length}): ${shown}${keys.length > LISTED ? `, and ${keys.length - LISTED} more` : ''}`;
}

function shapeText(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Copies the state dict in the safetensors `file` into `encoder`. Every key of the encoder must be
 * in the file with the encoder's shape, and every key of the file must be the encoder's, except:
 * `fc.*` (an ImageNet classifier) is skipped and reported in `ignored`, and a missing
 * `num_batches_tracked` is allowed (PyTorch's BatchNorm loads files without it too; only the
 * momentum-free running average reads it). Otherwise a PretrainedWeightsError names the file and
 * lists the missing, unexpected and wrong-shape keys together. Values are cast to the encoder's
 * dtypes (a float16 file loads into float32).
 *
 * @example
 * const encoder = new ImagenetResNet({ depth: 50 });
 * loadPretrainedWeights(encoder, 'resnet50.safetensors'); // { loaded: 320, ignored: ['fc.weight', 'fc.bias'] }
 */
export function loadPretrainedWeights(encoder: Module, file: string): PretrainedLoad {
  if (!existsSync(file)) throw new PretrainedWeightsError(file, 'no such file (image.weights names a safetensors state dict)');
  let tensors: Map<string, Tensor>;
  try {
    tensors = loadSafetensors(file).tensors;
  } catch (err) {
    throw new PretrainedWeightsError(file, (err as Error).message, { cause: err });
  }
  try {
    const own = encoder.stateDict();
    const ownsClassifier = [...own.keys()].some((k) => k.startsWith(CLASSIFIER_PREFIX));
    const ignored = ownsClassifier ? [] : [...tensors.keys()].filter((k) => k.startsWith(CLASSIFIER_PREFIX));
    const missing = [...own.keys()].filter((k) => !tensors.has(k) && !k.endsWith('.num_batches_tracked'));
    const unexpected = [...tensors.keys()].filter((k) => !own.has(k) && !ignored.includes(k));
    const wrongShapes: string[] = [];
    for (const [key, target] of own) {
      const source = tensors.get(key);
      if (source && shapeText(source.shape) !== shapeText(target.shape))
        wrongShapes.push(`${key} is ${shapeText(source.shape)} in the file, ${shapeText(target.shape)} in the encoder`);
    }
    const problems = [
      missing.length > 0 ? listed('missing keys', missing) : '',
      unexpected.length > 0 ? listed('unexpected keys', unexpected) : '',
      wrongShapes.length > 0 ? listed('wrong shapes', wrongShapes) : '',
    ].filter((p) => p !== '');
    if (problems.length > 0) {
      throw new PretrainedWeightsError(
        file,
        `does not fit the ${encoder.constructor.name} encoder: ${problems.join('; ')}. ` +
          'The file must be a state dict of the same architecture (torchvision or timm names); see docs/pretrained.md.',
      );
    }
    const fitting = new Map([...tensors].filter(([key]) => own.has(key)));
    encoder.loadStateDict(fitting, false);
    return { file, loaded: fitting.size, ignored };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
