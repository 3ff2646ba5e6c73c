// Heterogeneous BYOL: one online and one target network per modality (sharing heads or not, see
// network.ts), the target an exponential moving average of the online weights and BatchNorm
// statistics (Grill et al. 2020, arXiv:2006.07733, §3.1). A training step runs both views of each
// modality's present items through both networks and returns what the losses need; which terms
// are used (intra-modal, cross-modal, InfoNCE) is the loss's business (loss.ts).
import { cat, noGrad, op, tidy, zeros, F, type Tensor } from '../engine/index.js';
import { Module, type StateDict, type TensorModule } from '../nn/index.js';
import { emaSchedule, makeEmaTarget, updateEmaTarget, type EmaScheduleOptions } from '../byol/ema.js';
import type { HeadNorm } from '../byol/heads.js';
import { AlignBranch, applyHeadsTogether } from './network.js';
import { upgradeSharedStatistics } from './shared_head.js';
import { applyFreeze, freezePlan, type FreezePlan, type FreezeSetting } from './freeze.js';
import { headFreezePlan } from './freeze_heads.js';

const indexCopy = op('aten::index_copy');

/** The heads' sizes, and the τ schedule of the target (EmaScheduleOptions: τ_base 0.996, cosine). */
export interface AlignModelOptions extends EmaScheduleOptions {
  sharedHeads?: boolean;
  projectionHiddenDim?: number;
  projectionDim?: number;
  predictionHiddenDim?: number;
  headNorm?: HeadNorm;
  /** Input width of shared heads; encoders of another width get a Linear neck (default: the widest encoder's). */
  headInputDim?: number;
  /** Linear projectors and no predictors, one per modality (loss.objective cca; network.ts). */
  linearHeads?: boolean;
  /**
   * Lock the shared projector and predictor, and the necks and statistics of the towers frozen
   * whole (freeze_heads.ts): the space those modalities share stays fixed. Needs shared heads.
   */
  freezeHeads?: boolean;
}

/** One modality's two views of the items that have it; `rows` are their indices in the batch. */
export interface ModalityViews {
  view1: Tensor;
  view2: Tensor;
  /** int64 [n] rows of the batch that have this modality (sorted), or null when all N do. */
  rows: Tensor | null;
  /**
   * The views are already the tower's features (cached, feature_cache.ts): only the neck and heads
   * run. Allowed for a tower frozen whole.
   */
  encoded?: boolean;
}

/** Per modality, [N, d] tensors with zeros where the item lacks the modality, and the mask. */
export interface ModalityOutputs {
  /** Online predictions q of view 1 and 2. */
  q1: Tensor;
  q2: Tensor;
  /** Target projections z′ of view 1 and 2 (no gradient). */
  z1: Tensor;
  z2: Tensor;
  /** Online projections of view 1 and 2 (with gradient; InfoNCE and the collapse monitor use them). */
  p1: Tensor;
  p2: Tensor;
  /** bool [N]: the item has this modality. */
  present: Tensor;
}

/** What embed() returns, by stage: the encoder's output, the projection, the prediction, the target's projection. */
export type EmbeddingStage = 'encoder' | 'projection' | 'prediction' | 'target-projection';

export interface AlignEncoderSpec {
  name: string;
  create: () => TensorModule;
  featureDim: number;
  /** Lock the tower, whole or all but its last blocks (freeze.ts); default false. */
  freeze?: FreezeSetting;
}

/**
 * @example
 * const model = new AlignModel([{ name: 'image', create: () => new SmallCnn(), featureDim: 128 }, ...], { sharedHeads: true });
 * const outputs = model.forwardViews(views, batchSize); // Map<modality, ModalityOutputs>
 * model.updateTarget(step, totalSteps);
 */
export class AlignModel extends Module {
  readonly online: AlignBranch;
  readonly target: AlignBranch;
  readonly modalities: string[];
  readonly tauBase: number;
  readonly tauSchedule: 'cosine' | 'constant';
  /** Modalities whose tower is frozen whole: the online and target networks share it. */
  readonly sharedTowers: ReadonlySet<string>;
  /** The frozen parts, held in eval mode whatever the model's mode. */
  readonly #frozenModules: Module[];
  /** Frozen parameters and the buffers of frozen modules: the EMA leaves their targets as they are. */
  readonly #locked: ReadonlySet<Tensor>;

