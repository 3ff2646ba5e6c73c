// The image modality: file paths or decoded uint8 pixels in, BYOL's two asymmetric views
// (augment.ts) for training, normalised pixels for evaluation, and an encoder: a SmallCnn, a CIFAR
// ResNet-18, or an ImageNet ResNet-18/34/50 that loads torchvision's and timm's weights
// (settings.weights, pretrained.ts).
//
// Raw input. An item is either a file path (decoded, resized to `size` and flattened onto white
// on an ImageDecodePool) or uint8 pixels already decoded: [C, size, size] for one image or
// [N, C, size, size] for several. The training loop takes the second form: ManifestLoader
// already yields uint8 [N, C, size, size] batches, which are this modality's collated form, so
// the trainer hands them straight to views() (collate([images]) returns it unchanged).
// Paths are for everything else: embedding a folder, a query image in a server, small tests.
import { cat, tensor, tidy, Tensor, zeros, type Generator } from '../../engine/index.js';
import type { TensorModule } from '../../nn/index.js';
import { ImageDecodePool } from '../../data/image_pool.js';
import { ImageDecodeError, type ImageFit } from '../../data/image_decode.js';
import type { Modality, ModalityFactory, ModalitySpec } from '../modality.js';
import { readImageEmbedInputs } from '../embed_inputs.js';
import { augmentView, byolView1, byolView2, normalizeChannels, type ViewConfig } from './augment.js';
import { buildImageEncoder, IMAGE_ENCODERS, type ImageEncoder, type ImageEncoderName } from './encoders.js';
import { loadPretrainedWeights, type PretrainedLoad } from './pretrained.js';

/** A file path, or decoded uint8 pixels [C, size, size] or [N, C, size, size]. */
export type ImageInput = string | Tensor;

/** Changes to one of BYOL's view presets (byolView1/byolView2); the size is the modality's. */
export type ViewOverrides = Partial<Omit<ViewConfig, 'size'>>;

export { IMAGE_ENCODERS, type ImageEncoderName };

/** The image modality's settings; every field has a default. */
export interface ImageModalitySettings {
  /** Side length of the model's square input, in pixels (default 64, the icon data set's). */
  size: number;
  /** 3 (RGB, default) or 1 (greyscale). */
  channels: 1 | 3;
  /** How files are made square: 'cover' (default; scale, centre-crop) or 'fill' (stretch). */
  fit: ImageFit;
  /**
   * 'small-cnn' (default; 128-d, for 28–64 px), 'resnet18' (CIFAR-style, 512·widthMultiplier-d), or
   * an ImageNet ResNet with torchvision's layout: 'resnet18-imagenet', 'resnet34' (512-d), 'resnet50' (2048-d).
   */
  encoder: ImageEncoderName;
  /** The CIFAR ResNet-18's channel multiplier (default 1); must be 1 for the others. */
  widthMultiplier: number;
  /**
   * A safetensors state dict loaded into every encoder this modality creates (torchvision's or
   * timm's names for the ImageNet ResNets; `fc.*` is skipped); default none (random initialisation).
   */
  weights?: string;
  /** Overrides of byolView1 (always blurred, never solarized); default none. */
  view1: ViewOverrides;
  /** Overrides of byolView2 (blur p = 0.1, solarize p = 0.2); default none. */
  view2: ViewOverrides;
}

/** Runtime options that are not part of the saved modality. */
export interface ImageModalityOptions {
  /** Pool that decodes path items (shared, so close() leaves it open); default: a pool of its own, made on first use. */
  pool?: ImageDecodePool;
  /** Workers of its own pool; default ImageDecodePool.defaultSize(). */
  poolSize?: number;
  /**
   * Load settings.weights into each encoder created (default true). A modality restored from a
   * checkpoint does not: the checkpoint holds the trained weights, and the file need not exist.
   */
  loadWeights?: boolean;
}

const DEFAULTS: Required<Omit<ImageModalitySettings, 'weights'>> = {
  size: 64,
  channels: 3,
  fit: 'cover',
  encoder: 'small-cnn',
  widthMultiplier: 1,
  view1: {},
  view2: {},
};

const KNOWN_FIELDS: readonly string[] = [...Object.keys(DEFAULTS), 'weights'];

