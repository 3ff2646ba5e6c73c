// A WordPiece tokenizer (Wu et al. 2016, arXiv:1609.08144; as in BERT, Devlin et al. 2019,
// arXiv:1810.04805) trained on the training captions, run by Hugging Face's `tokenizers`.
//
// How it is trained, and why not with `Tokenizer.train(files)`: the Node binding (0.23) trains
// only with the model's default trainer. For WordPiece that is a vocabulary of 30 000 with no
// special tokens and no way to change either; it prints progress newlines to stdout; and it is not
// reproducible: the trainer walks its word counts in hash-map order when it numbers the
// continuation pieces ("##s"), and breaks ties between equally frequent merges by those numbers, so
// two runs on one caption file gave vocabularies of 11 146 and 11 145 tokens. So the trainer is
// the loop below, the same algorithm as the library's WordPieceTrainer (BPE merges over words
// whose non-initial characters carry the "##" prefix, the vocabulary read off as WordPiece's), with
// every order fixed: alphabet by code point, ties by the smaller pair, and one addition: every
// character also gets its ##c form, so a word of known characters never encodes as [UNK]. The
// words it counts come from the library's own BERT normaliser and pre-tokenizer, so training sees
// exactly what encoding will; the result is written as the library's tokenizer JSON and loaded with Tokenizer.fromString,
// which then does all normalisation, splitting, WordPiece matching, [CLS] insertion and decoding.
//
// A pretrained model's tokenizer.json (BERT's: [CLS] text [SEP]) is served the same way; the
// library truncates, so a cut text keeps its [SEP].
import { readFileSync, writeFileSync } from 'node:fs';
import { Tokenizer, bertNormalizer, bertPreTokenizer } from 'tokenizers';
import { tensor, type Tensor } from '../../engine/index.js';

/** The special tokens, in the order (and so with the ids) a trained vocabulary starts with. */
export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[MASK]'] as const;

/** Ids of the special tokens; padding is always 0, because the encoder reads id 0 as padding. */
export interface SpecialTokenIds {
  pad: number;
  unk: number;
  cls: number;
  mask: number;
  /** [SEP], which ends every text in BERT's tokenizers; absent from tokenizers trained here. */
  sep?: number;
}

/** The ids every tokenizer from {@link trainTokenizer} has. */
export const DEFAULT_SPECIAL_IDS: Readonly<SpecialTokenIds> = Object.freeze({ pad: 0, unk: 1, cls: 2, mask: 3 });

const CONTINUATION_PREFIX = '##';

export interface TrainTokenizerOptions {
  /** Size of the whole vocabulary, special tokens included. Training stops there or when merges run out. */
  vocabSize: number;
  /** A pair seen fewer times than this in the corpus is never merged (default 2). */
  minFrequency?: number;
  /**
   * Keep only this many characters, the most frequent (default: every character seen). Words with
   * other characters encode as [UNK]. Each kept character costs two entries (c and ##c).
   */
  limitAlphabet?: number;
}

/** A tokenizer JSON that is not usable here, or a training request that cannot be met. */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

/** A batch of encoded texts. */
export interface EncodedBatch {
  /** int64 [N, L]: [CLS], the text's pieces ([SEP] after them where the tokenizer adds it), then [PAD] (id 0) to the right. */
  ids: Tensor;
  /** int64 [N, L]: 1 at the tokens, 0 at the padding. */
  attentionMask: Tensor;
  /** Tokens per row before padding, special tokens included. */
  lengths: Int32Array;
}

export interface EncodeBatchOptions {
  /**
   * 'max' pads every row to maxLength (fixed shapes); 'longest' pads to the batch's longest row
   * (less work for short captions). Default 'max'.
   */
  padding?: 'max' | 'longest';
}

/**
 * A trained WordPiece tokenizer: lowercasing BERT normalisation (accents stripped, CJK characters
 * split), BERT pre-tokenization (whitespace and punctuation), WordPiece pieces, [CLS] first.
 *
 * @example
 * const tokenizer = trainTokenizer(captions, { vocabSize: 4096 });
 * const { ids } = await tokenizer.encodeBatch(['a red car', 'two dogs'], 16); // int64 [2, 16]
 * await tokenizer.decode(ids.select(0, 0));                                  // 'a red car'
 * const same = TextTokenizer.fromJSON(tokenizer.toJSON());
 */
