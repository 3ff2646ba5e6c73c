// safetensors: files PyTorch wrote load with their values, files we write are byte-identical to
// the reference writer's and load in PyTorch, corrupt files are refused with errors naming the
// file and the problem, and a failed save leaves the previous file whole.
// Fixtures: scripts/fixtures/safetensors_fixture.py (run with the Python that has torch, tests/python_torch.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor, Tensor, type DType } from '../src/index.js';
import {
  loadSafetensors,
  parseSafetensors,
  safetensorsData,
  saveSafetensors,
  serializeSafetensors,
  SafetensorsError,
} from '../src/engine/safetensors.js';
import { pythonWithTorch } from './python_torch.js';
import { scratchDir } from './scratch_dir.js';

function repoRoot(): string {
  // This file runs as dist/tests/*.js; the fixtures stay in tests/ beside the sources.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}
const ROOT = repoRoot();
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'safetensors');
const SCRIPT = path.join(ROOT, 'scripts', 'fixtures', 'safetensors_fixture.py');
const PYTHON = pythonWithTorch();

const work = scratchDir('byol-safetensors-');
let fileCount = 0;
const tempFile = (stem: string): string => path.join(work, `${stem}-${fileCount++}.safetensors`);

// ---- values as the fixture JSON writes them ----
type Encoded = number | string | boolean;
interface Described {
  dtype: string;
  shape: number[];
  values: unknown;
}
interface DescribedFile {
  metadata: Record<string, string>;
  tensors: Record<string, Described>;
}

const flatten = (v: unknown): Encoded[] => (Array.isArray(v) ? v.flatMap(flatten) : [v as Encoded]);

/** A tensor's elements encoded as the fixture script encodes them (I64 as strings, non-finite as names). */
function encodeElements(t: Tensor, fileDtype: string): Encoded[] {
  const data = t.dtype === 'float16' ? t.to('float32').data() : t.data();
  return Array.from(data as ArrayLike<number | bigint>, (v): Encoded => {
    if (typeof v === 'bigint') return v.toString();
    if (fileDtype === 'BOOL') return v === 1;
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    return v;
  });
}

