// Locking the shared heads (model.freezeHeads): the projector and the predictor stay as an earlier
// run left them (train.initFrom with train.initHeads), and so do the necks and the BatchNorm
// statistics of every modality whose tower is frozen whole. Those modalities' embeddings are then a
// fixed function of their input: the space they share does not move, and a modality that trains
// (a new tower, say audio added to an aligned image–text space) is pulled into it without pulling
// it away. This is LiT's locking (Zhai et al. 2022, arXiv:2111.07991) taken up to the shared
// projection. The trained modalities keep their own statistics in training mode: the shared head's
// scale and shift are fixed, its normalisation of their batches is theirs.
import type { Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import type { AlignBranch } from './network.js';
import type { FreezePlan } from './freeze.js';

/**
 * What locking the heads freezes, and the modules it holds in eval mode (online and target), for
 * `online` and `target` branches with shared heads; `lockedModalities` are those whose
 * towers are frozen whole (their necks and statistics are locked too).
 *
 * @example
 * const plan = headFreezePlan(model.online, model.target, new Set(['image', 'text']));
 */
export function headFreezePlan(online: AlignBranch, target: AlignBranch, lockedModalities: ReadonlySet<string>): FreezePlan {
  const heads = [online.sharedProjector(), online.sharedPredictor()];
  const frozen = new Set<Tensor>(heads.flatMap((h) => h.parameters()));
  const evalModules: Module[] = [];
  for (const name of lockedModalities) {
    for (const p of online.neck(name).parameters()) frozen.add(p);
    evalModules.push(online.neck(name), target.neck(name));
    for (const head of [...heads, target.sharedProjector()]) {
      const statistics = head.statistics(name);
      if (statistics !== null) evalModules.push(statistics);
    }
  }
  return { whole: false, frozen, evalModules };
}
