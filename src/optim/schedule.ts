// Learning-rate schedules. BYOL (Grill et al. 2020, arXiv:2006.07733, Appendix C): "the learning
// rate is linearly increased [from 0] for the first 10 epochs and then decayed with a cosine decay
// schedule without restarts", the base rate scaled as lr = base × batchSize / 256 (Goyal et al.
// 2017). The formula follows BYOL's released learning_schedule(): lr(t) = peak·t/warmup during
// warm-up, then final + (peak − final)·½(1 + cos(π·(t − warmup)/(total − warmup))).
import type { Optimizer, GroupHyperparameters } from './optimizer.js';

/** BYOL's linear scaling rule: base × batchSize / 256. */
export function scaleLr(base: number, batchSize: number): number {
  if (!(base >= 0) || !Number.isFinite(base)) throw new RangeError(`scaleLr: base must be a finite number ≥ 0, got ${base}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new RangeError(`scaleLr: batchSize must be a positive integer, got ${batchSize}`);
  return (base * batchSize) / 256;
}

export interface WarmupCosineOptions {
  /** The rate reached at the end of warm-up. */
  peakLr: number;
  /** Steps of linear warm-up (0: start the cosine at once). */
  warmupSteps: number;
  /** Steps in the whole run; from here on the rate stays at finalLr. */
  totalSteps: number;
  /** Where the cosine ends (default 0). */
  finalLr?: number;
  /** Where warm-up starts (default 0, as BYOL). */
  startLr?: number;
}

function checkWarmupCosine(o: WarmupCosineOptions): void {
  const bad = (msg: string): never => {
    throw new RangeError(`warmupCosine: ${msg}`);
  };
  for (const key of ['peakLr', 'finalLr', 'startLr'] as const) {
    const v = o[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) bad(`${key} must be a finite number ≥ 0, got ${v}`);
  }
  if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) bad(`warmupSteps must be an integer ≥ 0, got ${o.warmupSteps}`);
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < o.warmupSteps) {
    bad(`totalSteps must be an integer ≥ warmupSteps (${o.warmupSteps}), got ${o.totalSteps}`);
  }
}

/**
 * The learning rate at `step` (0-based) of a linear warm-up followed by a cosine decay.
 *
 * @example
 * warmupCosineLr(0, { peakLr: 0.8, warmupSteps: 10, totalSteps: 110 });  // 0
 * warmupCosineLr(10, { peakLr: 0.8, warmupSteps: 10, totalSteps: 110 }); // 0.8
 * warmupCosineLr(60, { peakLr: 0.8, warmupSteps: 10, totalSteps: 110 }); // 0.4
 */
export function warmupCosineLr(step: number, options: WarmupCosineOptions): number {
  checkWarmupCosine(options);
  if (!(step >= 0)) throw new RangeError(`warmupCosineLr: step must be ≥ 0, got ${step}`);
  const { peakLr, warmupSteps, totalSteps, finalLr = 0, startLr = 0 } = options;
  if (step < warmupSteps) return startLr + ((peakLr - startLr) * step) / warmupSteps;
  const decaySteps = totalSteps - warmupSteps;
  if (decaySteps === 0) return peakLr;
  const progress = Math.min(step - warmupSteps, decaySteps) / decaySteps;
  return finalLr + (peakLr - finalLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * warmupCosineLr with its options bound: a schedule to hand to LrScheduler.
 *
 * @example
 * const lrAt = warmupCosine({ peakLr: scaleLr(0.2, 4096), warmupSteps: 10 * stepsPerEpoch, totalSteps });
 */
export function warmupCosine(options: WarmupCosineOptions): (step: number) => number {
  checkWarmupCosine(options);
  const bound = { ...options };
  return (step) => warmupCosineLr(step, bound);
}

/**
 * Sets the optimizer's group learning rates from a schedule: lrAt(step, groupIndex). It sets the
 * rate for step 0 when made; call step() after each optimizer step.
 *
 * @example
 * const scheduler = new LrScheduler(opt, warmupCosine({ peakLr: 0.8, warmupSteps: 500, totalSteps: 10_000 }));
 * for (...) { loss.backward(); opt.step(); opt.zeroGrad(); scheduler.step(); }
 */
export class LrScheduler {
  #step = 0;

  constructor(
    readonly optimizer: Optimizer<GroupHyperparameters>,
    readonly lrAt: (step: number, groupIndex: number) => number,
  ) {
    this.#apply();
  }

  /** The step whose rate the groups hold now. */
  get currentStep(): number {
    return this.#step;
  }

  /** Advances one step and sets the rates for it. */
  step(): void {
    this.setStep(this.#step + 1);
  }

  /** Jumps to a step (when resuming) and sets its rates. */
  setStep(step: number): void {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`LrScheduler.setStep: step must be an integer ≥ 0, got ${step}`);
    this.#step = step;
    this.#apply();
  }

  /** The rates the groups hold now. */
  currentLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { step: number } {
    return { step: this.#step };
  }

  loadStateDict(state: { step: number }): void {
    this.setStep(state.step);
  }

  #apply(): void {
    this.optimizer.paramGroups.forEach((group, i) => {
      const lr = this.lrAt(this.#step, i);
      if (!Number.isFinite(lr) || lr < 0)
        throw new RangeError(`LrScheduler: the schedule gave lr ${lr} for group ${i} at step ${this.#step}`);
      group.lr = lr;
    });
  }
}
