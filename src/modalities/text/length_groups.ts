// Rows of a padded batch of token ids, grouped by length for inference: each group runs cut to its
// own longest row, so fewer padding tokens go through the layers. A batch pads every caption to the
// longest one; the serve benchmark's batches of 50 caption queries were 45% padding, and a layer's
// cost grows with the tokens it is given, padding or not. Written here because it is a small exact
// search (the best cut of a sorted list) that no library we use offers.

/**
 * What running one more group costs beside a token, in tokens: between the best two measured on
 * the serve benchmark's queries (the 2-layer, width-128 text tower of `--preset cpu-small`, one
 * thread, a batch of 50: 11.4 ms whole; 7.98 and 7.91 ms in groups with 20 and 40; 8.1, 8.2 and
 * 8.5 ms with 10, 80 and 160; 10.5 ms with 0, where every length is its own group). With 32,
 * `npm run bench -- text` measured 8.44 ms against 11.29 ms whole.
 */
export const GROUP_COST_IN_TOKENS = 32;

/**
 * The rows (indices into `lengths`) in groups of similar length, shortest first, that minimise the
 * tokens run, each group counted as its rows times its longest length plus `groupCost`. The
 * rows within a group are ordered by length, and every row is in exactly one group.
 *
 * @example
 * lengthGroups([4, 20, 5, 19], 8); // [[0, 2], [3, 1]]: 2·5 + 8 + 2·20 + 8 = 66 tokens, against 4·20 + 8 = 88 whole
 */
export function lengthGroups(lengths: readonly number[], groupCost: number = GROUP_COST_IN_TOKENS): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const sorted = order.map((i) => lengths[i]!);
  // cheapest[j]: the least cost of the j shortest rows; start[j]: where their last group starts.
  const cheapest = [0];
  const start = [0];
  for (let j = 1; j <= sorted.length; j++) {
    cheapest[j] = Infinity;
    for (let i = 0; i < j; i++) {
      const cost = cheapest[i]! + (j - i) * sorted[j - 1]! + groupCost;
      if (cost < cheapest[j]!) [cheapest[j], start[j]] = [cost, i];
    }
  }
  const groups: number[][] = [];
  for (let j = sorted.length; j > 0; j = start[j]!) groups.unshift(order.slice(start[j]!, j));
  return groups;
}
