// torch.nn.Flatten: the bridge from convolutional feature maps to Linear layers.
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';

/**
 * Merges dims startDim..endDim into one (defaults keep the batch dim: [N, C, H, W] → [N, C·H·W]).
 *
 * @example
 * new Flatten().forward(zeros([8, 512, 1, 1])).shape; // [8, 512]
 */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  override forward(input: Tensor): Tensor {
    return input.flatten(this.startDim, this.endDim);
  }
}
