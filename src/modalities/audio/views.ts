// BYOL-A's views of normalised log-mel spectrograms (Niizumi et al. 2021, arXiv:2103.06695, §3.2),
// batched: mixup with another clip of the batch as background, then a random resize crop, then
// SpecAugment's frequency and time masks (Park et al. 2019, arXiv:1904.08779, §2), which BYOL-A
// leaves out and the issue asks for. Every parameter is drawn per clip from one Generator, a fixed
// number of draws per call whatever the values, so the same generator state gives the same views.
//
// Two departures from BYOL-A's code, both so that a batch is a few libtorch ops on any device:
// mixup's background is another clip of the same batch (BYOL-A keeps a memory bank of the last
// 2048 clips: state that would have to be checkpointed for exact resumes), and the crop is one
// affine grid sample per batch (BYOL-A crops each clip on a zero canvas and interpolates it back;
// sampling that canvas bilinearly, zeros outside the clip, is the same operation).
import { arange, op, rand, stack, tidy, zeros, type Generator, type Tensor } from '../../engine/index.js';

const ops = {
  affineGrid: op('aten::affine_grid_generator'),
  gridSample: op('aten::grid_sampler'),
};

/** One view's augmentations; {@link BYOLA_VIEW} holds BYOL-A's values. */
export interface AudioViewConfig {
  /** Mixup: the background's weight λ is uniform on [0, mixupRatio) per clip (BYOL-A: 0.4); 0 leaves it out. */
  mixupRatio: number;
  /** The crop's canvas as multiples of the spectrogram, [frequency, time] (BYOL-A: [1, 1.5]); the clip sits at its centre, zeros around. */
  virtualCropScale: [number, number];
  /** The crop's height as a fraction of the mel bands, uniform in this range (BYOL-A: [0.6, 1.5]); clamped to the canvas. */
  freqScale: [number, number];
  /** The crop's width as a fraction of the frames, uniform in this range (BYOL-A: [0.6, 1.5]); clamped to the canvas. */
  timeScale: [number, number];
  /** Frequency masks per clip (SpecAugment's mF), each 0..freqMaskWidth mel bands wide. */
  freqMasks: number;
  freqMaskWidth: number;
  /** Time masks per clip (SpecAugment's mT), each 0..timeMaskWidth frames wide. */
  timeMasks: number;
  timeMaskWidth: number;
}

/**
 * BYOL-A's mixup and crop, with one frequency mask of up to 8 of 64 bands and one time mask of up
 * to 20 frames (0.2 s at a 10 ms hop): SpecAugment's LibriSpeech-basic policy scaled to 64 bands.
 */
export const BYOLA_VIEW: Readonly<AudioViewConfig> = Object.freeze({
  mixupRatio: 0.4,
  virtualCropScale: [1, 1.5],
  freqScale: [0.6, 1.5],
  timeScale: [0.6, 1.5],
  freqMasks: 1,
  freqMaskWidth: 8,
  timeMasks: 1,
  timeMaskWidth: 20,
} as AudioViewConfig);

/** Uniform draws in [low, high), one per clip. */
function uniform(n: number, low: number, high: number, g: Generator): Tensor {
  return rand([n], { generator: g, device: g.device })
    .mul(high - low)
    .add(low);
}

/**
 * Mixes each clip with another clip of the batch in the linear (energy) domain:
 * log((1 − λ)·exp(x) + λ·exp(background)), λ uniform on [0, ratio). The background of clip i is
 * clip (i + k) mod N with k uniform on 1..N−1, never itself unless the batch has one clip.
 *
 * @example
 * const mixed = mixupWithBatch(logMels, 0.4, new Generator(0)); // same shape
 */
export function mixupWithBatch(x: Tensor, ratio: number, g: Generator): Tensor {
  const n = x.shape[0]!;
  return tidy(() => {
    const lambda = uniform(n, 0, ratio, g).reshape(n, 1, 1, 1);
    const shift = rand([n], { generator: g, device: g.device })
      .mul(Math.max(n - 1, 0))
      .floor()
      .add(1);
    const background = x.indexSelect(0, arange(0, n, 1, { device: x.device }).add(shift).remainder(Math.max(n, 1)).long());
    if (ratio === 0) return x.clone();
    // log-sum-exp of log-weighted terms: exact for λ = 0 (log 0 = −∞ drops the background).
    return stack([x.add(lambda.rsub(1).log()), background.add(lambda.log())], 0).logsumexp(0);
  });
}

/**
 * BYOL-A's random resize crop: the spectrogram [N, 1, F, T] is centred on a zero canvas of
 * virtualCropScale times its size; a box of freqScale·F × timeScale·T (whole bins and frames,
 * clamped to the canvas) is placed uniformly on the canvas and resized back to F × T, bilinearly
 * with aligned corners (BYOL-A's F.interpolate(align_corners=True)).
 */