export class TextTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #json: string;
  /** One library tokenizer per maxLength, truncating to it: settings of a shared one would change under calls in flight. */
  readonly #truncating = new Map<number, Tokenizer>();
  readonly specialIds: Readonly<SpecialTokenIds>;

  private constructor(json: string) {
    const tokenizer = libraryTokenizer(json);
    const idOf = (token: string): number => {
      const id = tokenizer.tokenToId(token);
      if (id === null || id === undefined) {
        throw new TokenizerError(
          `TextTokenizer: the vocabulary has no ${token} token; train with trainTokenizer() or add ${SPECIAL_TOKENS.join(', ')}`,
        );
      }
      return id;
    };
    const ids: SpecialTokenIds = { pad: idOf('[PAD]'), unk: idOf('[UNK]'), cls: idOf('[CLS]'), mask: idOf('[MASK]') };
    const sep = tokenizer.tokenToId('[SEP]');
    if (sep !== null && sep !== undefined) ids.sep = sep;
    if (ids.pad !== 0)
      throw new TokenizerError(`TextTokenizer: [PAD] must have id 0 (the encoder treats id 0 as padding), it has ${ids.pad}`);
    this.#tokenizer = tokenizer;
    this.#json = json;
    this.specialIds = Object.freeze(ids);
  }

  /** Rebuilds a tokenizer from {@link toJSON}'s string (any tokenizer JSON with the four special tokens and [PAD] = 0). */
  static fromJSON(json: string): TextTokenizer {
    return new TextTokenizer(json);
  }

  #truncatingTo(maxLength: number): Tokenizer {
    let tokenizer = this.#truncating.get(maxLength);
    if (tokenizer === undefined) {
      tokenizer = libraryTokenizer(this.#json);
      tokenizer.setTruncation(maxLength);
      this.#truncating.set(maxLength, tokenizer);
    }
    return tokenizer;
  }

  /** Reads a tokenizer JSON file, as written by {@link save} or by the Python library. */
  static load(file: string): TextTokenizer {
    return new TextTokenizer(readFileSync(file, 'utf8'));
  }

  /** The Hugging Face tokenizer JSON (loadable with `tokenizers.Tokenizer.from_str` in Python too). */
  toJSON(): string {
    return this.#json;
  }

  save(file: string): void {
    writeFileSync(file, this.#json);
  }

  /** Number of entries in the vocabulary, special tokens included; ids lie in [0, vocabSize). */
  get vocabSize(): number {
    return this.#tokenizer.getVocabSize(true);
  }

  /** The vocabulary in id order. */
  vocabulary(): string[] {
    const out: string[] = new Array<string>(this.vocabSize);
    for (const [token, id] of Object.entries(this.#tokenizer.getVocab(true))) out[id] = token;
    return out;
  }

  tokenToId(token: string): number | null {
    return this.#tokenizer.tokenToId(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.#tokenizer.idToToken(id) ?? null;
  }

  /** One text's ids, [CLS] first, untruncated and unpadded. */
  async encode(text: string): Promise<number[]> {
    if (typeof text !== 'string') throw new TypeError(`TextTokenizer.encode: text is ${typeof text}, expected a string`);
    return (await this.#tokenizer.encode(text, null, { addSpecialTokens: true })).getIds();
  }

  /**
   * Texts → int64 ids [N, L] ([CLS] first, truncated to maxLength, then [PAD] = 0 on the right)
   * and their attention mask. L is maxLength, or with padding 'longest' the longest row. The
   * library truncates the text before adding the special tokens, so a cut text keeps its [SEP].
   */
  async encodeBatch(texts: string[], maxLength: number, options: EncodeBatchOptions = {}): Promise<EncodedBatch> {
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new RangeError(`TextTokenizer.encodeBatch: maxLength must be a positive integer, got ${maxLength}`);
    }
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new TypeError(`TextTokenizer.encodeBatch: texts[${i}] is ${typeof t}, expected a string`);
    });
    const encodings = texts.length === 0 ? [] : await this.#truncatingTo(maxLength).encodeBatch(texts, { addSpecialTokens: true });
    const rows = encodings.map((e, i) => {
      const ids = e.getIds();
      if (ids[0] !== this.specialIds.cls) {
        throw new TokenizerError(
          `TextTokenizer.encodeBatch: texts[${i}] does not start with [CLS]; the tokenizer JSON needs a post-processor that adds it`,
        );
      }
      // Longer only where maxLength is below the number of special tokens the template adds.
      return ids.length > maxLength ? ids.slice(0, maxLength) : ids;
    });
    const lengths = Int32Array.from(rows, (r) => r.length);
    const width = options.padding === 'longest' ? Math.max(1, ...lengths) : maxLength;
    const flat = new Int32Array(rows.length * width); // zeros: [PAD]
    const mask = new Int32Array(rows.length * width);
    rows.forEach((r, i) => {
      flat.set(r, i * width);
      mask.fill(1, i * width, i * width + r.length);
    });
    const shape = [rows.length, width];
    return { ids: tensor(flat, { shape, dtype: 'int64' }), attentionMask: tensor(mask, { shape, dtype: 'int64' }), lengths };
  }

  /** Ids (an array or a 1-D tensor) → text, without special tokens; WordPiece pieces are rejoined. */
  async decode(ids: number[] | Tensor): Promise<string> {
    const list = Array.isArray(ids) ? ids : ids.toFlatArray();
    return this.#tokenizer.decode(list, true);
  }

  /** Rows of an [N, L] id tensor → N texts. */
  async decodeBatch(ids: Tensor): Promise<string[]> {
    if (ids.ndim !== 2) throw new RangeError(`TextTokenizer.decodeBatch: ids must be [N, L], got [${ids.shape.join(', ')}]`);
    const rows = ids.toArray() as number[][];
    return rows.length === 0 ? [] : this.#tokenizer.decodeBatch(rows, true);
  }
}