  constructor(encoders: AlignEncoderSpec[], options: AlignModelOptions = {}) {
    super();
    if (encoders.length === 0) throw new Error('AlignModel: at least one modality is needed');
    this.modalities = encoders.map((e) => e.name);
    ({ tauBase: this.tauBase, tauSchedule: this.tauSchedule } = emaSchedule(options));
    const heads = {
      sharedHeads: options.sharedHeads ?? true,
      projectionHiddenDim: options.projectionHiddenDim ?? 4096,
      projectionDim: options.projectionDim ?? 256,
      predictionHiddenDim: options.predictionHiddenDim ?? 4096,
      headNorm: options.headNorm ?? 'batch',
      ...(options.headInputDim === undefined ? {} : { inputDim: options.headInputDim }),
      linear: options.linearHeads ?? false,
    };
    if (options.headInputDim !== undefined && (!heads.sharedHeads || heads.linear))
      throw new RangeError(
        'model.headInputDim is the input width of shared heads: it needs model.sharedHeads true (and an objective other than cca)',
      );
    const online = new AlignBranch(
      encoders.map((e) => [e.name, e.create(), e.featureDim]),
      heads,
      true,
    );
    const plans = encoders.map((e) => [e.name, freezePlan(online.tower(e.name), e.freeze ?? false, `${e.name}.freeze`)] as const);
    this.sharedTowers = new Set(plans.filter(([, plan]) => plan.whole).map(([name]) => name));
    // A tower frozen whole is its own EMA target (ξ = τξ + (1 − τ)θ stays θ): the target network
    // holds that very module, not a copy, so its weights are in memory once and it runs once a step.
    const target = new AlignBranch(
      encoders.map((e) => [e.name, this.sharedTowers.has(e.name) ? online.tower(e.name) : e.create(), e.featureDim]),
      heads,
      false,
    );
    this.online = this.registerModule('online', online);
    this.target = this.registerModule('target', target);
    const allPlans: FreezePlan[] = plans.map(([, plan]) => plan);
    if (options.freezeHeads === true) {
      if (!heads.sharedHeads || heads.linear)
        throw new RangeError(
          'model.freezeHeads locks the shared projector and predictor: it needs model.sharedHeads true (and an objective other than cca, whose heads are one per modality)',
        );
      allPlans.push(headFreezePlan(online, target, this.sharedTowers));
    }
    for (const plan of allPlans) applyFreeze(plan);
    this.#frozenModules = allPlans.flatMap((plan) => plan.evalModules);
    this.#locked = new Set([
      ...allPlans.flatMap((plan) => [...plan.frozen]),
      ...this.#frozenModules.flatMap((m) => m.namedBuffers().map(([, t]) => t)),
    ]);
    makeEmaTarget(this.target, this.online);
  }

  /** Sets the mode, but the frozen parts stay in eval mode (BatchNorm's statistics fixed, no dropout). */
  override train(mode = true): this {
    super.train(mode);
    for (const m of this.#frozenModules) m.eval();
    return this;
  }

  /** The state without the target's copy of a shared tower (the online network's keys hold it). */
  override stateDict(prefix = ''): StateDict {
    const state = super.stateDict(prefix);
    if (this.sharedTowers.size === 0) return state;
    return new Map([...state].filter(([key]) => !this.#isSharedTargetKey(key.slice(prefix.length))));
  }

  /**
   * Also reads checkpoints written before shared heads kept BatchNorm statistics per modality, and
   * ignores a target's copy of a tower that is shared here.
   */
  override loadStateDict(state: StateDict, strict = true): void {
    const own = [...upgradeSharedStatistics(state, this.modalities)].filter(([key]) => !this.#isSharedTargetKey(key));
    super.loadStateDict(new Map(own), strict);
  }

  #isSharedTargetKey(key: string): boolean {
    for (const name of this.sharedTowers) if (key.startsWith(`target.encoders.${name}.0.`)) return true;
    return false;
  }

  onlineParameters(): Tensor[] {
    return this.online.parameters();
  }

  /**
   * Both views of every modality through the online and the target network. Each modality's two
   * views go through in one batched forward, so BatchNorm sees 2n items. The heads run for every
   * modality at once (applyHeadsTogether): the online and target projectors together, then the
   * predictors, so that data-parallel training synchronises their BatchNorms in two collectives a
   * step instead of three a modality (bench/RESULTS.md). Each head normalises each modality's
   * rows with that modality's statistics, as it would alone.
   */
  forwardViews(views: Map<string, ModalityViews>, batchSize: number): Map<string, ModalityOutputs> {
    const names = [...views.keys()];
    const onlineFeatures: Tensor[] = [];
    const targetFeatures: Tensor[] = [];
    for (const [name, v] of views) {
      const both = cat([v.view1, v.view2]);
      if (v.encoded === true && !this.sharedTowers.has(name))
        throw new Error(`AlignModel: '${name}' came as tower features, but its tower is not frozen whole`);
      // A shared (frozen) tower runs once for both networks; cached features skip it altogether.
      const features = v.encoded === true ? both : this.sharedTowers.has(name) ? this.online.tower(name).forward(both) : undefined;
      const encode = (branch: AlignBranch): Tensor => (features ? branch.neck(name).forward(features) : branch.encode(name, both));
      onlineFeatures.push(encode(this.online));
      // In its own scope: the target tower's activations are freed here, before the heads and backward.
      targetFeatures.push(noGrad(() => tidy(() => encode(this.target))));
    }
    const projections = applyHeadsTogether([
      ...names.map((modality, i) => ({ branch: this.online, head: 'projector' as const, modality, input: onlineFeatures[i]! })),
      ...names.map((modality, i) => ({
        branch: this.target,
        head: 'projector' as const,
        modality,
        input: targetFeatures[i]!,
        noGrad: true,
      })),
    ]);
    const predictions = applyHeadsTogether(
      names.map((modality, i) => ({ branch: this.online, head: 'predictor' as const, modality, input: projections[i]! })),
    );
    const outputs = new Map<string, ModalityOutputs>();
    names.forEach((name, i) => {
      const v = views.get(name)!;
      const n = v.view1.shape[0]!;
      const [p1, p2] = F.split(projections[i]!, n) as [Tensor, Tensor];
      const [q1, q2] = F.split(predictions[i]!, n) as [Tensor, Tensor];
      const [z1, z2] = F.split(projections[names.length + i]!, n) as [Tensor, Tensor];
      const scatter = (x: Tensor): Tensor =>
        v.rows === null ? x : indexCopy(zeros([batchSize, x.shape[1]!], { dtype: x.dtype, device: x.device }), 0, v.rows, x);
      const present = v.rows === null ? zeros([batchSize], { dtype: 'bool', device: p1.device }).logicalNot() : maskOf(v.rows, batchSize);
      outputs.set(name, { q1: scatter(q1), q2: scatter(q2), z1: scatter(z1), z2: scatter(z2), p1: scatter(p1), p2: scatter(p2), present });
    });
    return outputs;
  }

  /** ξ ← τ_k ξ + (1 − τ_k) θ, parameters and buffers; returns τ_k. */
  updateTarget(step: number, totalSteps: number): number {
    return updateEmaTarget(this.target, this.online, this, step, totalSteps, this.#locked);
  }

  /**
   * Embeddings of one modality's un-augmented batch at a stage, in eval mode and without gradient.
   * 'prediction' and 'target-projection' are the pair the cross-modal term trains: the query's
   * online prediction against the gallery's target projection.
   */
  embed(modality: string, input: Tensor, stage: EmbeddingStage = 'projection'): Tensor {
    return this.embedStages(modality, input, [stage]).get(stage)!;
  }

  /** Several stages of one batch from one forward pass (the encoder runs once per network). */
  embedStages(modality: string, input: Tensor, stages: readonly EmbeddingStage[]): Map<EmbeddingStage, Tensor> {
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(() =>
        tidy(() => {
          const out = new Map<EmbeddingStage, Tensor>();
          if (stages.includes('target-projection')) {
            out.set('target-projection', this.target.project(modality, this.target.encode(modality, input)));
          }
          if (stages.some((s) => s !== 'target-projection')) {
            const y = this.online.encode(modality, input);
            if (stages.includes('encoder')) out.set('encoder', y);
            if (stages.includes('projection') || stages.includes('prediction')) {
              const p = this.online.project(modality, y);
              if (stages.includes('projection')) out.set('projection', p);
              if (stages.includes('prediction')) out.set('prediction', this.online.predict(modality, p));
            }
          }
          return out;
        }),
      );
    } finally {
      this.train(wasTraining);
    }
  }

  override forward(): never {
    throw new Error('AlignModel has no forward; use forwardViews for training and embed for inference');
  }
}

/** bool [size] with true at `rows`. */
function maskOf(rows: Tensor, size: number): Tensor {
  const device = rows.device;
  return indexCopy(zeros([size], { dtype: 'bool', device }), 0, rows, zeros([rows.shape[0]!], { dtype: 'bool', device }).logicalNot());
}
