// Elementwise activations as modules, for Sequential stacks (torch.nn.ReLU, GELU, ...). Each
// holds no parameters and calls the Tensor method of the same name.
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';

/**
 * max(x, 0).
 *
 * @example
 * new Sequential(new Linear(256, 4096), new BatchNorm1d(4096), new ReLU(), new Linear(4096, 256));
 */
export class ReLU extends Module {
  override forward(input: Tensor): Tensor {
    return input.relu();
  }
}

/**
 * x·Φ(x) (Hendrycks & Gimpel, 2016); approximate 'tanh' uses the tanh form.
 *
 * @example
 * new GELU({ approximate: 'tanh' }).forward(x);
 */
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';

  constructor(options: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = options.approximate ?? 'none';
  }

  override forward(input: Tensor): Tensor {
    return input.gelu(this.approximate);
  }
}

/**
 * x·σ(x), also called swish.
 *
 * @example
 * new SiLU().forward(x);
 */
export class SiLU extends Module {
  override forward(input: Tensor): Tensor {
    return input.silu();
  }
}

/**
 * tanh(x).
 *
 * @example
 * new Tanh().forward(x);
 */
export class Tanh extends Module {
  override forward(input: Tensor): Tensor {
    return input.tanh();
  }
}

/**
 * 1 / (1 + e^−x).
 *
 * @example
 * new Sigmoid().forward(logits);
 */
export class Sigmoid extends Module {
  override forward(input: Tensor): Tensor {
    return input.sigmoid();
  }
}
