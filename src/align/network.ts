// One side (online or target) of the heterogeneous BYOL network: a modality-specific encoder per
// modality, then the projector g and (online only) the predictor q of BYOL (Grill et al. 2020,
// arXiv:2006.07733, §3.1), either one per modality or one shared by all. Shared heads put every
// modality's projection in one space, which the cross-modal term alone does not (issue #4); they
// need one input width, so an encoder whose width differs gets a Linear "neck" to that width, and
// keep BatchNorm statistics per modality (shared_head.ts).
import { noGrad, type Tensor } from '../engine/index.js';
import { batchNormTogether, Identity, Linear, Module, Sequential, type TensorModule } from '../nn/index.js';
import { mlpHead, openMlpHead, type HeadNorm, type OpenHead } from '../byol/heads.js';
import { ModuleMap } from './module_map.js';
import { SharedHead } from './shared_head.js';

export interface HeadOptions {
  /** One projector and one predictor for all modalities (true) or one per modality (false). */
  sharedHeads: boolean;
  projectionHiddenDim: number;
  projectionDim: number;
  predictionHiddenDim: number;
  headNorm: HeadNorm;
  /**
   * Input width of shared heads (default: the widest encoder's). An encoder of another width gets a
   * Linear neck to it, so a wider new tower can join a space whose heads were trained at a smaller
   * width (model.freezeHeads).
   */
  inputDim?: number;
  /**
   * One Linear per modality as its projector and no predictor (Identity): the closed-form heads of
   * loss.objective cca (cca.ts). Needs sharedHeads false.
   */
  linear?: boolean;
}

export const SHARED = 'shared';

export class AlignBranch extends Module {
  /** Per modality, Sequential(tower, neck): the modality's encoder, then the neck (Identity unless shared heads need one). */
  readonly encoders: ModuleMap<Sequential>;
  /** One SharedHead under 'shared', or one mlpHead per modality. */
  readonly projectors: ModuleMap<SharedHead> | ModuleMap<TensorModule>;
  readonly predictors: ModuleMap<SharedHead> | ModuleMap<TensorModule> | null;

  /** encoders: each modality's fresh encoder and its output width. */
  constructor(encoders: [string, TensorModule, number][], heads: HeadOptions, withPredictor: boolean) {
    super();
    const names = encoders.map(([name]) => name);
    const width = heads.inputDim ?? Math.max(...encoders.map(([, , dim]) => dim));
    this.encoders = this.registerModule(
      'encoders',
      new ModuleMap(
        encoders.map(([name, encoder, dim]) => {
          const neck = heads.sharedHeads && dim !== width ? new Linear(dim, width) : new Identity();
          return [name, new Sequential(encoder, neck)];
        }),
      ),
    );
    const projector = { hiddenDim: heads.projectionHiddenDim, outputDim: heads.projectionDim, norm: heads.headNorm };
    const predictor = { hiddenDim: heads.predictionHiddenDim, outputDim: heads.projectionDim, norm: heads.headNorm };
    if (heads.linear === true) {
      if (heads.sharedHeads) throw new Error('AlignBranch: linear heads are one per modality; sharedHeads must be false');
      this.projectors = this.registerModule(
        'projectors',
        new ModuleMap<TensorModule>(encoders.map(([name, , dim]) => [name, new Linear(dim, heads.projectionDim)])),
      );
      this.predictors = withPredictor
        ? this.registerModule('predictors', new ModuleMap<TensorModule>(names.map((name) => [name, new Identity()])))
        : null;
    } else if (heads.sharedHeads) {
      this.projectors = this.registerModule('projectors', new ModuleMap([[SHARED, new SharedHead(names, width, projector)]]));
      this.predictors = withPredictor
        ? this.registerModule('predictors', new ModuleMap([[SHARED, new SharedHead(names, heads.projectionDim, predictor)]]))
        : null;
    } else {
      this.projectors = this.registerModule('projectors', new ModuleMap(encoders.map(([name, , dim]) => [name, mlpHead(dim, projector)])));
      this.predictors = withPredictor
        ? this.registerModule('predictors', new ModuleMap(names.map((name) => [name, mlpHead(heads.projectionDim, predictor)])))
        : null;
    }
  }

