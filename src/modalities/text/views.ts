// Text views for BYOL: batched, seeded noise on token ids, the text counterpart of the image crops
// and colour jitter. The operations are those of contrastive sentence learning, CLEAR (Wu et al.
// 2020, arXiv:2012.15466: word and span deletion, reordering) and of denoising auto-encoders
// (Lample et al. 2018, arXiv:1711.00043, §2.3: word dropout p = 0.1, local shuffle k = 3), plus
// BERT's [MASK] replacement (Devlin et al. 2019, arXiv:1810.04805, 15%).
//
// Every operation is a few libtorch ops over the whole [N, L] batch, with its random draws from one
// Generator, so a view runs where the ids live and the same seed gives the same view. A whole view
// of a 256 × 32 batch takes 2–5 ms on one CPU thread (measured by tests/text.test.ts on a
// busy 2-core machine), well under a training step.
//
// Ids are laid out as the tokenizer writes them: [CLS] first, the text's tokens, [SEP] where a
// pretrained BERT tokenizer adds it, [PAD] (0) to the right. [CLS], [SEP] and [PAD] are never
// changed or dropped, [SEP] stays after the text, padding on the right, and a row never loses its
// last text token.
import { arange, rand, tidy, where, type Generator, type Tensor } from '../../engine/index.js';
import { DEFAULT_SPECIAL_IDS, type SpecialTokenIds } from './tokenizer.js';

export interface TextViewConfig {
  /** Probability that a row loses one contiguous span of tokens. */
  spanDeletionP: number;
  /** The longest span, as a fraction of the row's text tokens (rounded down; at least one token stays). */
  spanMaxFraction: number;
  /** Each text token is deleted with this probability; the rest close up to the left. */
  tokenDropoutRate: number;
  /** Probability that a row's tokens are shuffled locally. */
  shuffleP: number;
  /** In a local shuffle, no token moves more than this many places. */
  shuffleWindow: number;
  /** Each remaining text token is replaced by [MASK] with this probability. */
  maskRate: number;
}

/** Moderate defaults for short captions (median about 9 tokens): one view keeps most of the words. */
export const DEFAULT_TEXT_VIEW: Readonly<TextViewConfig> = Object.freeze({
  spanDeletionP: 0.5,
  spanMaxFraction: 0.25,
  tokenDropoutRate: 0.1,
  shuffleP: 0.5,
  shuffleWindow: 2,
  maskRate: 0.15,
});

/** The defaults with some fields replaced, checked. */
export function textViewConfig(overrides: Partial<TextViewConfig> = {}): TextViewConfig {
  const config = { ...DEFAULT_TEXT_VIEW, ...overrides };
  for (const key of ['spanDeletionP', 'spanMaxFraction', 'tokenDropoutRate', 'shuffleP', 'maskRate'] as const) {
    const v = config[key];
    if (!(typeof v === 'number' && v >= 0 && v <= 1))
      throw new RangeError(`TextViewConfig: ${key} must be a number in [0, 1], got ${String(v)}`);
  }
  if (!Number.isInteger(config.shuffleWindow) || config.shuffleWindow < 0) {
    throw new RangeError(`TextViewConfig: shuffleWindow must be a non-negative integer, got ${String(config.shuffleWindow)}`);
  }
  for (const key of Object.keys(config)) {
    if (!(key in DEFAULT_TEXT_VIEW))
      throw new RangeError(`TextViewConfig: unknown field '${key}'; fields are ${Object.keys(DEFAULT_TEXT_VIEW).join(', ')}`);
  }
  return config;
}

/**
 * One augmented view of a batch of ids: span deletion, token dropout, local shuffle, then masking.
 * Same ids, config and generator state → same view; all rates 0 → the ids unchanged.
 *
 * @example
 * const g = new Generator(0);
 * const [v1, v2] = [textView(ids, textViewConfig(), g), textView(ids, textViewConfig(), g)];
 */
export function textView(
  ids: Tensor,
  config: TextViewConfig,
  generator: Generator,
  special: SpecialTokenIds = DEFAULT_SPECIAL_IDS,
): Tensor {
  checkIds(ids, 'textView');
  return tidy(() => {
    let x = deleteSpan(ids, config.spanDeletionP, config.spanMaxFraction, generator, special);
    x = dropTokens(x, config.tokenDropoutRate, generator, special);
    x = shuffleLocally(x, config.shuffleP, config.shuffleWindow, generator, special);
    return maskTokens(x, config.maskRate, generator, special);
  });
}

/** With probability p per row, deletes one span of 1 to ⌊maxFraction·n⌋ of the row's n text tokens (at most n − 1). */
export function deleteSpan(
  ids: Tensor,
  p: number,
  maxFraction: number,
  g: Generator,
  special: SpecialTokenIds = DEFAULT_SPECIAL_IDS,
): Tensor {
  checkIds(ids, 'deleteSpan');
  if (p === 0 || maxFraction === 0) return ids.clone();
  const n = ids.shape[0]!;
  return tidy(() => {
    const text = textTokens(ids, special);
    const count = text.sum(1, true).float(); // [N, 1]
    const maxSpan = count.mul(maxFraction).floor().minimum(count.sub(1));
    const apply = uniform([n, 1], ids, g).lt(p).logicalAnd(maxSpan.ge(1));
    const span = uniform([n, 1], ids, g).mul(maxSpan).floor().add(1); // in [1, maxSpan]
    const start = uniform([n, 1], ids, g).mul(count.sub(span).add(1)).floor(); // in [0, count − span]
    const rank = text.long().cumsum(1).sub(1); // position among the row's text tokens
    const inSpan = rank.ge(start).logicalAnd(rank.lt(start.add(span)));
    return closeUp(ids, text.logicalAnd(inSpan).logicalAnd(apply), special);
  });
}

