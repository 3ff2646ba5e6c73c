// Dropout (Srivastava et al., 2014), torch.nn.Dropout.
import { F, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { checkProbability } from './checks.js';

/**
 * In training, zeroes each element with probability p and scales the survivors by 1/(1 − p), so
 * expectations match eval mode, where it is the identity.
 *
 * @example
 * const drop = new Dropout(0.1);
 * drop.eval().forward(x); // x unchanged
 */
export class Dropout extends Module {
  readonly p: number;

  constructor(p = 0.5) {
    super();
    checkProbability('Dropout', 'p', p);
    this.p = p;
  }

  override forward(input: Tensor): Tensor {
    return F.dropout(input, this.p, this.training);
  }
}
