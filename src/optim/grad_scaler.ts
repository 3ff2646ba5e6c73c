// Loss scaling for float16 training, as torch.cuda.amp.GradScaler (Micikevicius et al. 2018,
// "Mixed Precision Training", arXiv:1710.03740, §3.2): float16's gradients underflow to zero below
// 6e-8, so the loss is multiplied by a large scale S before backward() and every gradient divided
// by S before the optimizer sees it. When a gradient overflowed (inf or NaN) the step is skipped
// and S halves; after `growthInterval` steps without one S doubles, so it stays near the largest
// value that does not overflow. Nothing here depends on the device: the same logic runs on the
// CPU in float32, where the tests inject the overflow.
import { noGrad, type Tensor } from '../engine/index.js';
import { nonFiniteKeys } from '../engine/finite.js';
import * as foreach from './foreach.js';

/** torch.cuda.amp.GradScaler's settings and defaults. */
export interface GradScalerOptions {
  /** The first scale: 2^16. */
  initScale?: number;
  /** The scale's factor after growthInterval steps in a row without an overflow: 2. */
  growthFactor?: number;
  /** The scale's factor after an overflow: 0.5. */
  backoffFactor?: number;
  /** Steps without an overflow before the scale grows: 2000. */
  growthInterval?: number;
}

/** What a resumed run needs to continue with the same scale. */
export interface GradScalerState {
  scale: number;
  /** Steps in a row without an overflow since the scale last changed. */
  growthTracker: number;
  /** Steps skipped so far because a gradient was not finite. */
  skippedSteps: number;
}

/**
 * Scales the loss, unscales the gradients, skips the steps whose gradients overflowed and adapts
 * the scale. The order of calls per step is torch's: scaleLoss → backward → unscale_ → (clip) →
 * step → update.
 *
 * @example
 * const scaler = new GradScaler();
 * scaler.scaleLoss(loss).backward();
 * const overflowed = scaler.unscale_(model.namedParameters());
 * if (overflowed.length === 0) clipGradNorm(model.parameters(), 1);
 * scaler.step(optimizer); // skipped when a gradient is inf or NaN
 * scaler.update();
 */
export class GradScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  #scale: number;
  #growthTracker = 0;
  #skippedSteps = 0;
  /** The parameters whose gradients were not finite at this step's unscale_, or null before it. */
  #overflowed: string[] | null = null;

  constructor(options: GradScalerOptions = {}) {
    this.#scale = options.initScale ?? 2 ** 16;
    this.growthFactor = options.growthFactor ?? 2;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    if (!(this.#scale > 0 && Number.isFinite(this.#scale)))
      throw new RangeError(`GradScaler: initScale must be a finite number > 0, got ${this.#scale}`);
    if (!(this.growthFactor > 1)) throw new RangeError(`GradScaler: growthFactor must be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1))
      throw new RangeError(`GradScaler: backoffFactor must be in (0, 1), got ${this.backoffFactor}`);
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval > 0))
      throw new RangeError(`GradScaler: growthInterval must be an integer > 0, got ${this.growthInterval}`);
  }

  /** The scale the next loss is multiplied by. */
  get scale(): number {
    return this.#scale;
  }

  /** Steps skipped so far because a gradient was not finite. */
  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  /** loss · scale, the tensor to call backward() on. */
  scaleLoss(loss: Tensor): Tensor {
    return loss.mul(this.#scale);
  }

  /**
   * Divides every gradient by the scale, in place, and returns the names of the parameters whose
   * gradients hold an inf or a NaN (empty when the step may go ahead). Call once per step, after
   * backward() and before clipping, so clipping sees the true gradients.
   */
  unscale_(parameters: Iterable<readonly [string, Tensor]>): string[] {
    if (this.#overflowed !== null) throw new Error('GradScaler.unscale_: already called this step; call update() after the step first');
    const grads: [string, Tensor][] = [];
    for (const [name, p] of parameters) {
      const g = p.grad;
      if (g !== null) grads.push([name, g]);
    }
    // 1/S is exact for a power-of-two scale (the default and every scale it moves to), so the
    // unscaled gradients equal those of unscaled training bit for bit (where neither under- nor overflows).
    if (grads.length > 0)
      noGrad(() =>
        foreach.mulScalar_(
          grads.map(([, g]) => g),
          1 / this.#scale,
        ),
      );
    this.#overflowed = nonFiniteKeys(grads);
    return this.#overflowed;
  }

  /** Runs optimizer.step() unless unscale_ found a non-finite gradient; returns whether it ran. */
  step(optimizer: { step(): void }): boolean {
    if (this.#overflowed === null) throw new Error('GradScaler.step: call unscale_ first, after backward()');
    if (this.#overflowed.length > 0) return false;
    optimizer.step();
    return true;
  }

  /**
   * Adapts the scale to this step's outcome (torch's _amp_update_scale_): after an overflow it
   * backs off and counts the step as skipped; after growthInterval clean steps in a row it grows.
   */
  update(): void {
    if (this.#overflowed === null) throw new Error('GradScaler.update: call unscale_ and step first');
    if (this.#overflowed.length > 0) {
      this.#scale *= this.backoffFactor;
      this.#growthTracker = 0;
      this.#skippedSteps++;
    } else if (++this.#growthTracker === this.growthInterval) {
      const grown = this.#scale * this.growthFactor;
      if (Number.isFinite(grown)) this.#scale = grown;
      this.#growthTracker = 0;
    }
    this.#overflowed = null;
  }

  stateDict(): GradScalerState {
    return { scale: this.#scale, growthTracker: this.#growthTracker, skippedSteps: this.#skippedSteps };
  }

  loadStateDict(state: GradScalerState): void {
    const { scale, growthTracker, skippedSteps } = state;
    if (!(scale > 0 && Number.isFinite(scale)))
      throw new RangeError(`GradScaler.loadStateDict: scale must be finite and > 0, got ${scale}`);
    for (const [name, v] of [
      ['growthTracker', growthTracker],
      ['skippedSteps', skippedSteps],
    ] as const)
      if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`GradScaler.loadStateDict: ${name} must be an integer ≥ 0, got ${v}`);
    this.#scale = scale;
    this.#growthTracker = growthTracker;
    this.#skippedSteps = skippedSteps;
    this.#overflowed = null;
  }
}