/**
 * @example
 * const image = new ImageModality({ size: 64, encoder: 'resnet18', widthMultiplier: 0.5 });
 * const batch = await image.collate(['a.png', 'b.png']);      // uint8 [2, 3, 64, 64]
 * const [v1, v2] = image.views(batch, new Generator(0));       // float [2, 3, 64, 64] each
 * const y = image.createEncoder().forward(image.evalInput(batch)); // [2, 256]
 * await image.close();
 */
export class ImageModality implements Modality<ImageInput> {
  readonly name = 'image';
  readonly settings: Readonly<ImageModalitySettings>;
  /** The two views' full configurations (presets with the overrides applied). */
  readonly view1: Readonly<ViewConfig>;
  readonly view2: Readonly<ViewConfig>;
  #pool: ImageDecodePool | undefined;
  readonly #ownsPool: boolean;
  readonly #poolSize: number | undefined;
  /** An encoder built to learn featureDim, handed out by the next createEncoder() rather than wasted. */
  #spareEncoder: ImageEncoder | undefined;
  #featureDim: number | undefined;
  readonly #loadWeights: boolean;
  /** What the newest encoder built got from settings.weights (undefined without weights). */
  pretrained: PretrainedLoad | undefined;

  constructor(settings: Partial<ImageModalitySettings> = {}, options: ImageModalityOptions = {}) {
    this.settings = resolveSettings(settings);
    const { size, channels } = this.settings;
    this.view1 = withOverrides(byolView1(size, channels), this.settings.view1, 'view1', channels);
    this.view2 = withOverrides(byolView2(size, channels), this.settings.view2, 'view2', channels);
    this.#pool = options.pool;
    this.#ownsPool = options.pool === undefined;
    this.#poolSize = options.poolSize;
    this.#loadWeights = options.loadWeights ?? true;
  }

  /** Width of the encoder's output: 128 for small-cnn, round(512 · widthMultiplier) for resnet18, 512 or 2048 for the ImageNet ResNets. */
  get featureDim(): number {
    if (this.#featureDim === undefined) {
      this.#spareEncoder = this.#buildEncoder();
      this.#featureDim = this.#spareEncoder.featureDim;
    }
    return this.#featureDim;
  }

  /**
   * Items → uint8 [N, C, size, size], in item order (a 4-D tensor item contributes its N images).
   * Paths are decoded on the pool; a file that cannot be decoded throws an ImageDecodeError naming
   * it and the item's index. A lone [N, C, size, size] uint8 item is returned as it is, not copied.
   */
  async collate(items: ImageInput[]): Promise<Tensor> {
    const { size, channels, fit } = this.settings;
    if (!Array.isArray(items)) throw new TypeError('image collate: items must be an array of file paths or uint8 tensors');
    const paths: string[] = [];
    items.forEach((item, i) => {
      if (typeof item === 'string') paths.push(item);
      else if (item instanceof Tensor) this.#checkPixels(item, `collate: item ${i}`, { dims: [3, 4] });
      else
        throw new TypeError(`image collate: item ${i} is ${item === null ? 'null' : typeof item}; expected a file path or a uint8 tensor`);
    });
    if (items.length === 1 && items[0] instanceof Tensor && items[0].ndim === 4) return items[0];
    if (items.length === 0) return zeros([0, channels, size, size], { dtype: 'uint8' });

    let decoded: Uint8Array | undefined;
    if (paths.length > 0) {
      const batch = await this.#decodePool().decodeBatch(paths, { size, channels, fit });
      const first = batch.failures[0];
      if (first) {
        const { file, kind, problem } = first.error;
        const itemIndex = nthStringIndex(items, first.index);
        const more = batch.failures.length > 1 ? ` (and ${batch.failures.length - 1} more of the ${paths.length} files)` : '';
        throw new ImageDecodeError(file, kind, problem + more, { record: `item ${itemIndex}` }, { cause: first.error });
      }
      decoded = batch.pixels;
    }
    return tidy(() => {
      const fromFiles = decoded && tensor(decoded, { shape: [paths.length, channels, size, size] });
      if (fromFiles && paths.length === items.length) return fromFiles;
      let nextFile = 0;
      const pieces = items.map((item) =>
        typeof item === 'string' ? fromFiles!.narrow(0, nextFile++, 1) : item.ndim === 3 ? item.unsqueeze(0) : item,
      );
      return cat(pieces, 0);
    });
  }

