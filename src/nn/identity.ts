// torch.nn.Identity: a placeholder where an architecture optionally has a layer (a classifier
// head removed to expose features, a disabled projection).
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';

/**
 * Returns its input unchanged.
 *
 * @example
 * const head = numClasses > 0 ? new Linear(512, numClasses) : new Identity(); // features when there are no classes
 */
export class Identity extends Module {
  override forward(input: Tensor): Tensor {
    return input;
  }
}
