// A collapse monitor without labels: the per-dimension standard deviation of l2-normalised
// outputs across the batch. Spread-out outputs on the unit sphere in d dimensions have per-dimension
// std near 1/√d; a collapsed network (all outputs equal) has 0 (the diagnostic of SimSiam,
// Chen & He 2021, arXiv:2011.10566, §4.1, used by lightly's std_of_l2_normalized).
import { F, noGrad, tidy, type Tensor } from '../engine/index.js';

export interface CollapseReading {
  /** Mean over dimensions of the batch std of l2-normalised outputs. */
  std: number;
  /** 1/√d, the value of well-spread outputs. */
  reference: number;
  /** std / reference: near 1 healthy, towards 0 collapsing. */
  ratio: number;
}

/** Reads the collapse monitor on a batch of outputs [N, d]. */
export function collapseReading(outputs: Tensor): CollapseReading {
  const d = outputs.shape[1]!;
  const std = noGrad(() => tidy(() => F.normalize(outputs.detach().float(), 1).std(0).mean().item()));
  const reference = 1 / Math.sqrt(d);
  return { std, reference, ratio: std / reference };
}

/** Below this ratio the trainer warns that representations are collapsing. */
export const COLLAPSE_WARNING_RATIO = 0.2;
