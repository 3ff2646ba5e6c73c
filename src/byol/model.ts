// BYOL (Grill et al. 2020, arXiv:2006.07733): an online network (encoder f_θ, projector g_θ,
// predictor q_θ) learns to predict the target network's projection of another view of the same
// image; the target (f_ξ, g_ξ) is an exponential moving average of the online weights and gets no
// gradient. Generic over the encoder: anything mapping a batch to [N, featureDim].
import { cat, noGrad, tidy, F, type Tensor } from '../engine/index.js';
import { Module, type TensorModule } from '../nn/index.js';
import { mlpHead, type HeadNorm } from './heads.js';
import { emaSchedule, makeEmaTarget, updateEmaTarget, type EmaScheduleOptions } from './ema.js';
import { symmetricByolLoss } from './loss.js';

/** The network's sizes, and the τ schedule of its target (EmaScheduleOptions: τ_base 0.996, cosine). */
export interface ByolOptions extends EmaScheduleOptions {
  /** Width of the encoder's output (the representation y). */
  featureDim: number;
  projectionHiddenDim?: number;
  projectionDim?: number;
  predictionHiddenDim?: number;
  headNorm?: HeadNorm;
}

/** Encoder → projector (→ predictor, online only). */
export class ByolBranch extends Module {
  readonly encoder: TensorModule;
  readonly projector: TensorModule;
  readonly predictor: TensorModule | null;

  constructor(encoder: TensorModule, projector: TensorModule, predictor: TensorModule | null) {
    super();
    this.encoder = this.registerModule('encoder', encoder);
    this.projector = this.registerModule('projector', projector);
    this.predictor = predictor ? this.registerModule('predictor', predictor) : null;
  }

  /** The representation y = f(x), what downstream tasks use. */
  override forward(x: Tensor): Tensor {
    return this.encoder.forward(x);
  }
}

export interface ByolStepOutputs {
  loss: Tensor;
  /** Online projections of both views [2N, d], for the collapse monitor. */
  onlineProjections: Tensor;
}

/**
 * @example
 * const byol = new Byol(() => new SmallCnn(1), { featureDim: 128, tauBase: 0.99 });
 * const { loss } = byol.trainingStep(view1, view2);
 * loss.backward(); optimizer.step(); byol.updateTarget(step, totalSteps);
 */
export class Byol extends Module {
  readonly online: ByolBranch;
  readonly target: ByolBranch;
  readonly tauBase: number;
  readonly tauSchedule: 'cosine' | 'constant';

  /** makeEncoder is called twice: once for the online network, once for the target. */
  constructor(makeEncoder: () => TensorModule, options: ByolOptions) {
    super();
    ({ tauBase: this.tauBase, tauSchedule: this.tauSchedule } = emaSchedule(options));
    const head = (input: number, hidden: number | undefined): TensorModule =>
      mlpHead(input, { hiddenDim: hidden, outputDim: options.projectionDim, norm: options.headNorm });
    const projectionDim = options.projectionDim ?? 256;
    this.online = this.registerModule(
      'online',
      new ByolBranch(
        makeEncoder(),
        head(options.featureDim, options.projectionHiddenDim),
        head(projectionDim, options.predictionHiddenDim),
      ),
    );
    this.target = this.registerModule('target', new ByolBranch(makeEncoder(), head(options.featureDim, options.projectionHiddenDim), null));
    makeEmaTarget(this.target, this.online);
  }

  /** What the optimizer trains: the online network only. */
  onlineParameters(): Tensor[] {
    return this.online.parameters();
  }

  /** The representation of the online encoder (eval mode is the caller's choice). */
  override forward(x: Tensor): Tensor {
    return this.online.forward(x);
  }

  /**
   * The symmetric BYOL loss of two views [N, ...] of the same items. Both views pass through each
   * network in one batched forward, so BatchNorm sees 2N items.
   */
  trainingStep(view1: Tensor, view2: Tensor): ByolStepOutputs {
    const n = view1.shape[0]!;
    return tidy(() => {
      const both = cat([view1, view2]);
      const projections = this.online.projector.forward(this.online.encoder.forward(both));
      const predictions = this.online.predictor!.forward(projections);
      const targets = noGrad(() => this.target.projector.forward(this.target.encoder.forward(both)));
      const [q1, q2] = F.split(predictions, n) as [Tensor, Tensor];
      const [z1, z2] = F.split(targets, n) as [Tensor, Tensor];
      return { loss: symmetricByolLoss(q1, q2, z1, z2), onlineProjections: projections.detach() };
    });
  }

  /** ξ ← τ_k ξ + (1 − τ_k) θ with the configured τ schedule; returns τ_k. */
  updateTarget(step: number, totalSteps: number): number {
    return updateEmaTarget(this.target, this.online, this, step, totalSteps);
  }
}