/** Asserts equality element by element, -0 and NaN included (Object.is). */
function assertSameElements(actual: Encoded[], expected: Encoded[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} elements, expected ${expected.length}`);
  actual.forEach((a, i) => assert.ok(Object.is(a, expected[i]), `${what}[${i}]: ${String(a)}, expected ${String(expected[i])}`));
}

const LOADED_AS: Record<string, DType> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  I32: 'int32',
  I64: 'int64',
  U8: 'uint8',
  BOOL: 'bool',
  BF16: 'float32',
  I8: 'int32',
  I16: 'int32',
};

function assertMatchesDescription(loaded: Map<string, Tensor>, described: DescribedFile, file: string): void {
  assert.deepEqual([...loaded.keys()].sort(), Object.keys(described.tensors).sort(), `${file}: tensor names`);
  for (const [name, want] of Object.entries(described.tensors)) {
    const t = loaded.get(name)!;
    assert.equal(t.dtype, LOADED_AS[want.dtype], `${name}: dtype`);
    assert.deepEqual(t.shape, want.shape, `${name}: shape`);
    assertSameElements(encodeElements(t, want.dtype), flatten(want.values), name);
  }
}

/** The tensor the description describes, made from its values alone (not from the file). */
function tensorFromDescription(d: Described): Tensor {
  const values = flatten(d.values);
  const numbers = (): number[] => values.map((v) => (typeof v === 'string' ? Number(v) : Number(v)));
  switch (d.dtype) {
    case 'F32':
      return tensor(new Float32Array(numbers()), { shape: d.shape });
    case 'F64':
      return tensor(new Float64Array(numbers()), { shape: d.shape });
    case 'F16': // every value the fixture holds is a float16 value, so the conversion is exact
      return tensor(new Float32Array(numbers()), { shape: d.shape, dtype: 'float16' });
    case 'I64':
      return tensor(
        BigInt64Array.from(values, (v) => BigInt(v as string)),
        { shape: d.shape },
      );
    case 'I32':
      return tensor(new Int32Array(numbers()), { shape: d.shape });
    case 'U8':
      return tensor(new Uint8Array(numbers()), { shape: d.shape });
    case 'BOOL':
      return tensor(
        Uint8Array.from(values, (v) => (v ? 1 : 0)),
        { shape: d.shape, dtype: 'bool' },
      );
    default:
      throw new Error(`no byol-align dtype writes ${d.dtype}`);
  }
}

const readJson = (file: string): DescribedFile => JSON.parse(readFileSync(file, 'utf8')) as DescribedFile;

// ---- a sample of every dtype we write, with edge values ----
const SAMPLES: Record<string, Tensor> = {
  'encoder.weight': tensor(new Float32Array([0.5, -1.25, 3e38, 1e-45, -0, NaN, Infinity, -Infinity]), { shape: [2, 4] }),
  'encoder.bias': tensor(new Float32Array([Math.PI]), { shape: [] }),
  double: tensor(new Float64Array([Math.PI, -1e300, 5e-324, -0, NaN]), { shape: [5] }),
  half: tensor(new Float32Array([1, -2.5, 65504, 2 ** -24, -0, Infinity, NaN]), { dtype: 'float16' }),
  steps: tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 62n + 1n, 0n]), { shape: [2, 2] }),
  counts: tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 7]), { shape: [3, 1] }),
  pixels: tensor(new Uint8Array([0, 255, 128]), { shape: [1, 3] }),
  mask: tensor(new Uint8Array([1, 0, 0, 1]), { dtype: 'bool', shape: [2, 2] }),
  'empty.rows': tensor(new Float32Array(0), { shape: [0, 4] }),
  'ünïcode "name"': tensor(new Int32Array([42]), { shape: [] }),
};
const SAMPLE_FILE_DTYPE: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  bool: 'BOOL',
};

const bytesOf = (t: Tensor): Buffer => {
  const d = t.data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
};

// ---- reading what PyTorch wrote ----

test('the PyTorch reference file loads with its dtypes, shapes, values and metadata', () => {
  const file = path.join(FIXTURES, 'reference.safetensors');
  const { tensors, metadata } = loadSafetensors(file);
  const described = readJson(path.join(FIXTURES, 'reference.json'));
  assert.deepEqual(metadata, described.metadata);
  assertMatchesDescription(tensors, described, file);
});

test('tensors come back in file order', () => {
  // The reference layout: I64, then F64, F32 (ties by UTF-8 bytes: 'Bias' < 'empty' < ... < 'ñame' < U+FF21 < U+1F600,
  // where UTF-16 code units would put U+1F600 first), I32, F16, U8, BOOL.
  const { tensors } = loadSafetensors(path.join(FIXTURES, 'reference.safetensors'));
  assert.deepEqual(
    [...tensors.keys()],
    [
      'count',
      'step',
      'double',
      'Bias',
      'empty',
      'scalar',
      'special',
      'weight',
      'ñame',
      '\uff21',
      '\u{1f600}',
      'index',
      'empty_half',
      'half',
      'pixels',
      'mask',
    ],
  );
});

test('BF16, I8 and I16 load widened exactly to float32 and int32', () => {
  const file = path.join(FIXTURES, 'widened.safetensors');
  const { tensors, metadata } = loadSafetensors(file);
  assert.deepEqual(metadata, {});
  assertMatchesDescription(tensors, readJson(path.join(FIXTURES, 'widened.json')), file);
});

// ---- writing what PyTorch would write ----

test('our bytes for the reference dict equal the reference file, whatever the insertion order', () => {
  const described = readJson(path.join(FIXTURES, 'reference.json'));
  const reference = readFileSync(path.join(FIXTURES, 'reference.safetensors'));
  const names = Object.keys(described.tensors);
  for (const order of [names, [...names].reverse()]) {
    const dict = new Map(order.map((name) => [name, tensorFromDescription(described.tensors[name]!)] as const));
    assert.ok(serializeSafetensors(dict, described.metadata).equals(reference), `serialized in order ${order.join(', ')}`);
    const file = tempFile('reference-copy');
    saveSafetensors(file, dict, described.metadata);
    assert.ok(readFileSync(file).equals(reference), 'saved file');
  }
});

test('our bytes equal the byte vectors in the reference crate’s own tests', () => {
  // safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty.
  const six = tensor(new Float32Array([0, 1, 2, 3, 4, 5]), { shape: [1, 2, 3] });
  const sixBytes = Buffer.from([0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]);
  const le64 = (n: number): Buffer => Buffer.from([n, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(
    serializeSafetensors({ 'attn.0': six }),
    Buffer.concat([le64(64), Buffer.from('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'), sixBytes]),
  );
  assert.deepEqual(
    serializeSafetensors({ attn0: six.reshape(1, 1, 2, 3) }),
    Buffer.concat([le64(72), Buffer.from('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       '), sixBytes]),
  );
  assert.deepEqual(serializeSafetensors({}), Buffer.concat([le64(8), Buffer.from('{}      ')]));
  assert.deepEqual(
    serializeSafetensors({}, { framework: 'pt' }),
    Buffer.concat([le64(40), Buffer.from('{"__metadata__":{"framework":"pt"}}     ')]),
  );
});

test('metadata keys are written sorted, so equal dicts give equal bytes', () => {
  const a = serializeSafetensors({ x: tensor([1]) }, { zeta: '1', alpha: '2', Mid: '3' });
  const b = serializeSafetensors({ x: tensor([1]) }, { Mid: '3', alpha: '2', zeta: '1' });
  assert.deepEqual(a, b);
  assert.match(a.toString('utf8', 8), /^\{"__metadata__":\{"Mid":"3","alpha":"2","zeta":"1"\},"x":/);
});

test('save then load gives back every dtype bit for bit, with its shape and metadata', () => {
  const file = tempFile('roundtrip');
  const metadata = { format: 'pt', note: 'line\nbreak "quoted" ✓' };
  saveSafetensors(file, SAMPLES, metadata);
  const loaded = loadSafetensors(file);
  assert.deepEqual(loaded.metadata, metadata);
  assert.deepEqual([...loaded.tensors.keys()].sort(), Object.keys(SAMPLES).sort());
  for (const [name, original] of Object.entries(SAMPLES)) {
    const back = loaded.tensors.get(name)!;
    assert.equal(back.dtype, original.dtype, `${name}: dtype`);
    assert.deepEqual(back.shape, original.shape, `${name}: shape`);
    assert.ok(bytesOf(back).equals(bytesOf(original)), `${name}: bytes differ`);
  }
  assert.ok(serializeSafetensors(loaded.tensors, loaded.metadata).equals(readFileSync(file)), 'load → serialize reproduces the file');
});

test('empty metadata is written as none, so load → save reproduces a file saved without metadata', () => {
  const bytes = serializeSafetensors({ x: tensor([1]) });
  assert.doesNotMatch(bytes.toString('utf8', 8), /__metadata__/);
  assert.deepEqual(serializeSafetensors({ x: tensor([1]) }, {}), bytes);
  const loaded = parseSafetensors(bytes);
  assert.deepEqual(loaded.metadata, {});
  assert.deepEqual(serializeSafetensors(loaded.tensors, loaded.metadata), bytes);
});

test('a non-contiguous tensor is written in row-major order', () => {
  const t = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]).t();
  assert.equal(t.isContiguous, false);
  const back = parseSafetensors(serializeSafetensors({ t })).tensors.get('t')!;
  assert.deepEqual(back.toArray(), [
    [1, 4],
    [2, 5],
    [3, 6],
  ]);
});

test('PyTorch reads a file we wrote with identical values', () => {
  const file = tempFile('for-pytorch');
  const metadata = { format: 'pt', step: '1000', ü: 'ok' };
  saveSafetensors(file, SAMPLES, metadata);
  const run = spawnSync(PYTHON, [SCRIPT, 'load', file], { encoding: 'utf8' });
  assert.equal(run.error, undefined, `could not start ${PYTHON}: ${String(run.error)}`);
  assert.equal(run.status, 0, `the PyTorch reader refused ${file}: ${run.stderr}`);
  const read = JSON.parse(run.stdout) as DescribedFile;
  assert.deepEqual(read.metadata, metadata);
  assert.deepEqual(Object.keys(read.tensors).sort(), Object.keys(SAMPLES).sort());
  for (const [name, original] of Object.entries(SAMPLES)) {
    const got = read.tensors[name]!;
    const fileDtype = SAMPLE_FILE_DTYPE[original.dtype];
    assert.equal(got.dtype, fileDtype, `${name}: dtype`);
    assert.deepEqual(got.shape, original.shape, `${name}: shape`);
    assertSameElements(flatten(got.values), encodeElements(original, fileDtype), name);
  }
});

test('the PyTorch reader refuses a corrupt file (so the test above can fail)', () => {
  const file = tempFile('for-pytorch-corrupt');
  writeFileSync(file, serializeSafetensors({ x: tensor([1, 2]) }).subarray(0, -1));
  const run = spawnSync(PYTHON, [SCRIPT, 'load', file], { encoding: 'utf8' });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /tensors cover 8 bytes of a 7-byte buffer/);
});

// ---- corrupt files ----

/** A file: the 8-byte length (of `header`, or `declaredLength` when given), the header, then `data`. */
function rawFile(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), declaredLength?: number): Buffer {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  return Buffer.concat([length, json, data]);
}

const entry = (dtype: string, shape: number[], begin: number, end: number): string =>
  JSON.stringify({ dtype, shape, data_offsets: [begin, end] });

function assertRefused(contents: Uint8Array, problem: RegExp): void {
  const file = tempFile('corrupt');
  writeFileSync(file, contents);
  assert.throws(
    () => loadSafetensors(file),
    (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, `not a SafetensorsError: ${String(err)}`);
      assert.equal(err.file, file);
      assert.ok(err.message.includes(file), `the message does not name the file: ${err.message}`);
      assert.match(err.message, problem);
      return true;
    },
  );
}

const eightBytes = new Uint8Array(8);

test('a file shorter than the length field is refused as truncated', () => {
  assertRefused(Buffer.from([1, 0, 0]), /file is truncated: 3 bytes, too short for the 8-byte header length/);
});

test('a header length beyond the file is refused', () => {
  assertRefused(rawFile('{}', new Uint8Array(0), 1000), /header length 1000 runs past the end of the file: only 2 bytes follow/);
  assertRefused(rawFile('{}', new Uint8Array(0), 2 ** 40), /header length 1099511627776 runs past the end/);
});

test('a header that is not JSON is refused at its line and column', () => {
  assertRefused(rawFile('{"x": {"dtype": "F32",'), /header is not valid JSON at line 1, column 23 of the header: Expected double-quoted/);
  // V8 gives no position for an unexpected token; the re-reader finds it.
  assertRefused(rawFile('{"a":}'), /header is not valid JSON at line 1, column 6 of the header: Unexpected token/);
  assertRefused(rawFile('{\n"a":\n}'), /header is not valid JSON at line 3, column 1 of the header/);
});

test('a header that is not UTF-8 or not an object is refused', () => {
  assertRefused(rawFile(Buffer.from([0x7b, 0xff, 0x7d])), /header is not valid UTF-8/);
  assertRefused(rawFile('[1, 2]  '), /header must begin with '\{', begins with "\[1, 2\] {2}"/);
  assertRefused(rawFile('{"__metadata__": {"step": 3}}'), /__metadata__ 'step' must be a string, got 3/);
});

test('an unknown dtype, or one byol-align cannot hold, is refused by name', () => {
  assertRefused(
    rawFile(`{"x":${entry('F128', [1], 0, 16)}}`, new Uint8Array(16)),
    /tensor 'x' has unknown dtype "F128"; expected one of BOOL, U8/,
  );
  assertRefused(rawFile(`{"x":${entry('U16', [4], 0, 8)}}`, eightBytes), /tensor 'x' has dtype U16, which byol-align cannot hold/);
});

test('a size that does not match shape × dtype is refused', () => {
  assertRefused(
    rawFile(`{"x":${entry('F32', [3], 0, 8)}}`, eightBytes),
    /tensor 'x' spans 8 bytes \(data_offsets \[0, 8\]\) but shape \[3\] F32 needs 12/,
  );
  assertRefused(
    rawFile(`{"x":${entry('F32', [-2], 0, 8)}}`, eightBytes),
    /tensor 'x' has shape \[-2\]; expected a list of non-negative integers/,
  );
  assertRefused(rawFile(`{"x":${entry('F32', [2], 8, 0)}}`, eightBytes), /tensor 'x' has data_offsets \[8, 0\] that end before they begin/);
  assertRefused(
    rawFile('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', eightBytes),
    /tensor 'x' has data_offsets \[0\]; expected \[begin, end\]/,
  );
});

test('a shape whose dimensions overflow libtorch is refused before any tensor is made, zeros included', () => {
  // [2^32, 2^32, 0] holds no element, but libtorch multiplies every dimension when it sizes the storage.
  assertRefused(
    rawFile(`{"x":${entry('F32', [2 ** 32, 2 ** 32, 0], 0, 0)}}`),
    /tensor 'x' has shape \[4294967296, 4294967296, 0\], too large to address/,
  );
  assertRefused(
    rawFile(`{"x":${entry('U8', [0, 2 ** 40, 2 ** 20], 0, 0)}}`),
    /tensor 'x' has shape \[0, 1099511627776, 1048576\], too large to address/,
  );
  assertRefused(
    rawFile(`{"x":${entry('F32', Array<number>(65).fill(1), 0, 4)}}`, new Uint8Array(4)),
    /tensor 'x' has 65 dimensions; byol-align reads at most 64/,
  );
});

test('a tensor that cannot be made frees the tensors already made', async () => {
  const { native } = await import('../src/engine/native.js');
  const bytes = serializeSafetensors({ a: tensor([1, 2]), b: tensor([3]), c: tensor([4]) });
  const made: unknown[] = [];
  const fromBuffer = native.fromBuffer;
  native.fromBuffer = (data, shape, dtype) => {
    if (made.length === 2) throw new Error('out of memory (simulated)');
    const handle = fromBuffer(data, shape, dtype);
    made.push(handle);
    return handle;
  };
  try {
    assert.throws(
      () => parseSafetensors(bytes, 'three.safetensors'),
      (err: unknown) => {
        assert.ok(err instanceof SafetensorsError, `not a SafetensorsError: ${String(err)}`);
        assert.match(err.message, /three\.safetensors: could not make tensor 'c': out of memory \(simulated\)/);
        return true;
      },
    );
  } finally {
    native.fromBuffer = fromBuffer;
  }
  assert.equal(made.length, 2);
  assert.deepEqual(
    made.map((h) => native.isDisposed(h as Parameters<typeof native.isDisposed>[0])),
    [true, true],
  );
});

test('overlapping offsets are refused, naming both tensors', () => {
  const header = `{"a":${entry('F32', [2], 0, 8)},"b":${entry('F32', [2], 4, 12)}}`;
  assertRefused(rawFile(header, new Uint8Array(12)), /tensor 'b' \(data_offsets \[4, 12\]\) overlaps tensor 'a' \(data_offsets \[0, 8\]\)/);
});

test('a hole between tensors, or bytes after the last, is refused', () => {
  const header = `{"a":${entry('F32', [1], 0, 4)},"b":${entry('F32', [1], 8, 12)}}`;
  assertRefused(rawFile(header, new Uint8Array(12)), /bytes \[4, 8\) of the data belong to no tensor: a hole before tensor 'b'/);
  assertRefused(rawFile(`{"a":${entry('F32', [1], 4, 8)}}`, eightBytes), /bytes \[0, 4\) of the data belong to no tensor/);
  assertRefused(rawFile(`{"a":${entry('F32', [1], 0, 4)}}`, eightBytes), /the last 4 bytes of the data belong to no tensor/);
});

test('offsets beyond the data, as in a truncated file, are refused', () => {
  const whole = serializeSafetensors({ a: tensor([1, 2, 3]), b: tensor(new Float64Array([4])) });
  assertRefused(
    whole.subarray(0, whole.length - 5),
    /tensor 'a' \(data_offsets \[8, 20\]\) runs past the end of the data \(15 bytes follow the header\): the file is truncated/,
  );
  assertRefused(rawFile(`{"a":${entry('F32', [2], 0, 8)}}`, new Uint8Array(4)), /tensor 'a' .* runs past the end of the data \(4 bytes/);
});

test('a tensor named twice is refused', () => {
  const header = `{"w":${entry('F32', [1], 0, 4)}, "w" :${entry('F32', [1], 4, 8)}}`;
  assertRefused(rawFile(header, eightBytes), /header names 'w' twice/);
  assertRefused(
    rawFile(`{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)),
    /repeats the key 'dtype' within one object/,
  );
});

