// Symmetric InfoNCE as CLIP trains it (Radford et al. 2021, arXiv:2103.00020, Fig. 3): the cosine
// similarities of the N paired embeddings, scaled by a learned temperature, are the logits of an
// N-way classification of the true partner, solved in both directions and averaged. "The learnable
// temperature parameter τ was initialized to the equivalent of 0.07 ... and clipped to prevent
// scaling the logits by more than 100" (§2.5). Here it is the contrastive baseline and an optional
// extra term beside heterogeneous BYOL (see loss.ts).
import { arange, noGrad, scalar, tidy, F, type Tensor } from '../engine/index.js';
import { Module } from '../nn/index.js';
import { checkMask, graphZero, presentRows, takeRows } from './rows.js';

export interface LogitScaleOptions {
  /** exp(logScale) at the start: 1/τ with CLIP's τ = 0.07 (default 1/0.07 ≈ 14.3). */
  initialScale?: number;
  /** The largest scale the logits get (default 100, CLIP's). */
  maxScale?: number;
}

/**
 * CLIP's learnable inverse temperature, stored as its log (parameter `logit_scale`, open_clip's
 * name) so that it stays positive. forward() returns exp(min(logScale, log maxScale)).
 *
 * @example
 * const logitScale = new LogitScale();           // logScale = log(1/0.07)
 * optimizer = new AdamW([...model.onlineParameters(), ...logitScale.parameters()]);
 * // after each optimizer step, as open_clip does:
 * logitScale.clamp_();
 */
export class LogitScale extends Module {
  /** log(maxScale): the most forward() lets through, and where clamp_() puts the parameter. */
  readonly maxLogScale: number;

  constructor(options: LogitScaleOptions = {}) {
    super();
    const initial = options.initialScale ?? 1 / 0.07;
    const max = options.maxScale ?? 100;
    if (!(initial > 0 && Number.isFinite(initial))) throw new RangeError(`LogitScale: initialScale must be positive, got ${initial}`);
    if (!(max >= initial && Number.isFinite(max))) {
      throw new RangeError(`LogitScale: maxScale must be finite and at least initialScale (${initial}), got ${max}`);
    }
    this.maxLogScale = Math.log(max);
    this.registerParameter('logit_scale', scalar(Math.log(initial)));
  }

  /** The trained parameter, log of the scale (0-d). */
  get logScale(): Tensor {
    return this.param('logit_scale');
  }

  /** The scale the logits are multiplied by, exp(min(logScale, log maxScale)) (0-d, with gradient). */
  override forward(): Tensor {
    return this.logScale.clamp(null, this.maxLogScale).exp();
  }

  /** Puts the parameter back into [0, log maxScale] in place (open_clip clamps after every step). */
  clamp_(): void {
    noGrad(() => this.logScale.clamp_(0, this.maxLogScale));
  }
}

export interface InfoNceResult {
  /** ½ [CE(logits, I) + CE(logitsᵀ, I)] over the paired rows; 0 when there are none. */
  loss: Tensor;
  /** The scale used, detached (0-d), for logging. */
  scale: Tensor;
}

/**
 * CLIP's symmetric InfoNCE between row-paired embeddings a [N, d] and b [N, d]: logits =
 * s · āb̄ᵀ over the L2-normalised rows, row i's positive is column i, cross-entropy over rows
 * (a→b) and over columns (b→a), averaged. `paired` (bool [N]) keeps only the rows where both
 * embeddings exist; the others are neither anchors nor negatives.
 *
 * @example
 * const { loss, scale } = symmetricInfoNce(imageEmbeddings, textEmbeddings, logitScale, bothPresent);
 * symmetricInfoNce(a, b, 1 / 0.07).loss; // a fixed temperature
 */
export function symmetricInfoNce(a: Tensor, b: Tensor, logitScale: LogitScale | number, paired?: Tensor): InfoNceResult {
  const [shapeA, shapeB] = [a.shape, b.shape];
  if (shapeA.length !== 2 || shapeB.length !== 2 || shapeA[0] !== shapeB[0] || shapeA[1] !== shapeB[1]) {
    throw new RangeError(
      `symmetricInfoNce: a and b must both be [N, d] with the same N and d, got a [${shapeA.join(', ')}] and b [${shapeB.join(', ')}]`,
    );
  }
  if (typeof logitScale === 'number' && !(logitScale > 0 && Number.isFinite(logitScale))) {
    throw new RangeError(`symmetricInfoNce: a fixed logit scale must be positive and finite, got ${logitScale}`);
  }
  const n = shapeA[0]!;
  if (paired !== undefined) checkMask(paired, n, 'symmetricInfoNce: paired');
  return tidy(() => {
    const scale = typeof logitScale === 'number' ? scalar(logitScale, { dtype: a.dtype, device: a.device }) : logitScale.forward();
    const rows = presentRows(paired, n);
    if (rows.kind === 'none') return { loss: graphZero(a, b), scale: scale.detach() };
    const aBar = F.normalize(takeRows(a, rows), 1);
    const bBar = F.normalize(takeRows(b, rows), 1);
    const logits = aBar.matmul(bBar.t()).mul(scale);
    const labels = arange(aBar.shape[0]!, undefined, 1, { device: a.device });
    const loss = F.crossEntropy(logits, labels).add(F.crossEntropy(logits.t(), labels)).div(2);
    return { loss, scale: scale.detach() };
  });
}