/** Deletes each text token with probability `rate` (sparing one at random where all would go); the rest close up. */
export function dropTokens(ids: Tensor, rate: number, g: Generator, special: SpecialTokenIds = DEFAULT_SPECIAL_IDS): Tensor {
  checkIds(ids, 'dropTokens');
  if (rate === 0) return ids.clone();
  return tidy(() => {
    const text = textTokens(ids, special);
    const drop = uniform(ids.shape, ids, g).lt(rate).logicalAnd(text);
    return closeUp(ids, spareOne(drop, text, ids, g), special);
  });
}

/**
 * With probability p per row, reorders its text tokens by sorting i + U(0, window + 1) (Lample et
 * al. 2018, §2.3), so no token moves more than `window` places.
 */
export function shuffleLocally(
  ids: Tensor,
  p: number,
  window: number,
  g: Generator,
  special: SpecialTokenIds = DEFAULT_SPECIAL_IDS,
): Tensor {
  checkIds(ids, 'shuffleLocally');
  if (p === 0 || window === 0) return ids.clone();
  const [n, length] = ids.shape as [number, number];
  return tidy(() => {
    const text = textTokens(ids, special);
    const position = arange(length, undefined, 1, { device: ids.device }).unsqueeze(0).float();
    const apply = uniform([n, 1], ids, g).lt(p).float();
    const noise = uniform(ids.shape, ids, g)
      .mul(window + 1)
      .mul(apply);
    // [CLS] keeps its key; [SEP] sorts after the text tokens before it (whose keys stay below its
    // position + window + 1), padding after every token (the keys stay below length + window + 1).
    const padKey = position.add(length + window + 1);
    let key = where(ids.eq(special.pad), padKey, position);
    if (special.sep !== undefined) key = where(ids.eq(special.sep), position.add(window + 1), key);
    key = where(text, position.add(noise), key);
    return ids.gather(1, key.argsort(1));
  });
}

/** Replaces each text token by [MASK] with probability `rate` (sparing one at random where all would go). */
export function maskTokens(ids: Tensor, rate: number, g: Generator, special: SpecialTokenIds = DEFAULT_SPECIAL_IDS): Tensor {
  checkIds(ids, 'maskTokens');
  if (rate === 0) return ids.clone();
  return tidy(() => {
    const text = textTokens(ids, special);
    const masked = uniform(ids.shape, ids, g).lt(rate).logicalAnd(text);
    return ids.maskedFill(spareOne(masked, text, ids, g), special.mask);
  });
}

function checkIds(ids: Tensor, opName: string): void {
  if (ids.ndim !== 2 || (ids.dtype !== 'int64' && ids.dtype !== 'int32')) {
    throw new TypeError(`${opName}: ids must be an integer tensor [N, L], got ${ids.dtype} [${ids.shape.join(', ')}]`);
  }
}

/** Uniform [0, 1) draws from g, on the ids' device. */
function uniform(shape: number[], like: Tensor, g: Generator): Tensor {
  const u = rand(shape, { generator: g, device: g.device });
  return u.device === like.device ? u : u.to(like.device);
}

/** Where the text is: neither [CLS], [SEP] nor [PAD]. ([MASK] and [UNK] count as text.) */
function textTokens(ids: Tensor, special: SpecialTokenIds): Tensor {
  const text = ids.ne(special.pad).logicalAnd(ids.ne(special.cls));
  return special.sep === undefined ? text : text.logicalAnd(ids.ne(special.sep));
}

/** `chosen` (⊆ text), except that in a row where it holds every text token, one of them at random is left out. */
function spareOne(chosen: Tensor, text: Tensor, like: Tensor, g: Generator): Tensor {
  const everything = chosen.sum(1, true).eq(text.sum(1, true)); // [N, 1]; rows without text have nothing chosen anyway
  const spared = uniform(like.shape, like, g).maskedFill(text.logicalNot(), -1).argmax(1, true); // a random text position
  const position = arange(like.shape[1]!, undefined, 1, { device: like.device }).unsqueeze(0);
  return chosen.logicalAnd(everything.logicalAnd(position.eq(spared)).logicalNot());
}

/** Deletes the `remove` positions and shifts what follows left, padding the freed places on the right. */
function closeUp(ids: Tensor, remove: Tensor, special: SpecialTokenIds): Tensor {
  const length = ids.shape[1]!;
  const kept = ids.ne(special.pad).logicalAnd(remove.logicalNot());
  const position = arange(length, undefined, 1, { device: ids.device }).unsqueeze(0);
  const order = where(kept, position, position.add(length)).argsort(1); // kept first, in order
  return ids.gather(1, order).maskedFill(position.ge(kept.sum(1, true)), special.pad);
}
