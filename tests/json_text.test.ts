// JSON text where JSON.parse says too little (src/engine/json_text.ts): a syntax error's offset,
// line and column, and keys repeated within one object. Expected offsets are counted by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstJsonSyntaxError, firstRepeatedKey, jsonErrorOffset, lineColumn } from '../src/engine/json_text.js';

test('a JSON offset becomes a 1-based line and column', () => {
  const text = '{\n  "a": 1,\n  "b": x\n}';
  assert.deepEqual(lineColumn(text, 0), { line: 1, column: 1 });
  assert.deepEqual(lineColumn(text, text.indexOf('x')), { line: 3, column: 8 });
  assert.deepEqual(lineColumn(text, text.indexOf('\n')), { line: 1, column: 2 }); // the newline ends line 1
});

test('the JSON re-reader finds the first character that breaks the grammar', () => {
  const cases: [string, number | null][] = [
    ['{"a": [1, 2.5e-3, "x\\u00e9", true, null]}', null],
    ['{"a":}', 5],
    ['{"a":tru}', 8],
    ['[1, 2,]', 6],
    ['{"a":1,}', 7],
    ['{"a" 1}', 5],
    ['[01]', 2],
    ['"\\q"', 2],
    ['[1, 2', 5],
    ['{} x', 3],
  ];
  for (const [text, offset] of cases) assert.equal(firstJsonSyntaxError(text), offset, text);
  for (const [text, offset] of cases) {
    if (offset === null) continue;
    let message = '';
    try {
      JSON.parse(text);
    } catch (err) {
      message = (err as Error).message;
    }
    const reported = /at position (\d+)/.exec(message);
    if (reported) assert.equal(Number(reported[1]), offset, `V8 and the re-reader disagree on ${text}: ${message}`);
  }
});

test('a parse error without a position in its message is placed by the re-reader', () => {
  const text = '{\n  "a": }';
  let error: SyntaxError | undefined;
  try {
    JSON.parse(text);
  } catch (err) {
    error = err as SyntaxError;
  }
  assert.ok(error instanceof SyntaxError);
  assert.doesNotMatch(error.message, /at position/); // V8: "Unexpected token '}', ... is not valid JSON"
  assert.equal(jsonErrorOffset(text, error), 9);
  assert.deepEqual(lineColumn(text, 9), { line: 2, column: 8 });
});

test('a key repeated within one object is found at its second appearance', () => {
  assert.deepEqual(firstRepeatedKey('{"w":1, "w" :2}'), { key: 'w', at: 8, topLevel: true });
  assert.deepEqual(firstRepeatedKey('{"a":{"b":1,"b":2}}'), { key: 'b', at: 12, topLevel: false });
  assert.deepEqual(firstRepeatedKey('[{"k":1,"k":2}]'), { key: 'k', at: 8, topLevel: false });
});

test('keys are compared unescaped: "\\u0061" and "a" are the same key', () => {
  assert.deepEqual(firstRepeatedKey('{"\\u0061":1,"a":2}'), { key: 'a', at: 12, topLevel: true });
  assert.equal(firstRepeatedKey('{"a\\"":1,"a":2}'), null); // "a\"" is the key a", not a
});

test('equal keys in different objects, and strings equal to a key, are not repeats', () => {
  assert.equal(firstRepeatedKey('{"a":{"x":1},"b":{"x":2}}'), null);
  assert.equal(firstRepeatedKey('[{"k":1},{"k":2}]'), null);
  assert.equal(firstRepeatedKey('{"a":"a","b":["a",{"a":"b"}],"c":{}}'), null);
  assert.equal(firstRepeatedKey('{"x":{"y":{}},"y":1}'), null); // "y" of the inner object is closed before the outer "y"
});

test('a repeated key is valid JSON to the syntax check, and the repeat check needs valid text', () => {
  assert.equal(firstJsonSyntaxError('{"a":1,"a":2}'), null);
  assert.equal(firstRepeatedKey('{"a":1,,"a":2}'), null); // the walk stops at the syntax error first
});

test('the repeat check is iterative: 100000 nested objects cost no stack', () => {
  const nested = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
  assert.equal(firstRepeatedKey(nested), null);
  assert.deepEqual(firstRepeatedKey(nested.slice(0, -1) + ',"a":2}'), { key: 'a', at: nested.length, topLevel: true });
});