export function randomResizeCrop(
  x: Tensor,
  c: Pick<AudioViewConfig, 'virtualCropScale' | 'freqScale' | 'timeScale'>,
  g: Generator,
): Tensor {
  const [n, channels, bins, frames] = x.shape as [number, number, number, number];
  return tidy(() => {
    const canvasBins = Math.floor(bins * c.virtualCropScale[0]);
    const canvasFrames = Math.floor(frames * c.virtualCropScale[1]);
    const h = uniform(n, c.freqScale[0], c.freqScale[1], g).mul(bins).floor().clamp(1, canvasBins);
    const w = uniform(n, c.timeScale[0], c.timeScale[1], g).mul(frames).floor().clamp(1, canvasFrames);
    const top = rand([n], { generator: g, device: g.device }).mul(h.rsub(canvasBins).add(1)).floor(); // 0..canvas − h
    const left = rand([n], { generator: g, device: g.device }).mul(w.rsub(canvasFrames).add(1)).floor();
    // With aligned corners, output pixel u ↦ canvas pixel top + u·(h − 1)/(F − 1), and canvas pixel
    // y ↦ input coordinate 2·(y − offset)/(F − 1) − 1; composed, an affine map per axis.
    const axis = (size: number, span: Tensor, start: Tensor, canvas: number): [Tensor, Tensor] => {
      const denominator = Math.max(size - 1, 1);
      const offset = Math.floor((canvas - size) / 2);
      const scale = span.sub(1).div(denominator);
      const shift = start.sub(offset).mul(2).add(span).sub(1).div(denominator).sub(1);
      return [scale, shift];
    };
    const [sy, ty] = axis(bins, h, top, canvasBins);
    const [sx, tx] = axis(frames, w, left, canvasFrames);
    const z = zeros([n], { device: x.device });
    const theta = stack([sx, z, tx, z, sy, ty], 1).reshape(n, 2, 3).to(x.device);
    const grid = ops.affineGrid(theta.to(x.dtype), [n, channels, bins, frames], true);
    return ops.gridSample(x, grid, 0, 0, true); // bilinear, zeros outside the clip, aligned corners
  });
}

/**
 * SpecAugment's masks along one axis of [N, 1, F, T] (2: mel bands, 3: frames): `count` bands per
 * clip, each of width uniform on 0..maxWidth (at most the axis) at a uniform start, set to 0 — the
 * training mean, as the spectrograms are normalised.
 */
export function maskBands(x: Tensor, dim: 2 | 3, count: number, maxWidth: number, g: Generator): Tensor {
  const n = x.shape[0]!;
  const size = x.shape[dim]!;
  return tidy(() => {
    let out = x;
    const positions = arange(0, size, 1, { device: x.device }).reshape(...(dim === 2 ? [1, 1, size, 1] : [1, 1, 1, size]));
    for (let k = 0; k < count; k++) {
      const width = uniform(n, 0, maxWidth + 1, g)
        .floor()
        .clamp(0, size)
        .reshape(n, 1, 1, 1);
      const start = rand([n], { generator: g, device: g.device }).reshape(n, 1, 1, 1).mul(width.rsub(size).add(1)).floor();
      const mask = positions.ge(start).logicalAnd(positions.lt(start.add(width)));
      out = out.maskedFill(mask, 0);
    }
    return out === x ? x.clone() : out;
  });
}

/**
 * A window of `frames` frames from each spectrogram of [N, 1, F, T], at a start drawn per clip
 * uniformly from 0..T − frames: the training views' random crop in time (the audio modality's
 * trainWindowSeconds), so that they hear more of a clip than the first clipSeconds that evaluation
 * keeps, and at shifted positions. One draw per call.
 *
 * @example
 * randomWindow(logMels401, 201, new Generator(0)).shape; // [N, 1, F, 201]
 */
export function randomWindow(x: Tensor, frames: number, g: Generator): Tensor {
  const [n, channels, bins, length] = x.shape as [number, number, number, number];
  if (!Number.isInteger(frames) || frames < 1 || frames > length)
    throw new RangeError(`audio randomWindow: a window of ${frames} frames does not fit spectrograms of ${length}`);
  return tidy(() => {
    const start = rand([n], { generator: g, device: g.device })
      .mul(length - frames + 1)
      .floor()
      .long()
      .to(x.device);
    const index = start.reshape(n, 1, 1, 1).add(arange(0, frames, 1, { device: x.device }).long().reshape(1, 1, 1, frames));
    return x.gather(3, index.expand(n, channels, bins, frames).contiguous());
  });
}

/**
 * One view of normalised log-mel spectrograms [N, 1, F, T]: mixup, random resize crop, frequency
 * masks, time masks, in that order (BYOL-A's order, masks last as in SpecAugment). Same shape.
 *
 * @example
 * const g = new Generator(0);
 * const [v1, v2] = [audioView(batch, BYOLA_VIEW, g), audioView(batch, BYOLA_VIEW, g)];
 */
export function audioView(x: Tensor, config: AudioViewConfig, g: Generator): Tensor {
  const shape = x.shape;
  if (shape.length !== 4 || shape[1] !== 1)
    throw new RangeError(`audio view: expected log-mel spectrograms [N, 1, F, T], got shape [${shape.join(', ')}]`);
  return tidy(() => {
    let v = mixupWithBatch(x, config.mixupRatio, g);
    v = randomResizeCrop(v, config, g);
    v = maskBands(v, 2, config.freqMasks, config.freqMaskWidth, g);
    return maskBands(v, 3, config.timeMasks, config.timeMaskWidth, g);
  });
}