  /** Two augmented views (float [N, C, size, size], normalised) of a uint8 batch; see augment.ts. */
  views(batch: Tensor, generator: Generator): [Tensor, Tensor] {
    this.#checkPixels(batch, 'views: batch', { dims: [4], float: true, anySize: true });
    return [augmentView(batch, this.view1, generator), augmentView(batch, this.view2, generator)];
  }

  /** The un-augmented input: float [N, C, size, size], scaled to [0, 1] and normalised with view 1's mean and std. */
  evalInput(batch: Tensor): Tensor {
    this.#checkPixels(batch, 'evalInput: batch', { dims: [4], float: true });
    return tidy(() => {
      const x = batch.dtype === 'uint8' ? batch.float().div(255) : batch.float();
      return normalizeChannels(x, this.view1.mean, this.view1.std);
    });
  }

  /** A fresh encoder, settings.encoder's, mapping [N, C, size, size] to [N, featureDim], with settings.weights loaded. */
  createEncoder(): TensorModule {
    const spare = this.#spareEncoder;
    this.#spareEncoder = undefined;
    return spare ?? this.#buildEncoder();
  }

  toJSON(): ModalitySpec {
    // settings.weights stays in the spec as a record of where training started; restore() does not read it.
    const { view1, view2, ...rest } = this.settings;
    return { name: this.name, settings: { ...rest, view1: { ...view1 }, view2: { ...view2 } } };
  }

