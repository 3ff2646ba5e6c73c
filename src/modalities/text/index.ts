// The text modality: captions → WordPiece ids (a tokenizer trained on the training captions) →
// two noised views for BYOL → a pre-LN Transformer encoder.
import type { Generator, Tensor } from '../../engine/index.js';
import type { Modality, ModalityFactory, ModalitySpec } from '../modality.js';
import { readTextEmbedInputs } from '../embed_inputs.js';
import { TextTokenizer, trainTokenizer } from './tokenizer.js';
import { TextTransformer, type TextPooling } from './encoder.js';
import { textView, textViewConfig, type TextViewConfig } from './views.js';

export * from './tokenizer.js';
export * from './encoder.js';
export * from './views.js';

/** Everything that configures the text modality; every field has a default. */
export interface TextSettings {
  /** Tokenizer vocabulary, special tokens included (default 4096). */
  vocabSize: number;
  /** Pairs seen fewer times in the training captions are not merged (default 2). */
  minFrequency: number;
  /** Tokens per caption, [CLS] included; longer captions are cut (default 32). */
  maxLength: number;
  /** 'longest' pads a batch to its longest caption, 'max' to maxLength (default 'longest'). */
  padding: 'max' | 'longest';
  /** Encoder width, also the representation's (default 256). */
  dModel: number;
  /** Encoder layers (default 4). */
  layers: number;
  /** Attention heads (default 4). */
  heads: number;
  /** Feed-forward width (default 4·dModel). */
  dimFeedforward: number;
  /** Encoder dropout (default 0.1). */
  dropout: number;
  /** Representation: mean of the token vectors or the [CLS] vector (default 'mean'). */
  pooling: TextPooling;
  /** The augmentations of BYOL's first and second view; fields left out take DEFAULT_TEXT_VIEW's values. */
  view1: TextViewConfig;
  view2: TextViewConfig;
}

const DEFAULTS: Omit<TextSettings, 'dimFeedforward' | 'view1' | 'view2'> = {
  vocabSize: 4096,
  minFrequency: 2,
  maxLength: 32,
  padding: 'longest',
  dModel: 256,
  layers: 4,
  heads: 4,
  dropout: 0.1,
  pooling: 'mean',
};

/**
 * Settings from a config object (any subset of {@link TextSettings}), with defaults filled in and
 * every field checked; unknown fields are errors, so a misspelt one is not silently ignored.
 */
