// Colour operations on batches of images [N, C, H, W] in [0, 1], with per-image factors [N].
// They follow torchvision's tensor implementations (functional_tensor.py), so augmentations mean
// what users of torchvision expect; one-channel images pass through saturation and hue unchanged.
import { F, cat, stack, arange, where, onesLike, type Tensor } from '../../engine/index.js';

/** Per-image factor [N] shaped to broadcast over [N, C, H, W]. */
function perImage(factor: Tensor): Tensor {
  return factor.reshape(-1, 1, 1, 1);
}

/** Luma (ITU-R 601-2), as torchvision's rgb_to_grayscale: [N, 1, H, W]. */
export function grayscale(x: Tensor): Tensor {
  if (x.shape[1] === 1) return x;
  const [r, g, b] = F.split(x, 1, 1) as [Tensor, Tensor, Tensor];
  return r.mul(0.299).add(g.mul(0.587)).add(b.mul(0.114));
}

/** factor·x + (1 − factor)·other, clamped to [0, 1] (torchvision's _blend). */
function blend(x: Tensor, other: Tensor, factor: Tensor): Tensor {
  const f = perImage(factor);
  return x
    .mul(f)
    .add(other.mul(f.rsub(1)))
    .clamp(0, 1);
}

export function adjustBrightness(x: Tensor, factor: Tensor): Tensor {
  return x.mul(perImage(factor)).clamp(0, 1);
}

export function adjustContrast(x: Tensor, factor: Tensor): Tensor {
  const mean = grayscale(x).mean([1, 2, 3], true);
  return blend(x, mean, factor);
}

export function adjustSaturation(x: Tensor, factor: Tensor): Tensor {
  if (x.shape[1] === 1) return x;
  return blend(x, grayscale(x), factor);
}

/** Rotates hue by `shift` (a fraction of the colour circle, in [−0.5, 0.5]) through HSV. */
export function adjustHue(x: Tensor, shift: Tensor): Tensor {
  if (x.shape[1] === 1) return x;
  const [h, s, v] = rgbToHsv(x);
  const rotated = h.add(perImage(shift).squeeze(1)).remainder(1);
  return hsvToRgb(rotated, s, v);
}

function rgbToHsv(x: Tensor): [Tensor, Tensor, Tensor] {
  const [r, g, b] = F.split(x, 1, 1).map((t) => t.squeeze(1)) as [Tensor, Tensor, Tensor];
  const maxc = x.amax(1);
  const minc = x.amin(1);
  const flat = maxc.eq(minc); // grey pixels have no hue
  const chroma = maxc.sub(minc);
  const one = onesLike(maxc);
  const s = chroma.div(where(flat, one, maxc));
  const divisor = where(flat, one, chroma);
  const rc = maxc.sub(r).div(divisor);
  const gc = maxc.sub(g).div(divisor);
  const bc = maxc.sub(b).div(divisor);
  const isR = maxc.eq(r);
  const isG = maxc.eq(g).logicalAnd(isR.logicalNot());
  const isB = isR.logicalOr(maxc.eq(g)).logicalNot();
  const h = isR
    .float()
    .mul(bc.sub(gc))
    .add(isG.float().mul(rc.sub(bc).add(2)))
    .add(isB.float().mul(gc.sub(rc).add(4)));
  return [h.div(6).add(1).remainder(1), s, maxc];
}

function hsvToRgb(h: Tensor, s: Tensor, v: Tensor): Tensor {
  const sector = h.mul(6).floor();
  const f = h.mul(6).sub(sector);
  const i = sector.long().remainder(6);
  const p = v.mul(s.rsub(1)).clamp(0, 1);
  const q = v.mul(s.mul(f).rsub(1)).clamp(0, 1);
  const t = v.mul(s.mul(f.rsub(1)).rsub(1)).clamp(0, 1);
  // One-hot over the six sectors picks each channel's value: [N, 6, H, W].
  const mask = i
    .unsqueeze(1)
    .eq(arange(6, undefined, 1, { device: i.device }).reshape(1, 6, 1, 1))
    .to(v.dtype);
  const pick = (...vals: Tensor[]): Tensor => stack(vals, 1).mul(mask).sum(1, true);
  return cat([pick(v, q, p, p, t, v), pick(t, v, v, q, p, p), pick(p, p, t, v, v, q)], 1);
}

/** 1 − x where x ≥ threshold (torchvision's solarize). */
export function solarize(x: Tensor, threshold = 0.5): Tensor {
  return where(x.ge(threshold), x.rsub(1), x);
}