/**
 * The library's tokenizer from its JSON, with no padding or truncation of its own: a pretrained
 * model's file may fix both (all-MiniLM-L6-v2's pads every text to 128); encodeBatch does its own.
 */
function libraryTokenizer(json: string): Tokenizer {
  let tokenizer: Tokenizer;
  try {
    tokenizer = Tokenizer.fromString(json);
  } catch (err) {
    throw new TokenizerError(`TextTokenizer: not a Hugging Face tokenizer JSON: ${(err as Error).message}`);
  }
  tokenizer.disablePadding();
  tokenizer.disableTruncation();
  return tokenizer;
}

/**
 * Trains a WordPiece vocabulary of at most `vocabSize` entries on `texts` (see the file's header
 * for the algorithm); the same texts and options always give the same tokenizer.
 *
 * @example
 * const tokenizer = trainTokenizer(trainCaptions, { vocabSize: 4096, minFrequency: 2 });
 * tokenizer.vocabulary().slice(0, 4); // ['[PAD]', '[UNK]', '[CLS]', '[MASK]']
 */
export function trainTokenizer(texts: string[], options: TrainTokenizerOptions): TextTokenizer {
  const { vocabSize, minFrequency = 2, limitAlphabet } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < SPECIAL_TOKENS.length) {
    throw new RangeError(`trainTokenizer: vocabSize must be an integer ≥ ${SPECIAL_TOKENS.length}, got ${vocabSize}`);
  }
  if (!(minFrequency >= 0)) throw new RangeError(`trainTokenizer: minFrequency must be ≥ 0, got ${minFrequency}`);
  if (limitAlphabet !== undefined && !(Number.isInteger(limitAlphabet) && limitAlphabet >= 0)) {
    throw new RangeError(`trainTokenizer: limitAlphabet must be a non-negative integer, got ${limitAlphabet}`);
  }
  const vocab = learnVocabulary(countWords(texts), vocabSize, minFrequency, limitAlphabet);
  return TextTokenizer.fromJSON(tokenizerJson(vocab));
}

