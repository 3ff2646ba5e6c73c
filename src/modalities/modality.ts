// A modality is a plug-in: it turns its raw inputs into a batch tensor, draws two augmented views of
// a batch for BYOL, and builds the encoder that maps a batch to a representation. The aligner, the
// run (fit, batches, checkpoints), `eval` and `embed` treat every modality alike through these two
// interfaces, so audio or tables are a new folder under src/modalities/ (or a user's own module,
// loaded with `--plugin`) plus one registerModality() call; docs/modalities.md has an example.
import type { z } from 'zod';
import type { Generator, Tensor } from '../engine/index.js';
import type { TensorModule } from '../nn/index.js';
import type { MediaFileKind, PairedItem } from '../data/paired.js';

export { BadItemError } from './bad_item.js';

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
  /**
   * Raw items → one batch tensor, deterministically (no augmentation). Errors name the item's
   * index; a raw item that cannot be used (a file that does not decode) is a BadItemError with
   * its `index`, which training under data.onBadRecord 'skip' leaves out and counts.
   */
  collate(items: Raw[]): Promise<Tensor>;
  /** Two independently augmented model inputs of one collated batch. */
  views(batch: Tensor, generator: Generator): [Tensor, Tensor];
  /** The un-augmented model input of a collated batch, for evaluation and embedding. */
  evalInput(batch: Tensor): Tensor;
  /** A fresh encoder; called once for the online network and once for the target. */
  createEncoder(): TensorModule;
  /** Everything needed to rebuild this modality (settings and fitted state) for a checkpoint. */
  toJSON(): ModalitySpec;
  /** Ends what the modality started (decode workers, say); a modality that started nothing resolves at once. */
  close(): Promise<void>;
}

/** A modality's saved form: its registry name, its settings and any fitted state (JSON-safe). */
export interface ModalitySpec {
  name: string;
  settings: Record<string, unknown>;
  state?: Record<string, unknown>;
}

/** Raw inputs read from an `embed` input file or folder, with their ids, ready for the modality's collate. */
export interface EmbedInputs {
  ids: string[];
  items: unknown[];
}

/** Options of a factory's {@link ModalityFactory.readEmbedInputs}. */
export interface ReadEmbedInputsOptions {
  /** Embed images of a folder that are symbolic links to files outside it (default false: refused). */
  allowOutsideImages?: boolean;
}

/** Options of a factory's {@link ModalityFactory.fit}. */
export interface FitOptions {
  /**
   * Leave out training items that throw a BadItemError instead of failing (the run sets it under
   * data.onBadRecord 'skip'; training counts such an item when its batch meets it). Default false.
   */
  skipBadItems?: boolean;
}

/**
 * Builds a modality from its settings; `fit` learns data-dependent state from training items.
 * Everything a run needs to know about a modality is here: where its raw items are in a data item,
 * its config section, how to fit and restore it, and how `embed` reads its inputs.
 */
export interface ModalityFactory<Raw = unknown> {
  /** The registry key: the modality's name, its config section and (for a plug-in) its JSONL field. */
  readonly name: string;
  /**
   * The raw items of this modality in one data item, [] when it has none: the image's path, the
   * captions, a JSONL record's `vector`; a plug-in's are usually `item.extra?.[name]` (a JSONL
   * record's field of that name). Training draws one of them per item and epoch (as captions are).
   */
  rawItems(item: PairedItem): Raw[];
  /**
   * For a plug-in whose JSONL field names files (paths relative to the manifest's folder): what
   * they are, so that loading a manifest checks each one as it checks images (inside the folder
   * unless data.allowOutsideImages, present, starting like its format) before any is decoded.
   */
  readonly mediaFiles?: MediaFileKind;
  /**
   * The schema of the config section `name`, with its defaults; its output is what `fit` gets as
   * settings. Left out by image, text and vector, whose sections are part of the core schema
   * (src/config/schema.ts); a plug-in without one has no section, and fit gets `{}`.
   */
  readonly configSchema?: z.ZodType<Record<string, unknown>>;
  /** From config settings and training items (a tokenizer is trained here). */
  fit(settings: Record<string, unknown>, trainingItems: Raw[], options?: FitOptions): Promise<Modality<Raw>>;
  /** From a checkpoint's spec, without data. */
  restore(spec: ModalitySpec): Modality<Raw>;
  /**
   * `embed --input` (an existing file or folder) → ids and raw items; errors are EmbedInputErrors
   * naming the input. Default: a .jsonl file of `{"id", NAME}` lines ({@link readJsonlEmbedInputs}).
   */
  readEmbedInputs?(input: string, options: ReadEmbedInputsOptions): EmbedInputs;
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
    close: () => modality.close(),
  };
}
