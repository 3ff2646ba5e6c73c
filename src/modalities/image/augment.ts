// BYOL's image views (Grill et al. 2020, arXiv:2006.07733, Appendix B, Table 6), batched: every
// transform draws its parameters per image from one seeded Generator and runs as a few libtorch
// ops over the whole batch. Two presets give the paper's asymmetric views: view 1 always blurs and
// never solarizes; view 2 blurs with p = 0.1 and solarizes with p = 0.2.
import { F, op, rand, stack, tensor, tidy, where, zeros, Generator, type Tensor } from '../../engine/index.js';
import { adjustBrightness, adjustContrast, adjustHue, adjustSaturation, grayscale, solarize } from './color.js';

const ops = {
  affineGrid: op('aten::affine_grid_generator'),
  gridSample: op('aten::grid_sampler'),
};

export interface ViewConfig {
  /** Output side length in pixels. */
  size: number;
  /** Random resized crop: area fraction and aspect-ratio ranges (torchvision's defaults). */
  cropScale: [number, number];
  cropRatio: [number, number];
  flipP: number;
  colorJitterP: number;
  /** Maximum jitter strengths, as torchvision's ColorJitter(brightness, contrast, saturation, hue). */
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  grayscaleP: number;
  blurP: number;
  /** Gaussian blur σ range, in pixels; the kernel spans about 10% of the image, as in the paper. */
  blurSigma: [number, number];
  solarizeP: number;
  /** Per-channel normalisation applied last; empty arrays skip it. */
  mean: number[];
  std: number[];
}

/** A view's augmentations: a ViewConfig without its output size and normalisation (the config's `image.view1`/`view2`). */
export type ViewAugmentations = Omit<ViewConfig, 'size' | 'mean' | 'std'>;

/** BYOL's first view's augmentations (Table 6, τ): blur always, no solarization. */
export const BYOL_VIEW1: Readonly<ViewAugmentations> = Object.freeze<ViewAugmentations>({
  cropScale: [0.08, 1],
  cropRatio: [3 / 4, 4 / 3],
  flipP: 0.5,
  colorJitterP: 0.8,
  brightness: 0.4,
  contrast: 0.4,
  saturation: 0.2,
  hue: 0.1,
  grayscaleP: 0.2,
  blurP: 1.0,
  blurSigma: [0.1, 2.0],
  solarizeP: 0.0,
});

/** BYOL's second view's augmentations (Table 6, τ′): blur with p = 0.1, solarize with p = 0.2. */
export const BYOL_VIEW2: Readonly<ViewAugmentations> = Object.freeze({ ...BYOL_VIEW1, blurP: 0.1, solarizeP: 0.2 });

/**
 * The config's default views for aligning images with captions, both views alike: a crop of 50–100%
 * of the area, a flip and ±0.2 brightness, contrast and saturation; no hue, grayscale, blur or
 * solarize. Captions name colours and small details ("a red heart") that BYOL's views teach the
 * image encoder to ignore. On the icon data set (docs/align.md, issue 18) they lifted the default
 * objective's test rsum by 38% on the held-out concepts (two seeds) and cost about 5% on a
 * collection of other drawing styles; the validation split chose them (+27%).
 */
export const ALIGNMENT_VIEW: Readonly<ViewAugmentations> = Object.freeze<ViewAugmentations>({
  cropScale: [0.5, 1],
  cropRatio: [3 / 4, 4 / 3],
  flipP: 0.5,
  colorJitterP: 1,
  brightness: 0.2,
  contrast: 0.2,
  saturation: 0.2,
  hue: 0,
  grayscaleP: 0,
  blurP: 0,
  blurSigma: [0.1, 2.0],
  solarizeP: 0,
});

/** BYOL's first view (Table 6, τ): blur always, no solarization. */
export function byolView1(size: number, channels = 3): ViewConfig {
  return { size, ...copy(BYOL_VIEW1), ...imagenetNormalisation(channels) };
}

/** BYOL's second view (Table 6, τ′): blur with p = 0.1, solarize with p = 0.2. */
export function byolView2(size: number, channels = 3): ViewConfig {
  return { size, ...copy(BYOL_VIEW2), ...imagenetNormalisation(channels) };
}

