// torch.nn.Sequential: modules applied one after another, named '0', '1', ... as in PyTorch, so
// a Sequential's state dict keys ('0.weight', '1.running_mean') match the PyTorch model's.
import { release, tidy, type Tensor } from '../engine/index.js';
import { Module } from './module.js';

/** A module that maps one tensor to one tensor: what Sequential can chain. */
export type TensorModule = Module & { forward(input: Tensor): Tensor };

/**
 * Feeds the input through each module in turn.
 *
 * @example
 * // BYOL's projector (Grill et al., 2020, §3.3): Linear → BatchNorm → ReLU → Linear.
 * const projector = new Sequential(new Linear(2048, 4096), new BatchNorm1d(4096), new ReLU(), new Linear(4096, 256));
 * projector.forward(features).shape; // [N, 256]
 */
export class Sequential extends Module {
  readonly #layers: TensorModule[];

  constructor(...layers: TensorModule[]) {
    super();
    layers.forEach((layer, i) => {
      if (!(layer instanceof Module)) throw new TypeError(`Sequential: argument ${i} is not a Module`);
      this.registerModule(String(i), layer);
    });
    this.#layers = layers;
  }

  /** How many modules it chains. */
  get length(): number {
    return this.#layers.length;
  }

  /** The module at `index` (negative counts from the end). */
  at(index: number): TensorModule {
    const layer = this.#layers.at(index);
    if (!layer) throw new RangeError(`Sequential: no module at index ${index}; it has ${this.#layers.length}`);
    return layer;
  }

  override forward(input: Tensor): Tensor {
    // Each intermediate is freed once the next module has it, not when the caller's scope ends:
    // its memory is reused while still mapped and in cache (a training step otherwise holds
    // every activation of the EMA target's forward, which needs none of them for backward).
    return tidy(() =>
      this.#layers.reduce((x, layer) => {
        const y = layer.forward(x);
        if (y !== x) release(x);
        return y;
      }, input),
    );
  }
}
