// A modality is a plug-in: it turns its raw inputs into a batch tensor, draws two augmented views of
// a batch for BYOL, and builds the encoder that maps a batch to a representation. The aligner treats
// every modality alike through this interface, so audio or tables are a new folder under
// src/modalities/ plus one registerModality() call.
import type { Generator, Tensor } from '../engine/index.js';
import type { TensorModule } from '../nn/index.js';

/**
 * One modality, configured and (where it learns something from data, like a tokenizer) fitted.
 *
 * @example
 * const batch = await modality.collate(items);          // e.g. token ids [N, L] or pixels [N, C, H, W]
 * const [v1, v2] = modality.views(batch, generator);    // training only
 * const y = encoder.forward(modality.evalInput(batch)); // [N, modality.featureDim]
 */
export interface Modality<Raw = unknown> {
  /** The registry key; also the field name in a JSONL record and in the config. */
  readonly name: string;
  /** Width of the encoder's output (the representation). */
  readonly featureDim: number;
  /** Raw items → one batch tensor, deterministically (no augmentation). Errors name the item's index. */
  collate(items: Raw[]): Promise<Tensor>;
  /** Two independently augmented model inputs of one collated batch. */
  views(batch: Tensor, generator: Generator): [Tensor, Tensor];
  /** The un-augmented model input of a collated batch, for evaluation and embedding. */
  evalInput(batch: Tensor): Tensor;
  /** A fresh encoder; called once for the online network and once for the target. */
  createEncoder(): TensorModule;
  /** Everything needed to rebuild this modality (settings and fitted state) for a checkpoint. */
  toJSON(): ModalitySpec;
}

/** A modality's saved form: its registry name, its settings and any fitted state (JSON-safe). */
export interface ModalitySpec {
  name: string;
  settings: Record<string, unknown>;
  state?: Record<string, unknown>;
}

/** Builds a modality from its settings; `fit` learns data-dependent state from training items. */
export interface ModalityFactory<Raw = unknown> {
  readonly name: string;
  /** From config settings and training items (a tokenizer is trained here). */
  fit(settings: Record<string, unknown>, trainingItems: Raw[]): Promise<Modality<Raw>>;
  /** From a checkpoint's spec, without data. */
  restore(spec: ModalitySpec): Modality<Raw>;
}

/**
 * The same modality under another name, for two inputs of one kind (two embedding sources, say):
 * the aligner keys its encoders, heads and batches by name.
 *
 * @example
 * const audioEmbeddings = withName(await vectorModality.fit({}, audioVectors), 'audio');
 */
export function withName<Raw>(modality: Modality<Raw>, name: string): Modality<Raw> {
  return {
    name,
    get featureDim() {
      return modality.featureDim;
    },
    collate: (items) => modality.collate(items),
    views: (batch, generator) => modality.views(batch, generator),
    evalInput: (batch) => modality.evalInput(batch),
    createEncoder: () => modality.createEncoder(),
    toJSON: () => modality.toJSON(),
  };
}
