// The vector modality: items are embeddings of one fixed dimension computed elsewhere (number[] or
// Float32Array). collate stacks them into [N, dim] float32 after checking each one; views perturb
// them (views.ts); the encoder is an MLP adapter (adapter.ts). Nothing is learned from the data
// at fit time except, when the settings leave it out, the dimension.
import { tensor, type Generator, type Tensor } from '../../engine/index.js';
import type { TensorModule } from '../../nn/index.js';
import type { Modality, ModalityFactory, ModalitySpec } from '../modality.js';
import { readVectorEmbedInputs } from '../embed_inputs.js';
import { DEFAULT_VECTOR_ADAPTER, vectorAdapter } from './adapter.js';
import { resolveVectorView, vectorView, type VectorViewConfig } from './views.js';

export { vectorAdapter, DEFAULT_VECTOR_ADAPTER, type VectorAdapterOptions } from './adapter.js';
export {
  featureDropout,
  gaussianNoise,
  mixWithinBatch,
  vectorView,
  resolveVectorView,
  DEFAULT_VECTOR_VIEW,
  IDENTITY_VECTOR_VIEW,
  type VectorViewConfig,
} from './views.js';

/** One raw item: an embedding of the modality's dimension. */
export type VectorItem = number[] | Float32Array;

/** Every setting of the vector modality, resolved (what toJSON saves). */
export interface VectorSettings {
  /** The embeddings' dimension. */
  dim: number;
  /** The encoder's output width (default 256). */
  featureDim: number;
  /** The adapter's hidden widths (default [1024]). */
  hiddenDims: number[];
  /** The two views' perturbations (default DEFAULT_VECTOR_VIEW for both). */
  view1: VectorViewConfig;
  view2: VectorViewConfig;
}

/** The settings a config may give; `dim` is inferred from the training items when left out. */
export type VectorSettingsInput = Partial<Omit<VectorSettings, 'view1' | 'view2'>> & {
  view1?: Partial<VectorViewConfig>;
  view2?: Partial<VectorViewConfig>;
};

/** A raw item collate or fit cannot use; `index` is its position in the list given. */
export class VectorInputError extends Error {
  override readonly name = 'VectorInputError';
  constructor(
    readonly index: number,
    problem: string,
  ) {
    super(`vector item ${index}: ${problem}`);
  }
}

