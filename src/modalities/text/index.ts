// The text modality: captions → WordPiece ids (a tokenizer trained on the training captions) →
// two noised views for BYOL → a pre-LN Transformer encoder. Or, with encoder 'bert', a pretrained
// BERT-family tower and its own tokenizer, from a folder (pretrained.ts).
import type { Generator, Tensor } from '../../engine/index.js';
import type { Modality, ModalityFactory, ModalitySpec } from '../modality.js';
import { readTextEmbedInputs } from '../embed_inputs.js';
import { TextTokenizer, trainTokenizer } from './tokenizer.js';
import { TextTransformer, type TextPooling } from './encoder.js';
import { BertEncoder, bertConfig, bertConfigJSON, type BertConfig } from './bert.js';
import { loadBertWeights, readPretrainedTextFolder } from './pretrained.js';
import { textView, textViewConfig, type TextViewConfig } from './views.js';

export * from './tokenizer.js';
export * from './encoder.js';
export * from './length_groups.js';
export * from './views.js';
export * from './bert.js';
export * from './pretrained.js';

/** The text encoders: byol-align's own Transformer, trained from scratch, or a pretrained BERT from text.pretrained. */
export type TextEncoderKind = 'transformer' | 'bert';

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
  /**
   * 'transformer' (default) trains byol-align's own encoder and tokenizer; 'bert' starts from the
   * BERT-family model in `pretrained`, whose config.json and tokenizer.json replace the vocabulary and
   * Transformer fields above (vocabSize, minFrequency, dModel, layers, heads, dimFeedforward, dropout).
   */
  encoder: TextEncoderKind;
  /** With encoder 'bert': a folder holding config.json, model.safetensors and tokenizer.json. */
  pretrained?: string;
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
  encoder: 'transformer',
};

/**
 * Settings from a config object (any subset of {@link TextSettings}), with defaults filled in and
 * every field checked; unknown fields are errors, so a misspelt one is not silently ignored.
 */
export function textSettings(raw: Record<string, unknown> = {}): TextSettings {
  const known = new Set([...Object.keys(DEFAULTS), 'dimFeedforward', 'view1', 'view2', 'pretrained']);
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
    encoder: merged.encoder as TextEncoderKind,
    view1: viewSettings(raw.view1, 'view1'),
    view2: viewSettings(raw.view2, 'view2'),
  };
  if (merged.pretrained !== undefined) settings.pretrained = merged.pretrained as string;
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
  if (settings.encoder !== 'transformer' && settings.encoder !== 'bert') {
    throw new RangeError(`text settings: encoder must be 'transformer' or 'bert', got ${JSON.stringify(settings.encoder)}`);
  }
  if (settings.pretrained !== undefined && (typeof settings.pretrained !== 'string' || settings.pretrained === '')) {
    throw new RangeError(`text settings: pretrained must be the path of a folder, got ${JSON.stringify(settings.pretrained)}`);
  }
  if ((settings.encoder === 'bert') !== (settings.pretrained !== undefined)) {
    throw new RangeError(
      settings.encoder === 'bert'
        ? 'text settings: encoder bert needs pretrained, a folder with config.json, model.safetensors and tokenizer.json'
        : "text settings: pretrained is set but encoder is 'transformer'; set encoder: bert to start from it",
    );
  }
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

/** A pretrained BERT tower of the text modality: its architecture, and where its weights are while they are needed. */
export interface TextBert {
  config: BertConfig;
  /**
   * model.safetensors, read into every encoder createEncoder() builds; absent in a modality restored
   * from a checkpoint, whose weights (and the trained ones) the checkpoint itself holds.
   */
  weightsFile?: string;
}

/**
 * Captions as a modality: collate tokenizes, views noise the ids, the encoder is a TextTransformer
 * (or, with a pretrained tower, a BertEncoder).
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
  /** The pretrained tower, with settings.encoder 'bert'. */
  readonly bert: Readonly<TextBert> | null;

  constructor(settings: TextSettings, tokenizer: TextTokenizer, bert: TextBert | null = null) {
    this.settings = Object.freeze({
      ...settings,
      view1: Object.freeze({ ...settings.view1 }),
      view2: Object.freeze({ ...settings.view2 }),
    });
    this.tokenizer = tokenizer;
    if ((settings.encoder === 'bert') !== (bert !== null)) {
      throw new RangeError(`TextModality: encoder '${settings.encoder}' ${bert === null ? 'needs' : 'takes no'} a BERT config`);
    }
    if (bert !== null) checkBertFits(settings, tokenizer, bert.config);
    this.bert = bert === null ? null : Object.freeze({ ...bert });
  }

  get featureDim(): number {
    return this.bert === null ? this.settings.dModel : this.bert.config.hiddenSize;
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

  /** A fresh encoder; a pretrained one has the folder's weights (after fit; after restore, the checkpoint loads its own). */
  createEncoder(): TextTransformer | BertEncoder {
    const s = this.settings;
    if (this.bert !== null) {
      const encoder = new BertEncoder(this.bert.config, { pooling: s.pooling, padId: this.tokenizer.specialIds.pad });
      if (this.bert.weightsFile !== undefined) loadBertWeights(encoder, this.bert.weightsFile);
      return encoder;
    }
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
      // The tokenizer.json and config.json of a pretrained tower are kept here, so a run needs its
      // folder only to start: eval, embed and resume read the checkpoint alone.
      state: {
        tokenizer: this.tokenizer.toJSON(),
        ...(this.bert === null ? {} : { bertConfig: bertConfigJSON(this.bert.config) }),
      },
    };
  }
}

/** A BERT's config fits the tokenizer and settings: every id has a row, every position an embedding. */
function checkBertFits(settings: TextSettings, tokenizer: TextTokenizer, config: BertConfig): void {
  const where = settings.pretrained ?? 'the pretrained text tower';
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new RangeError(
      `${where}: tokenizer.json has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${config.vocabSize}; they must come from one model`,
    );
  }
  if (settings.maxLength > config.maxPositionEmbeddings) {
    throw new RangeError(
      `text.maxLength ${settings.maxLength} is longer than ${where}'s max_position_embeddings ${config.maxPositionEmbeddings}; lower text.maxLength`,
    );
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
    if (s.encoder === 'bert') {
      const folder = readPretrainedTextFolder(s.pretrained!);
      return new TextModality(s, folder.tokenizer, { config: folder.config, weightsFile: folder.weightsFile });
    }
    if (trainingItems.length === 0) throw new RangeError('text modality: fit needs training captions to train the tokenizer, got none');
    return new TextModality(s, trainTokenizer(trainingItems, { vocabSize: s.vocabSize, minFrequency: s.minFrequency }));
  },

  restore(spec: ModalitySpec): TextModality {
    if (spec.name !== 'text') throw new RangeError(`text modality: cannot restore a spec named '${spec.name}'`);
    const json = spec.state?.tokenizer;
    if (typeof json !== 'string') {
      throw new TypeError("text modality: the spec's state.tokenizer must be the tokenizer JSON string written by toJSON()");
    }
    const settings = textSettings(spec.settings);
    const bert =
      settings.encoder === 'bert' ? { config: bertConfig(spec.state?.bertConfig, "the checkpoint's text state.bertConfig") } : null;
    return new TextModality(settings, TextTokenizer.fromJSON(json), bert);
  },
};
