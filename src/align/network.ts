// One side (online or target) of the heterogeneous BYOL network: a modality-specific encoder per
// modality, then the projector g and (online only) the predictor q of BYOL (Grill et al. 2020,
// arXiv:2006.07733, §3.1), either one per modality or one shared by all. Shared heads put every
// modality's projection in one space, which the cross-modal term alone does not (issue #4); they
// need one input width, so an encoder whose width differs gets a Linear "neck" to that width.
import type { Tensor } from '../engine/index.js';
import { Identity, Linear, Module, Sequential, type TensorModule } from '../nn/index.js';
import { mlpHead, type HeadNorm } from '../byol/heads.js';

export interface HeadOptions {
  /** One projector and one predictor for all modalities (true) or one per modality (false). */
  sharedHeads: boolean;
  projectionHiddenDim: number;
  projectionDim: number;
  predictionHiddenDim: number;
  headNorm: HeadNorm;
}

/** Modules by name, registered in the order given (the state dict's order). */
export class ModuleMap<M extends TensorModule> extends Module {
  readonly #items = new Map<string, M>();
  constructor(entries: [string, M][]) {
    super();
    for (const [name, m] of entries) this.#items.set(name, this.registerModule(name, m));
  }
  get(name: string): M {
    const m = this.#items.get(name);
    if (!m) throw new Error(`no module for '${name}' (have: ${[...this.#items.keys()].join(', ')})`);
    return m;
  }
  override forward(): never {
    throw new Error('ModuleMap has no forward; call get(name).forward');
  }
}

export const SHARED = 'shared';

export class AlignBranch extends Module {
  readonly encoders: ModuleMap<TensorModule>;
  readonly projectors: ModuleMap<TensorModule>;
  readonly predictors: ModuleMap<TensorModule> | null;
  readonly #shared: boolean;

  /** encoders: each modality's fresh encoder and its output width. */
  constructor(encoders: [string, TensorModule, number][], heads: HeadOptions, withPredictor: boolean) {
    super();
    this.#shared = heads.sharedHeads;
    const width = Math.max(...encoders.map(([, , dim]) => dim));
    const projector = (inputDim: number): TensorModule =>
      mlpHead(inputDim, { hiddenDim: heads.projectionHiddenDim, outputDim: heads.projectionDim, norm: heads.headNorm });
    const predictor = (): TensorModule =>
      mlpHead(heads.projectionDim, { hiddenDim: heads.predictionHiddenDim, outputDim: heads.projectionDim, norm: heads.headNorm });
    this.encoders = this.registerModule(
      'encoders',
      new ModuleMap(
        encoders.map(([name, encoder, dim]) => {
          const neck = heads.sharedHeads && dim !== width ? new Linear(dim, width) : new Identity();
          return [name, new Sequential(encoder, neck)];
        }),
      ),
    );
    const headNames = heads.sharedHeads ? [SHARED] : encoders.map(([name]) => name);
    const inputDim = (name: string): number => (name === SHARED ? width : encoders.find(([n]) => n === name)![2]);
    this.projectors = this.registerModule('projectors', new ModuleMap(headNames.map((n) => [n, projector(inputDim(n))])));
    this.predictors = withPredictor ? this.registerModule('predictors', new ModuleMap(headNames.map((n) => [n, predictor()]))) : null;
  }

  /** The representation of one modality's batch. */
  encode(modality: string, input: Tensor): Tensor {
    return this.encoders.get(modality).forward(input);
  }

  project(modality: string, features: Tensor): Tensor {
    return this.projectors.get(this.#shared ? SHARED : modality).forward(features);
  }

  predict(modality: string, projections: Tensor): Tensor {
    if (!this.predictors) throw new Error('the target network has no predictor');
    return this.predictors.get(this.#shared ? SHARED : modality).forward(projections);
  }

  override forward(): never {
    throw new Error('AlignBranch has no forward; use encode/project/predict');
  }
}
