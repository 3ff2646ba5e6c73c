// Embedding new data with a trained model: what `byol-align embed` does. Each modality's factory
// reads its inputs (src/modalities/embed_inputs.ts lists the forms: an image folder or file, a .txt
// or .jsonl of texts, a .jsonl of vectors, a .jsonl of {"id", NAME} for a plug-in's modality).
// The embedding is l2-normalised, in the space retrieval is best in (the run's recorded space, or --space),
// computed on the model's device and returned on the CPU, for files and for an index.
import { existsSync } from 'node:fs';
import { keep, noGrad, type Tensor } from '../engine/index.js';
import { collatedBatches, embedBatches } from '../align/embed_batches.js';
import type { EmbedInputs, ReadEmbedInputsOptions } from '../modalities/modality.js';
import { modalityFactory, registeredModalities } from '../modalities/registry.js';
import { EmbedInputError, readFieldEmbedInputs } from '../modalities/embed_inputs.js';
import type { LoadedModel } from './model_setup.js';

export { EmbedInputError, type EmbedInputs, type ReadEmbedInputsOptions };

/**
 * Reads `input` as items of `modality` with its registered factory's reader (a modality without
 * one reads a .jsonl file of {"id", NAME} lines); an input of another kind is an EmbedInputError
 * naming it. Texts are cut like the data sets' captions; a FIFO or device is refused without being
 * opened for a blocking read.
 */
export function readEmbedInputs(modality: string, input: string, options: ReadEmbedInputsOptions = {}): EmbedInputs {
  if (!existsSync(input)) throw new EmbedInputError(`${input}: no such file or folder`);
  if (!registeredModalities().includes(modality))
    throw new EmbedInputError(`unknown modality '${modality}'; registered modalities: ${registeredModalities().join(', ')}`);
  const factory = modalityFactory(modality);
  return factory.readEmbedInputs ? factory.readEmbedInputs(input, options) : readFieldEmbedInputs(input, modality);
}

export interface EmbedOptions {
  /** 'projection' or 'encoder' (default: the space the run retrieves best in, `loaded.retrievalSpace`). */
  space?: 'projection' | 'encoder';
  /** Inputs per forward (default 256). */
  batchSize?: number;
  /** 'bfloat16' runs the forward under autocast (embedBatches); embeddings stay float32 (default 'float32'). */
  precision?: 'float32' | 'bfloat16';
}

/**
 * The l2-normalised embeddings [N, d] of the inputs, in batches, in the space retrieval uses; a CPU
 * tensor, whatever device the model is on.
 *
 * @example
 * const loaded = loadModel('runs/icons');
 * const { ids, embeddings } = await embedInputs(loaded, 'text', readEmbedInputs('text', 'queries.txt'));
 */
export async function embedInputs(
  loaded: LoadedModel,
  modalityName: string,
  inputs: EmbedInputs,
  options: EmbedOptions = {},
): Promise<{ ids: string[]; embeddings: Tensor; space: 'projection' | 'encoder' }> {
  // The pairing space compares predictions with target projections: no single embedding per item.
  const space = options.space ?? (loaded.retrievalSpace === 'pairing' ? 'projection' : loaded.retrievalSpace);
  const batchSize = options.batchSize ?? 256;
  const modality = loaded.modalities.find((m) => m.name === modalityName);
  if (!modality)
    throw new EmbedInputError(`the model has no '${modalityName}' modality; it has ${loaded.modalities.map((m) => m.name).join(', ')}`);
  loaded.model.eval();
  const byStage = await embedBatches(loaded.model, modality, collatedBatches(modality, inputs.items, batchSize), [space], {
    normalize: true,
    precision: options.precision,
  });
  const onModel = byStage.get(space)!;
  const embeddings = onModel.device === 'cpu' ? onModel : keep(noGrad(() => onModel.to('cpu')));
  if (embeddings !== onModel) onModel.dispose();
  return { ids: inputs.ids, embeddings, space };
}
