// Reading JSON text where JSON.parse says too little: the line and column of a syntax error (V8's
// messages do not always carry a position), and a key repeated within one object (JSON.parse keeps
// the last one silently). One grammar walker serves both, so data sets, config files and
// safetensors headers agree on what JSON is and where it goes wrong.

/** 1-based line and column of a UTF-16 offset into `text` (lines end at '\n'). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Where JSON.parse failed: the offset V8 reports ("... in JSON at position 41"), or, for the
 * messages that carry none ("Unexpected token '}', ... is not valid JSON"), the offset found by
 * re-reading the text with {@link firstJsonSyntaxError}.
 *
 * @example
 * const text = '{"a": }';
 * try { JSON.parse(text); } catch (err) { lineColumn(text, jsonErrorOffset(text, err as SyntaxError)); } // { line: 1, column: 7 }
 */
export function jsonErrorOffset(text: string, error: SyntaxError): number {
  const reported = /at position (\d+)/.exec(error.message);
  if (reported) return Number(reported[1]);
  if (/Unexpected end of JSON input/.test(error.message)) return text.length;
  return firstJsonSyntaxError(text) ?? text.length;
}

/**
 * Offset of the first character that breaks JSON's grammar (RFC 8259), `text.length` when the
 * text ends too early, or null for valid JSON.
 *
 * @example
 * firstJsonSyntaxError('{"a":}'); // 5
 */
export function firstJsonSyntaxError(text: string): number | null {
  return walkJson(text, false)?.at ?? null;
}

/** A key that appears twice in one object of JSON text. */
export interface RepeatedKey {
  /** The key, unescaped. */
  key: string;
  /** UTF-16 offset of its second appearance (the opening quote). */
  at: number;
  /** True when the object is the text's outermost value. */
  topLevel: boolean;
}

/**
 * The first key repeated within one object, or null when there is none. Meant for text that
 * JSON.parse accepted (which keeps the last value of a repeated key); text that breaks the grammar
 * before any repeat gives null as well.
 *
 * @example
 * firstRepeatedKey('{"a":{"b":1,"b":2}}'); // { key: 'b', at: 12, topLevel: false }
 */
export function firstRepeatedKey(text: string): RepeatedKey | null {
  const stop = walkJson(text, true);
  return stop?.repeatedKey === undefined ? null : { key: stop.repeatedKey, at: stop.at, topLevel: stop.topLevel };
}

/** Where and why a walk of JSON text stopped: a syntax error, or (when asked for) a repeated key. */
type WalkStop = { at: number; repeatedKey?: undefined } | { at: number; repeatedKey: string; topLevel: boolean };

/**
 * Walks JSON text by its grammar to the first syntax error, or with `findRepeatedKeys` to the
 * first key repeated within its object; null when the text is valid (and repeats no key).
 * Iterative, with the open arrays and objects on a stack of its own, so any depth of nesting costs
 * memory, never the call stack.
 */
function walkJson(text: string, findRepeatedKeys: boolean): WalkStop | null {
  let i = 0;
  let stop: WalkStop = { at: 0 };
  const fail = (): never => {
    stop = { at: i };
    throw stop;
  };
  const space = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const expect = (char: string): void => {
    if (text[i] !== char) fail();
    i++;
  };
  const digits = (): void => {
    if (!(text[i]! >= '0' && text[i]! <= '9')) fail();
    while (text[i]! >= '0' && text[i]! <= '9') i++;
  };
  const string = (): void => {
    expect('"');
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail();
      if (c !== 0x5c) {
        i++;
        continue;
      }
      i++;
      if (text[i] === 'u') {
        i++;
        for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail();
      } else if (text[i] !== undefined && '"\\/bfnrt'.includes(text[i]!)) i++;
      else fail();
    }
  };
  const open: ('{' | '[')[] = []; // the arrays and objects the next value is inside, innermost last
  const keysOfOpenObjects: Set<string>[] = []; // with findRepeatedKeys: the keys of each open object so far
  const key = (): void => {
    space();
    const start = i;
    string();
    if (findRepeatedKeys) {
      const name = JSON.parse(text.slice(start, i)) as string; // a string the walk just found valid
      const keys = keysOfOpenObjects[keysOfOpenObjects.length - 1]!;
      if (keys.has(name)) {
        stop = { at: start, repeatedKey: name, topLevel: open.length === 1 };
        throw stop;
      }
      keys.add(name);
    }
    space();
    expect(':');
  };
  const scalar = (): void => {
    const c = text[i];
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      if (text[i] === '-') i++;
      if (text[i] === '0') i++;
      else digits();
      if (text[i] === '.') {
        i++;
        digits();
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits();
      }
      return;
    }
    const literal = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : null;
    if (literal === null) fail();
    for (const char of literal!) expect(char);
  };
  try {
    value: for (;;) {
      space();
      const c = text[i];
      if (c === '{' || c === '[') {
        i++;
        space();
        if (text[i] === (c === '{' ? '}' : ']')) i++;
        else {
          open.push(c);
          if (c === '{') {
            if (findRepeatedKeys) keysOfOpenObjects.push(new Set());
            key();
          }
          continue value;
        }
      } else scalar();
      // A value has ended: a comma starts the next member of its container, else the container closes.
      while (open.length > 0) {
        space();
        const container = open[open.length - 1]!;
        if (text[i] === ',') {
          i++;
          if (container === '{') key();
          continue value;
        }
        expect(container === '{' ? '}' : ']');
        open.pop();
        if (container === '{' && findRepeatedKeys) keysOfOpenObjects.pop();
      }
      break;
    }
    space();
    if (i < text.length) fail();
    return null;
  } catch (err) {
    if (err === stop) return stop;
    throw err;
  }
}
