// The projector or predictor that every modality shares (network.ts), with BatchNorm statistics
// kept per modality. Training puts each modality's batch through the shared head on its own
// (model.ts, forwardViews), so BatchNorm centres and scales image and text features each by their
// own batch; one set of running statistics would average the two, and eval mode (embed, eval,
// search) would then normalise both modalities with that mixture. docs/align.md measured what the
// mixture cost: the default's projection-space rsum 8.82 against 36.74 with per-modality
// statistics on the icon test split. So each modality keeps its own running mean and variance;
// the scale and shift (BatchNorm's weight and bias) stay shared, as does everything else.
import { ones, zeros, type Tensor } from '../engine/index.js';
import { BatchNorm1d, Linear, Module, ReLU, type BatchNormCall, type TensorModule } from '../nn/index.js';
import { headNormalisation, openedAt, type HeadNorm, type OpenHead } from '../byol/heads.js';
import { ModuleMap } from './module_map.js';

/**
 * BatchNorm1d with shared weight and bias and running statistics per modality. State dict:
 * `weight`, `bias`, then `<modality>.running_mean`, `<modality>.running_var`,
 * `<modality>.num_batches_tracked`.
 *
 * @example
 * const bn = new ModalityBatchNorm1d(['image', 'text'], 4096);
 * bn.forwardModality('text', h); // normalised with text's batch (training) or running statistics (eval)
 */
export class ModalityBatchNorm1d extends Module {
  readonly statistics: ModuleMap<BatchNorm1d>;

  constructor(modalities: readonly string[], features: number) {
    super();
    this.registerParameter('weight', ones([features]));
    this.registerParameter('bias', zeros([features]));
    this.statistics = this.registerModule(
      'statistics',
      new ModuleMap(modalities.map((m) => [m, new BatchNorm1d(features, { affine: false })])),
    );
  }

  forwardModality(modality: string, input: Tensor): Tensor {
    const { layer, weight, bias } = this.call(modality, input);
    return layer.forwardAffine(input, weight, bias);
  }

  /** forwardModality as a call to run beside other layers' (batchNormTogether). */
  call(modality: string, input: Tensor): BatchNormCall {
    return { layer: this.statistics.get(modality), input, weight: this.param('weight'), bias: this.param('bias') };
  }

  override forward(): never {
    throw new Error('ModalityBatchNorm1d has no forward; call forwardModality(modality, input)');
  }
}

/**
 * Linear → norm → ReLU → Linear (BYOL's head, byol/heads.ts) shared by several modalities; with
 * BatchNorm, the statistics are the modality's. State-dict names match mlpHead's ('0.weight', ...).
 */
export class SharedHead extends Module {
  readonly #first: Linear;
  readonly #norm: ModalityBatchNorm1d | TensorModule;
  readonly #relu: ReLU;
  readonly #last: Linear;

  constructor(modalities: readonly string[], inputDim: number, options: { hiddenDim: number; outputDim: number; norm: HeadNorm }) {
    super();
    this.#first = this.registerModule('0', new Linear(inputDim, options.hiddenDim));
    this.#norm = this.registerModule(
      '1',
      options.norm === 'batch'
        ? new ModalityBatchNorm1d(modalities, options.hiddenDim)
        : headNormalisation(options.norm, options.hiddenDim),
    );
    this.#relu = this.registerModule('2', new ReLU());
    this.#last = this.registerModule('3', new Linear(options.hiddenDim, options.outputDim));
  }

  /** The BatchNorm statistics `modality` is normalised with (null: the heads use LayerNorm or GroupNorm). */
  statistics(modality: string): BatchNorm1d | null {
    return this.#norm instanceof ModalityBatchNorm1d ? this.#norm.statistics.get(modality) : null;
  }

  /**
   * The head on one modality's batch, opened at its normalisation (OpenHead), so that it can run
   * beside other heads' (AlignBranch.project and predict, applyHeadsTogether).
   */
  open(modality: string, input: Tensor): OpenHead {
    const hidden = this.#first.forward(input);
    const norm = this.#norm instanceof ModalityBatchNorm1d ? this.#norm.call(modality, hidden) : this.#norm;
    return openedAt(hidden, norm, (h) => this.#last.forward(this.#relu.forward(h)));
  }

  override forward(): never {
    throw new Error('SharedHead has no forward; use AlignBranch.project or predict, or open(modality, input)');
  }
}

const LEGACY_STATISTICS = /^(.*\.shared\.1\.)(running_mean|running_var|num_batches_tracked)$/;

/**
 * A state dict written before the statistics were per modality (one `….shared.1.running_mean`)
 * with each modality's statistics set to that one: the model then behaves exactly as it did.
 */
export function upgradeSharedStatistics(state: ReadonlyMap<string, Tensor>, modalities: readonly string[]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, t] of state) {
    const legacy = LEGACY_STATISTICS.exec(key);
    if (!legacy) out.set(key, t);
    else for (const m of modalities) out.set(`${legacy[1]}statistics.${m}.${legacy[2]}`, t);
  }
  return out;
}