const SETTING_KEYS: (keyof VectorSettings)[] = ['dim', 'featureDim', 'hiddenDims', 'view1', 'view2'];

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new RangeError(`vector modality settings: ${field} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/** Settings (from a config or a checkpoint) → VectorSettings, with defaults; the dim is given separately. */
function resolveSettings(settings: Record<string, unknown>, dim: number): VectorSettings {
  const unknown = Object.keys(settings).filter((k) => !(SETTING_KEYS as string[]).includes(k));
  if (unknown.length) {
    throw new RangeError(`vector modality settings: unknown setting(s) ${unknown.join(', ')}; the settings are ${SETTING_KEYS.join(', ')}`);
  }
  const hidden = settings.hiddenDims ?? DEFAULT_VECTOR_ADAPTER.hiddenDims;
  if (!Array.isArray(hidden))
    throw new RangeError(`vector modality settings: hiddenDims must be an array of widths, got ${describe(hidden)}`);
  const view = (key: 'view1' | 'view2'): VectorViewConfig => {
    const value = settings[key] ?? {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new RangeError(`vector modality settings: ${key} must be an object, got ${describe(value)}`);
    }
    return resolveVectorView(value as Partial<VectorViewConfig>, `vector modality settings: ${key}`);
  };
  return {
    dim: positiveInt(dim, 'dim'),
    featureDim: positiveInt(settings.featureDim ?? DEFAULT_VECTOR_ADAPTER.featureDim, 'featureDim'),
    hiddenDims: hidden.map((w, i) => positiveInt(w, `hiddenDims[${i}]`)),
    view1: view('view1'),
    view2: view('view2'),
  };
}

function lengthOf(item: unknown, index: number): number {
  if (Array.isArray(item) || item instanceof Float32Array) return item.length;
  const kind = item === null ? 'null' : ArrayBuffer.isView(item) ? item.constructor.name : typeof item;
  throw new VectorInputError(index, `expected a number[] or Float32Array, got ${kind}`);
}

/**
 * Precomputed embeddings as a modality.
 *
 * @example
 * const vectors = await vectorModality.fit({ featureDim: 128 }, trainingEmbeddings); // dim inferred
 * const batch = await vectors.collate(items);          // [N, dim] float32
 * const [v1, v2] = vectors.views(batch, new Generator(0));
 * const y = vectors.createEncoder().forward(v1);       // [N, 128]
 */
export class VectorModality implements Modality<VectorItem> {
  readonly name = 'vector';
  readonly settings: Readonly<VectorSettings>;

  constructor(settings: VectorSettings) {
    this.settings = resolveSettings({ ...settings }, settings.dim);
  }

  get dim(): number {
    return this.settings.dim;
  }

  get featureDim(): number {
    return this.settings.featureDim;
  }

  /**
   * Stacks the items into [N, dim] float32. Throws a VectorInputError naming the first item that is
   * not an array, has another length, or holds a value that is not finite in float32.
   */
  async collate(items: VectorItem[]): Promise<Tensor> {
    const dim = this.dim;
    const data = new Float32Array(items.length * dim);
    items.forEach((item, index) => {
      const length = lengthOf(item, index);
      if (length !== dim) throw new VectorInputError(index, `has ${length} values, the modality's dim is ${dim}`);
      const row = data.subarray(index * dim, (index + 1) * dim);
      row.set(item);
      for (let j = 0; j < dim; j++) {
        // Checked after the float32 conversion, which turns strings into numbers or NaN and 1e39 into Infinity.
        if (!Number.isFinite(row[j]!) || (Array.isArray(item) && typeof item[j] !== 'number')) {
          throw new VectorInputError(index, `value ${j} is ${describe(item[j])}, not a finite float32 number`);
        }
      }
    });
    return tensor(data, { shape: [items.length, dim] });
  }

  /** Two views with the configured perturbations, both drawn from `generator`. */
  views(batch: Tensor, generator: Generator): [Tensor, Tensor] {
    this.#checkBatch(batch, 'views');
    return [vectorView(batch, this.settings.view1, generator), vectorView(batch, this.settings.view2, generator)];
  }

  /** The embeddings themselves. */
  evalInput(batch: Tensor): Tensor {
    this.#checkBatch(batch, 'evalInput');
    return batch;
  }

  createEncoder(): TensorModule {
    return vectorAdapter(this.dim, { hiddenDims: this.settings.hiddenDims, featureDim: this.featureDim });
  }

  /** Nothing to end: the adapter holds no workers. */
  async close(): Promise<void> {}

  toJSON(): ModalitySpec {
    const { dim, featureDim, hiddenDims, view1, view2 } = this.settings;
    return { name: this.name, settings: { dim, featureDim, hiddenDims: [...hiddenDims], view1: { ...view1 }, view2: { ...view2 } } };
  }

  #checkBatch(batch: Tensor, method: string): void {
    const shape = batch.shape;
    if (shape.length !== 2 || shape[1] !== this.dim) {
      throw new RangeError(`vector modality ${method}: expected a batch [N, ${this.dim}], got shape [${shape.join(', ')}]`);
    }
  }
}

/**
 * The vector modality's factory. fit() takes the dim from the settings or else from the first
 * training item, and checks that every training item has it.
 *
 * @example
 * const m = await vectorModality.fit({ hiddenDims: [512] }, [[0.1, 0.2, ...], ...]);
 * const again = vectorModality.restore(JSON.parse(JSON.stringify(m.toJSON())));
 */
export const vectorModality: ModalityFactory<VectorItem> = {
  name: 'vector',
  // A JSONL record's `vector` (src/data/jsonl.ts keeps it as extra.vector).
  rawItems: (item) => (item.extra?.vector === undefined ? [] : [item.extra.vector as VectorItem]),
  readEmbedInputs: (input) => readVectorEmbedInputs(input),

  async fit(settings: Record<string, unknown>, trainingItems: VectorItem[]): Promise<VectorModality> {
    let dim = settings.dim;
    if (dim === undefined) {
      if (trainingItems.length === 0) {
        throw new RangeError('vector modality: settings give no dim and there are no training items to infer it from; set settings.dim');
      }
      dim = lengthOf(trainingItems[0], 0);
    }
    const resolved = resolveSettings({ ...settings, dim: undefined }, positiveInt(dim, 'dim'));
    trainingItems.forEach((item, index) => {
      const length = lengthOf(item, index);
      if (length !== resolved.dim) {
        throw new VectorInputError(
          index,
          `has ${length} values, expected ${resolved.dim} (${settings.dim === undefined ? 'as item 0' : 'settings.dim'})`,
        );
      }
    });
    return new VectorModality(resolved);
  },

  restore(spec: ModalitySpec): VectorModality {
    if (spec.name !== 'vector') throw new RangeError(`vectorModality.restore: the spec is for modality '${spec.name}', not 'vector'`);
    if (spec.settings.dim === undefined) throw new RangeError('vectorModality.restore: the spec has no settings.dim');
    return new VectorModality(resolveSettings({ ...spec.settings, dim: undefined }, positiveInt(spec.settings.dim, 'dim')));
  },
};