  /** The representation of one modality's batch. */
  encode(modality: string, input: Tensor): Tensor {
    return this.encoders.get(modality).forward(input);
  }

  /** A modality's encoder itself, without the neck. */
  tower(modality: string): TensorModule {
    return this.encoders.get(modality).at(0);
  }

  /** The neck after a modality's tower (the rest of encode). */
  neck(modality: string): TensorModule {
    return this.encoders.get(modality).at(1);
  }

  /** The projector that every modality shares (heads not shared: an error). */
  sharedProjector(): SharedHead {
    return sharedHead(this.projectors, 'projector');
  }

  /** The predictor that every modality shares (the target network, or heads not shared: an error). */
  sharedPredictor(): SharedHead {
    if (!this.predictors) throw new Error('the target network has no predictor');
    return sharedHead(this.predictors, 'predictor');
  }

  project(modality: string, features: Tensor): Tensor {
    return applyHeadsTogether([{ branch: this, head: 'projector', modality, input: features }])[0]!;
  }

  predict(modality: string, projections: Tensor): Tensor {
    return applyHeadsTogether([{ branch: this, head: 'predictor', modality, input: projections }])[0]!;
  }

  /** A modality's projector or predictor, opened at its normalisation (OpenHead). */
  openHead(head: 'projector' | 'predictor', modality: string, input: Tensor): OpenHead {
    const heads = head === 'projector' ? this.projectors : this.predictors;
    if (!heads) throw new Error('the target network has no predictor');
    const module = heads.get(heads.has(SHARED) ? SHARED : modality);
    if (module instanceof SharedHead) return module.open(modality, input);
    // One per modality: an mlpHead, or a Linear projector and an Identity predictor (linear heads).
    if (module instanceof Sequential) return openMlpHead(module, input);
    const output = module.forward(input);
    return { norm: null, finish: () => output };
  }

  override forward(): never {
    throw new Error('AlignBranch has no forward; use encode/project/predict');
  }
}

function sharedHead(heads: ModuleMap<SharedHead> | ModuleMap<TensorModule>, what: string): SharedHead {
  const head = heads.has(SHARED) ? heads.get(SHARED) : undefined;
  if (!(head instanceof SharedHead)) throw new Error(`AlignBranch: the ${what} is one per modality, not shared`);
  return head;
}

/** One projector or predictor run (applyHeadsTogether). */
export interface HeadRun {
  branch: AlignBranch;
  head: 'projector' | 'predictor';
  modality: string;
  input: Tensor;
  /** Without gradient (the target network's run). */
  noGrad?: boolean;
}

/**
 * Several heads' outputs, each what the branch's project or predict gives, with their BatchNorms
 * run together (batchNormTogether): in data-parallel training one collective serves all of them,
 * where each head on its own costs one (src/distributed/sync_batch_norm.ts).
 *
 * @example
 * const [pImage, pText, zImage] = applyHeadsTogether([
 *   { branch: model.online, head: 'projector', modality: 'image', input: image },
 *   { branch: model.online, head: 'projector', modality: 'text', input: text },
 *   { branch: model.target, head: 'projector', modality: 'image', input: imageTarget, noGrad: true },
 * ]);
 */
export function applyHeadsTogether(runs: readonly HeadRun[]): Tensor[] {
  const inMode = <T>(run: HeadRun, body: () => T): T => (run.noGrad === true ? noGrad(body) : body());
  const opened = runs.map((run) => inMode(run, () => run.branch.openHead(run.head, run.modality, run.input)));
  const norms = opened.flatMap((head) => (head.norm ? [head.norm] : []));
  // A run without gradient gives its BatchNorm inputs that need none: its outputs need none either.
  const normalised = batchNormTogether(norms);
  let next = 0;
  return opened.map((head, i) => inMode(runs[i]!, () => head.finish(head.norm ? normalised[next++] : undefined)));
}