/** Word frequencies after the runtime's own normalisation and pre-tokenization. */
function countWords(texts: string[]): Map<string, number> {
  const normalizer = bertNormalizer({ lowercase: true });
  const preTokenizer = bertPreTokenizer();
  const counts = new Map<string, number>();
  texts.forEach((text, i) => {
    if (typeof text !== 'string') throw new TypeError(`trainTokenizer: texts[${i}] is ${typeof text}, expected a string`);
    for (const [word] of preTokenizer.preTokenizeString(normalizer.normalizeString(text))) {
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  });
  return counts;
}

/** Max-heap entry: a pair's count when pushed, and the pair as a number (first·2²¹ + second). */
type HeapEntry = [count: number, pair: number];
const PAIR_BASE = 2 ** 21; // ids below 2 097 152, far above any vocabulary trained here

/**
 * The vocabulary in id order: special tokens, the alphabet (c), its continuations (##c), then one
 * token per merge, most frequent pair first (ties: the smaller pair of ids).
 */
function learnVocabulary(wordCounts: Map<string, number>, vocabSize: number, minFrequency: number, limitAlphabet?: number): string[] {
  const charCounts = new Map<string, number>();
  for (const [word, n] of wordCounts) for (const c of word) charCounts.set(c, (charCounts.get(c) ?? 0) + n);
  let alphabet = [...charCounts.keys()];
  if (limitAlphabet !== undefined && alphabet.length > limitAlphabet) {
    alphabet = alphabet
      .sort((a, b) => charCounts.get(b)! - charCounts.get(a)! || a.codePointAt(0)! - b.codePointAt(0)!)
      .slice(0, limitAlphabet);
  }
  alphabet.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const tokens: string[] = [...SPECIAL_TOKENS, ...alphabet, ...alphabet.map((c) => CONTINUATION_PREFIX + c)];
  if (tokens.length > vocabSize) {
    throw new TokenizerError(
      `trainTokenizer: the texts have ${alphabet.length} distinct characters, which with their ## continuations and the ` +
        `${SPECIAL_TOKENS.length} special tokens need ${tokens.length} entries, more than vocabSize ${vocabSize}; ` +
        `raise vocabSize or set limitAlphabet ≤ ${Math.floor((vocabSize - SPECIAL_TOKENS.length) / 2)}`,
    );
  }
  const idOf = new Map(tokens.map((t, i) => [t, i]));

  // Words as piece ids; a word with a character outside the alphabet is left out, since WordPiece
  // encodes it as [UNK] whole whatever the merges.
  const words: Int32Array[] = [];
  const counts: number[] = [];
  for (const [word, n] of wordCounts) {
    const chars = [...word];
    const ids = chars.map((c, i) => idOf.get(i === 0 ? c : CONTINUATION_PREFIX + c) ?? -1);
    if (ids.includes(-1)) continue;
    words.push(Int32Array.from(ids));
    counts.push(n);
  }

  const pairCounts = new Map<number, number>();
  const wordsWithPair = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1, changed: Set<number>): void => {
    const word = words[w]!;
    for (let i = 0; i + 1 < word.length; i++) {
      const pair = word[i]! * PAIR_BASE + word[i + 1]!;
      pairCounts.set(pair, (pairCounts.get(pair) ?? 0) + sign * counts[w]!);
      changed.add(pair);
      if (sign > 0) {
        let set = wordsWithPair.get(pair);
        if (!set) wordsWithPair.set(pair, (set = new Set()));
        set.add(w);
      }
    }
  };
  const heap = new MaxHeap();
  const initial = new Set<number>();
  for (let w = 0; w < words.length; w++) addPairs(w, 1, initial);
  for (const pair of initial) heap.push([pairCounts.get(pair)!, pair]);

  while (tokens.length < vocabSize && heap.size > 0) {
    const [count, pair] = heap.pop();
    if (count !== pairCounts.get(pair)) continue; // stale: a fresher entry for this pair is queued
    if (count < Math.max(1, minFrequency)) break;
    const [a, b] = [Math.floor(pair / PAIR_BASE), pair % PAIR_BASE];
    const merged = tokens[a]! + tokens[b]!.slice(CONTINUATION_PREFIX.length);
    let id = idOf.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      idOf.set(merged, id);
    }
    const changed = new Set<number>();
    for (const w of wordsWithPair.get(pair)!) {
      const word = words[w]!;
      const next: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(word[i]!);
      }
      if (next.length === word.length) continue; // the pair left this word in an earlier merge
      addPairs(w, -1, changed);
      words[w] = Int32Array.from(next);
      addPairs(w, 1, changed);
    }
    wordsWithPair.delete(pair);
    for (const p of changed) {
      const c = pairCounts.get(p)!;
      if (c > 0) heap.push([c, p]);
      else pairCounts.delete(p);
    }
  }
  return tokens;
}

/** A binary max-heap ordered by count, then by the smaller pair. */
class MaxHeap {
  readonly #items: HeapEntry[] = [];

  get size(): number {
    return this.#items.length;
  }

  static #before(x: HeapEntry, y: HeapEntry): boolean {
    return x[0] > y[0] || (x[0] === y[0] && x[1] < y[1]);
  }

  push(entry: HeapEntry): void {
    const items = this.#items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!MaxHeap.#before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): HeapEntry {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const [l, r] = [2 * i + 1, 2 * i + 2];
        let best = i;
        if (l < items.length && MaxHeap.#before(items[l]!, items[best]!)) best = l;
        if (r < items.length && MaxHeap.#before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

/** The tokenizer JSON (format 1.0) for a WordPiece vocabulary in id order. */
function tokenizerJson(vocab: string[]): string {
  const special = (content: string, id: number): object => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const cls = SPECIAL_TOKENS.indexOf('[CLS]');
  const config = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t, i) => special(t, i)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [cls], tokens: ['[CLS]'] } },
    },
    decoder: { type: 'WordPiece', prefix: CONTINUATION_PREFIX, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: CONTINUATION_PREFIX,
      max_input_chars_per_word: 100,
      vocab: '__VOCAB__',
    },
  };
  // Written by hand so the entries stay in id order: a JS object would move integer-like tokens
  // ("3", "42") to the front.
  const vocabJson = `{${vocab.map((t, i) => `${JSON.stringify(t)}:${i}`).join(',')}}`;
  return JSON.stringify(config).replace('"__VOCAB__"', vocabJson);
}