/** ImageNet's channel statistics for RGB; 0.5 ± 0.5 for greyscale. */
function imagenetNormalisation(channels: number): Pick<ViewConfig, 'mean' | 'std'> {
  return channels === 1 ? { mean: [0.5], std: [0.5] } : { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
}

/** The augmentations with their ranges copied, so a view never shares an array with the frozen presets. */
function copy(a: Readonly<ViewAugmentations>): ViewAugmentations {
  return { ...a, cropScale: [...a.cropScale], cropRatio: [...a.cropRatio], blurSigma: [...a.blurSigma] };
}

/** Uniform draws in [low, high), one per image. */
function uniform(n: number, low: number, high: number, g: Generator): Tensor {
  return rand([n], { generator: g, device: g.device })
    .mul(high - low)
    .add(low);
}

/** A per-image coin with probability p, shaped [N, 1, 1, 1] for where(). */
function coin(n: number, p: number, g: Generator): Tensor {
  return rand([n], { generator: g, device: g.device }).lt(p).reshape(-1, 1, 1, 1);
}

/**
 * Random resized crop and horizontal flip in one resampling: each image's crop box (area fraction
 * from cropScale, log-uniform aspect ratio from cropRatio, clamped to the image) becomes an affine
 * map sampled bilinearly to size × size; a flip negates the map's x scale.
 */
export function randomResizedCropFlip(x: Tensor, c: Pick<ViewConfig, 'size' | 'cropScale' | 'cropRatio' | 'flipP'>, g: Generator): Tensor {
  const [n, ch, h, w] = x.shape as [number, number, number, number];
  // The whole image, unflipped, at its own size: bilinear sampling at the pixel centres would give
  // it back only up to float rounding of the grid, so it is returned as it is.
  const whole = c.cropScale[0] === 1 && c.cropRatio[0] === 1 && c.cropRatio[1] === 1 && c.flipP === 0;
  if (whole && h === c.size && w === c.size) return x.clone();
  return tidy(() => {
    const area = uniform(n, c.cropScale[0], c.cropScale[1], g);
    const logRatio = uniform(n, Math.log(c.cropRatio[0]), Math.log(c.cropRatio[1]), g);
    const ratio = logRatio.exp();
    // Crop width and height as fractions of the image's: w·h = area, w/h = ratio (in pixels).
    const cropW = area
      .mul(ratio)
      .mul(h / w)
      .sqrt()
      .clamp(0, 1);
    const cropH = area
      .div(ratio)
      .mul(w / h)
      .sqrt()
      .clamp(0, 1);
    // Centre anywhere that keeps the box inside, in normalised [-1, 1] coordinates.
    const cx = rand([n], { generator: g, device: g.device }).mul(2).sub(1).mul(cropW.rsub(1));
    const cy = rand([n], { generator: g, device: g.device }).mul(2).sub(1).mul(cropH.rsub(1));
    const flip = rand([n], { generator: g, device: g.device }).lt(c.flipP).float().mul(-2).add(1);
    const z = zeros([n], { device: g.device });
    // Output coordinates u map to input coordinates scale·u + centre, per axis.
    const theta = stack([cropW.mul(flip), z, cx, z, cropH, cy], 1).reshape(n, 2, 3);
    const grid = ops.affineGrid(theta, [n, ch, c.size, c.size], false);
    return ops.gridSample(x, grid, 0, 1, false); // bilinear, border padding
  });
}

/** torchvision's ColorJitter with per-image factors, applied to each image with probability p. */
export function colorJitter(
  x: Tensor,
  c: Pick<ViewConfig, 'colorJitterP' | 'brightness' | 'contrast' | 'saturation' | 'hue'>,
  g: Generator,
): Tensor {
  const n = x.shape[0]!;
  return tidy(() => {
    const steps: ((t: Tensor) => Tensor)[] = [];
    if (c.brightness > 0) {
      const f = uniform(n, Math.max(0, 1 - c.brightness), 1 + c.brightness, g);
      steps.push((t) => adjustBrightness(t, f));
    }
    if (c.contrast > 0) {
      const f = uniform(n, Math.max(0, 1 - c.contrast), 1 + c.contrast, g);
      steps.push((t) => adjustContrast(t, f));
    }
    if (c.saturation > 0) {
      const f = uniform(n, Math.max(0, 1 - c.saturation), 1 + c.saturation, g);
      steps.push((t) => adjustSaturation(t, f));
    }
    if (c.hue > 0) {
      const f = uniform(n, -c.hue, c.hue, g);
      steps.push((t) => adjustHue(t, f));
    }
    // torchvision applies the four in a random order; here one order is drawn per batch.
    const order = rand([steps.length], { generator: g, device: g.device }).argsort().toFlatArray();
    const jittered = order.reduce((t, i) => steps[i]!(t), x);
    return where(coin(n, c.colorJitterP, g), jittered, x);
  });
}

export function randomGrayscale(x: Tensor, p: number, g: Generator): Tensor {
  if (x.shape[1] === 1) return x.clone(); // already grey; drawing keeps the random stream aligned
  return tidy(() => where(coin(x.shape[0]!, p, g), grayscale(x).expandAs(x), x));
}

/**
 * Gaussian blur with σ drawn per image, kernel size about 10% of the image (odd, at least 3),
 * as a separable depthwise convolution with reflect padding, applied with probability p.
 */
export function randomGaussianBlur(x: Tensor, p: number, sigmaRange: [number, number], g: Generator): Tensor {
  const [n, ch, h, w] = x.shape as [number, number, number, number];
  return tidy(() => {
    const apply = coin(n, p, g);
    const sigma = uniform(n, sigmaRange[0], sigmaRange[1], g);
    const radius = Math.max(1, Math.floor(Math.round(0.1 * Math.min(h, w)) / 2));
    const offsets = tensor(
      Array.from({ length: 2 * radius + 1 }, (_, i) => i - radius),
      { device: x.device },
    );
    const kernel = offsets.square().unsqueeze(0).div(sigma.square().mul(-2).unsqueeze(1)).exp(); // [n, k]
    const normalised = kernel.div(kernel.sum(1, true));
    const perChannel = normalised
      .unsqueeze(1)
      .expand(n, ch, 2 * radius + 1)
      .reshape(n * ch, 1, 1, 2 * radius + 1);
    const planes = x.reshape(1, n * ch, h, w);
    const horizontal = F.conv2d(F.pad(planes, [radius, radius, 0, 0], 'reflect'), perChannel, null, { groups: n * ch });
    const vertical = F.conv2d(F.pad(horizontal, [0, 0, radius, radius], 'reflect'), perChannel.transpose(2, 3), null, { groups: n * ch });
    return where(apply, vertical.reshape(n, ch, h, w), x);
  });
}

export function randomSolarize(x: Tensor, p: number, g: Generator): Tensor {
  return tidy(() => where(coin(x.shape[0]!, p, g), solarize(x), x));
}

export function normalizeChannels(x: Tensor, mean: number[], std: number[]): Tensor {
  if (mean.length === 0) return x.clone();
  const device = x.device;
  return tidy(() => x.sub(tensor(mean, { device }).reshape(1, -1, 1, 1)).div(tensor(std, { device }).reshape(1, -1, 1, 1)));
}

/**
 * One augmented view of a batch: uint8 [N, C, H, W] (or float in [0, 1]) → float [N, C, size, size].
 *
 * @example
 * const g = new Generator(0);
 * const [v1, v2] = [augmentView(batch, byolView1(28, 1), g), augmentView(batch, byolView2(28, 1), g)];
 */
export function augmentView(images: Tensor, c: ViewConfig, g: Generator): Tensor {
  return tidy(() => {
    let x = images.dtype === 'uint8' ? images.float().div(255) : images.float();
    x = randomResizedCropFlip(x, c, g);
    x = colorJitter(x, c, g);
    x = randomGrayscale(x, c.grayscaleP, g);
    x = randomGaussianBlur(x, c.blurP, c.blurSigma, g);
    x = randomSolarize(x, c.solarizeP, g);
    return normalizeChannels(x, c.mean, c.std);
  });
}
