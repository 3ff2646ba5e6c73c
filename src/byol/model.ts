// BYOL (Grill et al. 2020, arXiv:2006.07733): an online network (encoder f_θ, projector g_θ,
// predictor q_θ) learns to predict the target network's projection of another view of the same
// image; the target (f_ξ, g_ξ) is an exponential moving average of the online weights and gets no
// gradient. Generic over the encoder: anything mapping a batch to [N, featureDim].
import { cat, noGrad, tidy, F, type Tensor } from '../engine/index.js';
import { BatchNorm, Module, type TensorModule } from '../nn/index.js';
import { mlpHead, type HeadNorm } from './heads.js';
import { copyState, emaUpdate, tauAt } from './ema.js';
import { symmetricByolLoss } from './loss.js';

export interface ByolOptions {
  /** Width of the encoder's output (the representation y). */
  featureDim: number;
  projectionHiddenDim?: number;
  projectionDim?: number;
  predictionHiddenDim?: number;
  headNorm?: HeadNorm;
  /** τ_base: 0.996 for long runs (the paper), 0.99 for short ones. */
  tauBase?: number;
  /**
   * 'cosine' (the paper): τ rises from τ_base to 1 over training. 'constant': τ stays at τ_base,
   * as in lucidrains/byol-pytorch; on short runs the target then keeps following the online network.
   */
  tauSchedule?: 'cosine' | 'constant';
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
    this.tauBase = options.tauBase ?? 0.996;
    this.tauSchedule = options.tauSchedule ?? 'cosine';
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
    copyState(this.target, this.online);
    for (const p of this.target.parameters()) p.requiresGrad_(false);
    // The target normalises with its batch's statistics (it runs in training mode, as in the
    // paper) but its running statistics move only by the EMA, so they are not also averaged here.
    for (const m of this.target.modules()) if (m instanceof BatchNorm) m.momentum = 0;
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
    const tau = this.tauSchedule === 'constant' ? this.tauBase : tauAt(step, totalSteps, this.tauBase);
    emaUpdate(this.target, this.online, tau);
    return tau;
  }
}