export function textSettings(raw: Record<string, unknown> = {}): TextSettings {
  const known = new Set([...Object.keys(DEFAULTS), 'dimFeedforward', 'view1', 'view2']);
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw new RangeError(`text settings: unknown field '${key}'; fields are ${[...known].join(', ')}`);
  }
  const merged = { ...DEFAULTS, ...raw } as Record<string, unknown>;
  const positiveInt = (key: string): number => {
    const v = merged[key];
    if (!Number.isInteger(v) || (v as number) <= 0)
      throw new RangeError(`text settings: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const dModel = positiveInt('dModel');
  merged.dimFeedforward ??= 4 * dModel;
  const settings: TextSettings = {
    vocabSize: positiveInt('vocabSize'),
    minFrequency: merged.minFrequency as number,
    maxLength: positiveInt('maxLength'),
    padding: merged.padding as TextSettings['padding'],
    dModel,
    layers: positiveInt('layers'),
    heads: positiveInt('heads'),
    dimFeedforward: positiveInt('dimFeedforward'),
    dropout: merged.dropout as number,
    pooling: merged.pooling as TextPooling,
    view1: viewSettings(raw.view1, 'view1'),
    view2: viewSettings(raw.view2, 'view2'),
  };
  if (!(typeof settings.minFrequency === 'number' && settings.minFrequency >= 0)) {
    throw new RangeError(`text settings: minFrequency must be a number ≥ 0, got ${JSON.stringify(settings.minFrequency)}`);
  }
  if (settings.padding !== 'max' && settings.padding !== 'longest') {
    throw new RangeError(`text settings: padding must be 'max' or 'longest', got ${JSON.stringify(settings.padding)}`);
  }
  if (!(typeof settings.dropout === 'number' && settings.dropout >= 0 && settings.dropout <= 1)) {
    throw new RangeError(`text settings: dropout must be a probability in [0, 1], got ${JSON.stringify(settings.dropout)}`);
  }
  if (settings.pooling !== 'mean' && settings.pooling !== 'cls') {
    throw new RangeError(`text settings: pooling must be 'mean' or 'cls', got ${JSON.stringify(settings.pooling)}`);
  }
  if (dModel % settings.heads !== 0) throw new RangeError(`text settings: heads (${settings.heads}) must divide dModel (${dModel})`);
  return settings;
}

function viewSettings(value: unknown, field: string): TextViewConfig {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new RangeError(`text settings: ${field} must be an object of TextViewConfig fields, got ${JSON.stringify(value)}`);
  }
  try {
    return textViewConfig((value ?? {}) as Partial<TextViewConfig>);
  } catch (err) {
    throw new RangeError(`text settings: ${field}: ${(err as Error).message}`);
  }
}

/**
 * Captions as a modality: collate tokenizes, views noise the ids, the encoder is a TextTransformer.
 *
 * @example
 * const text = await textModality.fit({ vocabSize: 4096, maxLength: 32 }, trainCaptions);
 * const ids = await text.collate(['a red car', 'two dogs on a beach']); // int64 [2, L]
 * const [v1, v2] = text.views(ids, new Generator(0));
 * text.createEncoder().forward(v1).shape;                               // [2, 256]
 */
export class TextModality implements Modality<string> {
  readonly name = 'text';
  readonly settings: Readonly<TextSettings>;
  readonly tokenizer: TextTokenizer;

  constructor(settings: TextSettings, tokenizer: TextTokenizer) {
    this.settings = Object.freeze({
      ...settings,
      view1: Object.freeze({ ...settings.view1 }),
      view2: Object.freeze({ ...settings.view2 }),
    });
    this.tokenizer = tokenizer;
  }

  get featureDim(): number {
    return this.settings.dModel;
  }

  /** Captions → int64 ids [N, L]: [CLS], WordPiece pieces, [PAD] = 0 on the right. */
  async collate(items: string[]): Promise<Tensor> {
    const { ids } = await this.tokenizer.encodeBatch(items, this.settings.maxLength, { padding: this.settings.padding });
    return ids;
  }

  /** BYOL's two views of collated ids, settings.view1's and settings.view2's, both drawn from `generator`. */
  views(batch: Tensor, generator: Generator): [Tensor, Tensor] {
    const special = this.tokenizer.specialIds;
    return [textView(batch, this.settings.view1, generator, special), textView(batch, this.settings.view2, generator, special)];
  }

  /** The ids themselves: the encoder reads them directly. */
  evalInput(batch: Tensor): Tensor {
    return batch;
  }

  createEncoder(): TextTransformer {
    const s = this.settings;
    return new TextTransformer({
      vocabSize: this.tokenizer.vocabSize,
      maxLength: s.maxLength,
      dModel: s.dModel,
      layers: s.layers,
      heads: s.heads,
      dimFeedforward: s.dimFeedforward,
      dropout: s.dropout,
      pooling: s.pooling,
    });
  }

  /** Nothing to end: the tokenizer and encoder hold no workers. */
  async close(): Promise<void> {}

  toJSON(): ModalitySpec {
    return {
      name: this.name,
      settings: { ...this.settings, view1: { ...this.settings.view1 }, view2: { ...this.settings.view2 } } as unknown as Record<
        string,
        unknown
      >,
      state: { tokenizer: this.tokenizer.toJSON() },
    };
  }
}

/**
 * Builds the text modality: `fit` trains the tokenizer on the training captions, `restore` reads
 * it back from a checkpoint's spec.
 *
 * @example
 * const text = await textModality.fit({ vocabSize: 4096 }, trainCaptions);
 * const again = textModality.restore(JSON.parse(JSON.stringify(text.toJSON())));
 */
export const textModality: ModalityFactory<string> = {
  name: 'text',
  rawItems: (item) => item.captions,
  readEmbedInputs: (input) => readTextEmbedInputs(input),

  async fit(settings: Record<string, unknown>, trainingItems: string[]): Promise<TextModality> {
    const s = textSettings(settings);
    if (trainingItems.length === 0) throw new RangeError('text modality: fit needs training captions to train the tokenizer, got none');
    return new TextModality(s, trainTokenizer(trainingItems, { vocabSize: s.vocabSize, minFrequency: s.minFrequency }));
  },

  restore(spec: ModalitySpec): TextModality {
    if (spec.name !== 'text') throw new RangeError(`text modality: cannot restore a spec named '${spec.name}'`);
    const json = spec.state?.tokenizer;
    if (typeof json !== 'string') {
      throw new TypeError("text modality: the spec's state.tokenizer must be the tokenizer JSON string written by toJSON()");
    }
    return new TextModality(textSettings(spec.settings), TextTokenizer.fromJSON(json));
  },
};
