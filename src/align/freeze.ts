// Locking a tower, whole or all but its last blocks (LiT: Zhai et al. 2022, arXiv:2111.07991, locks
// the image tower and trains the text tower and heads; partial tuning trains only the top blocks).
// A frozen parameter never requires a gradient, so autograd computes none for it, the trainer
// leaves it out of the optimizer (and so out of weight decay), and no optimizer state is kept for
// it. The frozen part's modules stay in eval mode whatever the model's mode: BatchNorm normalises
// with its running statistics and never updates them, and dropout is off, so a frozen tower is a
// fixed function of its input (what the feature cache relies on, feature_cache.ts).
import type { Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';

/**
 * A tower's `freeze` setting: true (all of it), false (none), or `{ allButLast: N }`: the last N of
 * its blocks, and whatever comes after them (a final norm), train; everything before is frozen.
 */
export type FreezeSetting = boolean | { allButLast: number };

/** An encoder that lists its blocks in forward order (`freeze: { allButLast: N }` cuts there). */
export interface BlockEncoder {
  blocks(): Module[];
}

export function hasBlocks(encoder: Module): encoder is Module & BlockEncoder {
  return typeof (encoder as Partial<BlockEncoder>).blocks === 'function';
}

/** What freezing a tower does: the parameters frozen and the modules kept in eval mode. */
export interface FreezePlan {
  /** The whole tower is frozen (its EMA target can be the tower itself). */
  whole: boolean;
  frozen: Set<Tensor>;
  /** Modules held in eval mode: the tower when whole, else the frozen blocks and frozen modules outside blocks. */
  evalModules: Module[];
}

/**
 * Which parameters of `encoder` a setting freezes. `where` names the setting in errors (e.g.
 * 'image.freeze'). `{ allButLast: N }` needs an encoder with blocks() and 1 ≤ N ≤ its block count;
 * the cut is at the first parameter of block (count − N) in registration order, which is forward
 * order for every encoder here (stem or embeddings, blocks, final norm).
 *
 * @example
 * const plan = freezePlan(new SmallCnn(), { allButLast: 1 }, 'image.freeze'); // block1, block2 frozen
 */
export function freezePlan(encoder: Module, setting: FreezeSetting, where: string): FreezePlan {
  if (setting === false) return { whole: false, frozen: new Set(), evalModules: [] };
  if (setting === true) return { whole: true, frozen: new Set(encoder.parameters()), evalModules: [encoder] };
  const n = (setting as { allButLast?: unknown } | null)?.allButLast;
  if (!hasBlocks(encoder))
    throw new RangeError(
      `${where}: { allButLast: ${String(n)} } needs an encoder that lists its blocks (blocks()); ${encoder.constructor.name} does not, so use true or false`,
    );
  const blocks = encoder.blocks();
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > blocks.length)
    throw new RangeError(
      `${where}: allButLast must be an integer from 1 to ${blocks.length} (${encoder.constructor.name}'s blocks), got ${String(n)}`,
    );
  const firstTrained = blocks[blocks.length - (n as number)]!;
  const trainedFrom = firstParameterIndex(encoder, firstTrained, where);
  const params = encoder.parameters();
  const frozen = new Set(params.slice(0, trainedFrom));
  const frozenBlocks = blocks.slice(0, blocks.length - (n as number));
  const inBlocks = new Set(blocks.flatMap((b) => b.modules()));
  const outsideFrozen = encoder
    .modules()
    .filter((m) => !inBlocks.has(m) && m !== encoder)
    .filter((m) => {
      const own = m.parameters();
      return own.length > 0 && own.every((p) => frozen.has(p));
    });
  return { whole: false, frozen, evalModules: [...frozenBlocks, ...outsideFrozen] };
}

/** The index in encoder.parameters() of `block`'s first parameter (blocks without any are refused). */
function firstParameterIndex(encoder: Module, block: Module, where: string): number {
  const first = block.parameters()[0];
  if (first === undefined) throw new RangeError(`${where}: the block where training would start has no parameters`);
  const index = encoder.parameters().indexOf(first);
  if (index < 0) throw new RangeError(`${where}: a block listed by blocks() is not part of ${encoder.constructor.name}`);
  return index;
}

/** Stops gradients to the plan's parameters and puts its modules in eval mode. */
export function applyFreeze(plan: FreezePlan): void {
  for (const p of plan.frozen) p.requiresGrad_(false);
  for (const m of plan.evalModules) m.eval();
}

/**
 * A `freeze` value from a config or a plug-in, checked: true, false or `{ allButLast: N }`.
 *
 * @example
 * parseFreezeSetting({ allButLast: 2 }, 'text.freeze'); // { allButLast: 2 }
 */
export function parseFreezeSetting(value: unknown, where: string): FreezeSetting {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const n = (value as { allButLast?: unknown }).allButLast;
    if (keys.length === 1 && keys[0] === 'allButLast' && Number.isInteger(n) && (n as number) >= 1) return { allButLast: n as number };
  }
  throw new RangeError(`${where}: expected true, false or { allButLast: N } (N ≥ 1), got ${JSON.stringify(value)}`);
}