test('a BOOL byte other than 0 or 1 is refused', () => {
  assertRefused(rawFile(`{"m":${entry('BOOL', [3], 0, 3)}}`, Buffer.from([1, 2, 0])), /BOOL tensor 'm' holds byte 2 at element 1/);
});

test('parseSafetensors names the source it was given', () => {
  assert.throws(() => parseSafetensors(Buffer.from([1]), 'upload #7'), /^SafetensorsError: safetensors: upload #7: file is truncated/);
  assert.throws(() => parseSafetensors(Buffer.from([1])), /safetensors: <buffer>: /);
});

test('safetensorsData is the bytes after the header, as a view, whatever the metadata', () => {
  assert.deepEqual(safetensorsData(rawFile('{}  ', Buffer.from([7, 8, 9]))), Buffer.from([7, 8, 9]));
  const twoFloats = Buffer.from(new Float32Array([1, 2]).buffer);
  const bytes = serializeSafetensors({ w: tensor([1, 2]) }, { step: '1' });
  assert.deepEqual(Buffer.from(safetensorsData(bytes)), twoFloats);
  assert.deepEqual(
    Buffer.from(safetensorsData(serializeSafetensors({ w: tensor([1, 2]) }, { step: '1', note: 'x'.repeat(100) }))),
    twoFloats,
  );
  assert.equal(safetensorsData(bytes).buffer, bytes.buffer);
  assert.throws(
    () => safetensorsData(rawFile('{}', new Uint8Array(0), 1000), 'ckpt'),
    /safetensors: ckpt: header length 1000 runs past the end/,
  );
  assert.throws(() => safetensorsData(Buffer.from([1])), /safetensors: <buffer>: file is truncated/);
});

// ---- bad input to the writer ----

test('the writer refuses what the format cannot hold, naming the problem', () => {
  const file = tempFile('refused');
  assert.throws(() => saveSafetensors(file, { __metadata__: tensor([1]) }), /safetensors: .*refused.*'__metadata__' is reserved/);
  assert.throws(() => saveSafetensors(file, { w: [1, 2] as unknown as Tensor }), /'w' is not a Tensor \(got object\)/);
  assert.throws(
    () => saveSafetensors(file, { w: tensor([1]) }, { step: 3 as unknown as string }),
    /metadata 'step' must be a string, got number/,
  );
  assert.equal(existsSync(file), false);
});

// ---- atomic writes ----

test('a save that fails midway leaves the previous file intact and no temporary file', () => {
  const dir = mkdtempSync(path.join(work, 'atomic-'));
  const file = path.join(dir, 'model.safetensors');
  saveSafetensors(file, { w: tensor([1, 2, 3]) });
  const before = readFileSync(file);

  // 'big' (F64) is written before 'late' (F32). 'late' is disposed after its shape and dtype were
  // read (the Tensor caches them), so the layout succeeds and reading its data fails midway.
  const late = tensor([4, 5]);
  void late.shape;
  void late.dtype;
  late.dispose();
  const big = tensor(new Float64Array(1 << 16));
  assert.throws(
    () => saveSafetensors(file, { big, late }),
    /safetensors: .*model\.safetensors: could not read tensor 'late': this tensor was disposed/,
  );

  assert.ok(readFileSync(file).equals(before), 'the previous file changed');
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  assert.deepEqual(loadSafetensors(file).tensors.get('w')!.toArray(), [1, 2, 3]);
});

test('a save that succeeds replaces the previous file', () => {
  const dir = mkdtempSync(path.join(work, 'replace-'));
  const file = path.join(dir, 'model.safetensors');
  saveSafetensors(file, { w: tensor([1, 2, 3]) });
  saveSafetensors(file, { v: tensor([7]) });
  assert.deepEqual([...loadSafetensors(file).tensors.keys()], ['v']);
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
});

test('a save into a missing directory fails with the file named and creates nothing', () => {
  const file = path.join(work, 'no-such-dir', 'model.safetensors');
  assert.throws(
    () => saveSafetensors(file, { w: tensor([1]) }),
    (err: unknown) => err instanceof SafetensorsError && err.file === file && /could not write: ENOENT/.test(err.message),
  );
  assert.equal(existsSync(path.dirname(file)), false);
});