  /** Ends the modality's own decode workers, if it started any (a pool passed in stays open). */
  async close(): Promise<void> {
    if (this.#ownsPool && this.#pool) await this.#pool.close();
    if (this.#ownsPool) this.#pool = undefined;
  }

  #decodePool(): ImageDecodePool {
    return (this.#pool ??= new ImageDecodePool({ size: this.#poolSize }));
  }

  #buildEncoder(): ImageEncoder {
    const { encoder, channels, widthMultiplier, weights } = this.settings;
    const built = buildImageEncoder(encoder, { channels, widthMultiplier });
    if (weights !== undefined && this.#loadWeights) this.pretrained = loadPretrainedWeights(built, weights);
    return built;
  }

  /**
   * Throws a TypeError naming `what` unless `t` holds this modality's images: uint8 (or float in
   * [0, 1] where `float`), one of `dims` dimensions, C channels, and size × size unless `anySize`.
   */
  #checkPixels(t: Tensor, what: string, accept: { dims: number[]; float?: boolean; anySize?: boolean }): void {
    const { size, channels } = this.settings;
    const shape = t.shape;
    const [c, h, w] = shape.slice(-3);
    const dtypeOk = t.dtype === 'uint8' || (accept.float === true && (t.dtype === 'float32' || t.dtype === 'float64'));
    const sizeOk = accept.anySize === true || (h === size && w === size);
    if (dtypeOk && accept.dims.includes(shape.length) && c === channels && sizeOk) return;
    const hw = accept.anySize ? 'H, W' : `${size}, ${size}`;
    const shapes = accept.dims.map((d) => (d === 3 ? `[${channels}, ${hw}]` : `[N, ${channels}, ${hw}]`)).join(' or ');
    throw new TypeError(
      `image ${what} is ${t.dtype} [${shape.join(', ')}]; expected ${accept.float ? 'uint8 (or float in [0, 1])' : 'uint8'} ${shapes}`,
    );
  }
}

/** The index among all items of the `n`th string item. */
function nthStringIndex(items: ImageInput[], n: number): number {
  let seen = -1;
  return items.findIndex((item) => typeof item === 'string' && ++seen === n);
}

/** Settings with defaults filled in; a TypeError names any unknown or ill-typed field. */
function resolveSettings(given: Partial<ImageModalitySettings>): ImageModalitySettings {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new TypeError('image settings must be an object');
  for (const key of Object.keys(given)) {
    if (!KNOWN_FIELDS.includes(key)) throw new TypeError(`image settings: unknown field "${key}"; known: ${KNOWN_FIELDS.join(', ')}`);
  }
  const s: ImageModalitySettings = { ...DEFAULTS, ...given };
  if (s.weights === undefined) delete s.weights; // no key at all, so specs without weights stay as they were
  const fail = (field: string, expected: string): never => {
    throw new TypeError(
      `image settings: "${field}" is ${JSON.stringify((s as unknown as Record<string, unknown>)[field])}, expected ${expected}`,
    );
  };
  if (!Number.isInteger(s.size) || s.size < 8 || s.size > 8192) fail('size', 'an integer in 8..8192');
  if (s.channels !== 1 && s.channels !== 3) fail('channels', '1 or 3');
  if (s.fit !== 'cover' && s.fit !== 'fill') fail('fit', "'cover' or 'fill'");
  if (!(IMAGE_ENCODERS as readonly string[]).includes(s.encoder)) fail('encoder', IMAGE_ENCODERS.map((e) => `'${e}'`).join(', '));
  if (typeof s.widthMultiplier !== 'number' || !(s.widthMultiplier > 0) || !Number.isFinite(s.widthMultiplier))
    fail('widthMultiplier', 'a positive number');
  if (s.widthMultiplier !== 1 && s.encoder !== 'resnet18') fail('widthMultiplier', `1: only 'resnet18' (CIFAR) has a width multiplier`);
  if (s.weights !== undefined && (typeof s.weights !== 'string' || s.weights === '')) fail('weights', 'the path of a safetensors file');
  for (const view of ['view1', 'view2'] as const) {
    if (typeof s[view] !== 'object' || s[view] === null || Array.isArray(s[view])) fail(view, 'an object of view settings');
  }
  return { ...s, view1: { ...s.view1 }, view2: { ...s.view2 } };
}

/** A view preset with overrides applied, each checked against the preset's own type of value. */
function withOverrides(preset: ViewConfig, overrides: ViewOverrides, view: string, channels: number): ViewConfig {
  const config: Record<string, unknown> = { ...preset };
  for (const [key, value] of Object.entries(overrides)) {
    const where = `image settings: ${view}.${key}`;
    if (key === 'size') throw new TypeError(`${where}: a view's size is the modality's "size" setting`);
    const current = config[key];
    if (current === undefined)
      throw new TypeError(
        `${where}: unknown view setting; known: ${Object.keys(preset)
          .filter((k) => k !== 'size')
          .join(', ')}`,
      );
    const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (typeof current === 'number') {
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new TypeError(`${where} is ${JSON.stringify(value)}, expected a number`);
      if (key.endsWith('P') && !(value >= 0 && value <= 1)) throw new RangeError(`${where} is ${value}, expected a probability in [0, 1]`);
    } else if (key === 'mean' || key === 'std') {
      if (!isNumbers(value) || (value.length !== channels && value.length !== 0)) {
        throw new TypeError(
          `${where} is ${JSON.stringify(value)}, expected ${channels} numbers (one per channel) or [] to skip normalisation`,
        );
      }
    } else if (!isNumbers(value) || value.length !== 2 || value[0]! > value[1]!) {
      throw new TypeError(`${where} is ${JSON.stringify(value)}, expected a range [low, high]`);
    }
    config[key] = value;
  }
  const result = config as unknown as ViewConfig;
  if (result.mean.length !== result.std.length)
    throw new TypeError(`image settings: ${view}.mean and ${view}.std must have the same length`);
  return result;
}

/**
 * The image modality's factory: nothing is learned from data, so fit() only checks the settings.
 *
 * @example
 * const image = await imageModality.fit({ size: 64, encoder: 'small-cnn' }, []);
 * const again = imageModality.restore(image.toJSON());
 */
export const imageModality: ModalityFactory<ImageInput> = {
  name: 'image',
  rawItems: (item) => (item.image === undefined ? [] : [item.image]),
  readEmbedInputs: readImageEmbedInputs,
  async fit(settings: Record<string, unknown>): Promise<ImageModality> {
    return new ImageModality(settings as Partial<ImageModalitySettings>);
  },
  restore(spec: ModalitySpec): ImageModality {
    if (spec.name !== 'image') throw new TypeError(`imageModality.restore: the spec is for modality "${spec.name}", not "image"`);
    // A checkpoint holds the trained weights: resuming or loading a run never needs settings.weights.
    return new ImageModality(spec.settings as Partial<ImageModalitySettings>, { loadWeights: false });
  },
};
