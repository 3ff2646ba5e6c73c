// safetensors, Hugging Face's tensor file format (https://huggingface.co/docs/safetensors), so
// weights move between byol-align and PyTorch: an 8-byte little-endian header length N, N bytes
// of UTF-8 JSON ({name: {dtype, shape, data_offsets}, "__metadata__"?: {string: string}}), then
// the tensors' little-endian, row-major bytes, tiling the rest of the file with no holes.
//
// The writer reproduces the reference writer's layout (prepare() in huggingface/safetensors,
// safetensors/src/tensor.rs), so a dict saved here and by Python's `save_file` gives the same
// bytes:
//   - tensors ordered by the reference's Dtype enum, descending (I64, F64, F32, I32, F16, U8,
//     BOOL for our dtypes: widest alignment first, so every tensor starts aligned), ties by name
//     in UTF-8 byte order (Rust's String order; JavaScript's default sort compares UTF-16 units);
//   - header JSON with no spaces, "__metadata__" first, then the tensors in that order, each as
//     {"dtype","shape","data_offsets"} in that key order; strings escaped as serde_json and
//     JSON.stringify both escape them;
//   - header padded with spaces (0x20) to a multiple of 8 bytes, so the data starts 8-aligned.
// Two choices where the reference gives no single answer:
//   - metadata keys are written sorted: the reference iterates a Rust HashMap, whose order
//     changes from process to process (safetensors issue #584), so only files with at most one
//     metadata key are reproducible there; sorted is the order its proposed fix (PR #790) picks.
//   - empty metadata is written as no "__metadata__" at all, so load → save reproduces a file
//     saved without metadata (Python's default); Python given `metadata={}` writes an empty object.
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { writeAll, writeAtomically } from './atomic_write.js';
import { native } from './native.js';
import { Tensor } from './tensor.js';
import { dtypeCode, type DType } from './dtype.js';
import { firstRepeatedKey, jsonErrorOffset, lineColumn } from './json_text.js';

/** Tensors by name, as stateDict() returns them or as a plain object. */
export type TensorDict = Map<string, Tensor> | Record<string, Tensor>;

/** What a safetensors file holds: its tensors in file order, and its string metadata ({} if none). */
export interface SafetensorsContents {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** A safetensors file or buffer that cannot be read or written; `file` names it. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  constructor(
    readonly file: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`safetensors: ${file}: ${problem}`, options);
  }
}

// The reference reader refuses larger headers; so do we, before allocating a string for one.
const MAX_HEADER_BYTES = 100_000_000;
// The addon's limit on dimensions (native/tensor.cc); the format itself sets none.
const MAX_DIMS = 64;

// The reference's Dtype enum in declaration order (ascending), which fixes the writer's tensor
// order. Later releases insert F4, F6_*, F8_E8M0, *FNUZ and C64 without reordering these.
const REFERENCE_DTYPE_ORDER = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
];
// Element sizes of the dtypes we read.
const ELEMENT_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
};
// Defined by the format but with no byol-align tensor type that holds them exactly.
const UNREPRESENTABLE = new Set([
  'U16',
  'U32',
  'U64',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'C64',
]);

const FILE_DTYPE_OF: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  bool: 'BOOL',
};
// How each readable file dtype becomes a tensor: as is, or widened exactly to a dtype we have
// (bfloat16 is the top half of a float32; int8 and int16 fit in int32).
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

function assertLittleEndianHost(file: string): void {
  // Tensors cross the addon in host byte order; the format is little-endian.
  if (endianness() !== 'LE') throw new SafetensorsError(file, 'big-endian hosts are not supported');
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDFFF]/u.test(s);
}

interface PlannedTensor {
  name: string;
  tensor: Tensor;
  byteLength: number;
}

interface Plan {
  /** The length field, the header JSON and its padding: everything before the tensor data. */
  head: Buffer;
  tensors: PlannedTensor[];
}

// Validates the input and lays out the file from shapes and dtypes alone (no tensor data is
// read), so saving can stream one tensor at a time.
function plan(tensors: TensorDict, metadata: Record<string, string> | undefined, file: string): Plan {
  assertLittleEndianHost(file);
  if (tensors === null || typeof tensors !== 'object')
    throw new SafetensorsError(file, `tensors must be a Map or an object of Tensors, got ${tensors === null ? 'null' : typeof tensors}`);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const rows = entries.map(([name, tensor]) => {
    if (typeof name !== 'string') throw new SafetensorsError(file, `tensor names must be strings, got ${typeof name}`);
    if (name === '__metadata__') throw new SafetensorsError(file, "'__metadata__' is reserved by the format and cannot name a tensor");
    if (hasLoneSurrogate(name))
      throw new SafetensorsError(file, `tensor name ${JSON.stringify(name)} is not valid Unicode (lone surrogate)`);
    if (!(tensor instanceof Tensor))
      throw new SafetensorsError(file, `'${name}' is not a Tensor (got ${tensor === null ? 'null' : typeof tensor})`);
    let dtype: DType;
    let shape: number[];
    try {
      dtype = tensor.dtype;
      shape = tensor.shape;
    } catch (err) {
      throw new SafetensorsError(file, `tensor '${name}': ${(err as Error).message}`, { cause: err });
    }
    const fileDtype = FILE_DTYPE_OF[dtype];
    const byteLength = shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[fileDtype]!;
    return { name, tensor, fileDtype, shape, byteLength, rank: REFERENCE_DTYPE_ORDER.indexOf(fileDtype) };
  });
  rows.sort((a, b) => b.rank - a.rank || utf8Compare(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object') throw new SafetensorsError(file, `metadata must be an object of strings, got ${typeof metadata}`);
    const keys = Object.keys(metadata).sort(utf8Compare);
    for (const key of keys) {
      const value = metadata[key];
      if (typeof value !== 'string') throw new SafetensorsError(file, `metadata '${key}' must be a string, got ${typeof value}`);
      if (hasLoneSurrogate(key) || hasLoneSurrogate(value))
        throw new SafetensorsError(file, `metadata '${key}' is not valid Unicode (lone surrogate)`);
    }
    if (keys.length > 0) {
      parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
    }
  }
  let offset = 0;
  for (const row of rows) {
    const end = offset + row.byteLength;
    parts.push(
      `${JSON.stringify(row.name)}:{"dtype":"${row.fileDtype}","shape":[${row.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padding = (8 - (json.length % 8)) % 8;
  const head = Buffer.alloc(8 + json.length + padding, 0x20);
  head.writeBigUInt64LE(BigInt(json.length + padding), 0);
  json.copy(head, 8);
  return { head, tensors: rows.map(({ name, tensor, byteLength }) => ({ name, tensor, byteLength })) };
}

// A tensor's bytes as the file stores them (the addon hands back row-major, CPU, host order).
function bytesOf(entry: PlannedTensor, file: string): Uint8Array {
  let data: ArrayBufferView;
  try {
    data = entry.tensor.data();
  } catch (err) {
    throw new SafetensorsError(file, `could not read tensor '${entry.name}': ${(err as Error).message}`, { cause: err });
  }
  if (data.byteLength !== entry.byteLength) {
    // The header is already laid out; a tensor that changed size since would make it lie.
    throw new SafetensorsError(
      file,
      `tensor '${entry.name}' holds ${data.byteLength} bytes, its shape and dtype promised ${entry.byteLength}`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The safetensors bytes of `tensors` (any device; copied to the CPU), laid out as Python's
 * `safetensors.torch.save` lays them out.
 *
 * @example
 * const bytes = serializeSafetensors({ w: tensor([[1, 2]]) }, { format: 'pt' });
 * parseSafetensors(bytes).tensors.get('w')!.toArray(); // [[1, 2]]
 */
export function serializeSafetensors(tensors: TensorDict, metadata?: Record<string, string>): Buffer {
  const layout = plan(tensors, metadata, '<buffer>');
  return Buffer.concat([layout.head, ...layout.tensors.map((t) => bytesOf(t, '<buffer>'))]);
}

/**
 * Writes `tensors` (and optional string metadata) to a safetensors file, atomically: the bytes go
 * to a temporary file in the same directory, are flushed to disk, and only then renamed over
 * `file`, so a crash or error midway leaves any previous file whole. Tensors are streamed one at
 * a time; a model's state dict is never held twice in memory.
 *
 * @example
 * saveSafetensors('encoder.safetensors', model.stateDict(), { step: '1000' });
 * // Python: safetensors.torch.load_file('encoder.safetensors')
 */
export function saveSafetensors(file: string, tensors: TensorDict, metadata?: Record<string, string>): void {
  const layout = plan(tensors, metadata, file);
  try {
    writeAtomically(file, (fd) => {
      writeAll(fd, layout.head);
      for (const entry of layout.tensors) writeAll(fd, bytesOf(entry, file));
    });
  } catch (err) {
    if (err instanceof SafetensorsError) throw err;
    throw new SafetensorsError(file, `could not write: ${(err as Error).message}`, { cause: err });
  }
}

interface HeaderEntry {
  name: string;
  fileDtype: string;
  shape: number[];
  begin: number;
  end: number;
}

function isOffset(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// The header's length from the 8-byte length field, checked against the bytes that follow it and
// the format's limit.
function headerLength(buf: Uint8Array, file: string): number {
  if (buf.byteLength < 8)
    throw new SafetensorsError(file, `file is truncated: ${buf.byteLength} bytes, too short for the 8-byte header length`);
  const declared = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(0, true);
  const available = buf.byteLength - 8;
  if (declared > BigInt(available)) {
    throw new SafetensorsError(
      file,
      `header length ${declared} runs past the end of the file: only ${available} bytes follow the length field (truncated, or not a safetensors file)`,
    );
  }
  const n = Number(declared);
  if (n > MAX_HEADER_BYTES) throw new SafetensorsError(file, `header length ${n} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`);
  return n;
}

function readHeader(buf: Uint8Array, file: string): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  const n = headerLength(buf, file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{'))
    throw new SafetensorsError(file, `header must begin with '{', begins with ${JSON.stringify(text.slice(0, 16))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    const at = err instanceof SyntaxError ? lineColumn(text, jsonErrorOffset(text, err)) : null;
    const where = at === null ? '' : ` at line ${at.line}, column ${at.column} of the header`;
    throw new SafetensorsError(file, `header is not valid JSON${where}: ${(err as Error).message}`, { cause: err });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw new SafetensorsError(file, 'header is not a JSON object');
  // JSON.parse keeps the last of two equal keys silently; the format forbids repeating one.
  const duplicate = firstRepeatedKey(text);
  if (duplicate) {
    throw new SafetensorsError(
      file,
      duplicate.topLevel ? `header names '${duplicate.key}' twice` : `header repeats the key '${duplicate.key}' within one object`,
    );
  }

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info))
        throw new SafetensorsError(file, '__metadata__ must be an object of strings');
      for (const [key, value] of Object.entries(info)) {
        if (typeof value !== 'string')
          throw new SafetensorsError(file, `__metadata__ '${key}' must be a string, got ${JSON.stringify(value)}`);
      }
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    if (info === null || typeof info !== 'object' || Array.isArray(info))
      throw new SafetensorsError(file, `tensor '${name}': entry must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in ELEMENT_BYTES || UNREPRESENTABLE.has(dtype))) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(ELEMENT_BYTES).join(', ')}`,
      );
    }
    if (UNREPRESENTABLE.has(dtype)) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' has dtype ${dtype}, which byol-align cannot hold; readable: ${Object.keys(ELEMENT_BYTES).join(', ')}`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isOffset)) {
      throw new SafetensorsError(file, `tensor '${name}' has shape ${JSON.stringify(shape)}; expected a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isOffset)) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' has data_offsets ${JSON.stringify(offsets)}; expected [begin, end], non-negative integers`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new SafetensorsError(file, `tensor '${name}' has data_offsets [${begin}, ${end}] that end before they begin`);
    if (shape.length > MAX_DIMS)
      throw new SafetensorsError(file, `tensor '${name}' has ${shape.length} dimensions; byol-align reads at most ${MAX_DIMS}`);
    // libtorch multiplies every dimension, zeros included, when it sizes a tensor's storage, so
    // [2^32, 2^32, 0] overflows there although it holds no element: the non-zero dimensions'
    // product must be addressable too.
    const addressable = (shape as number[]).reduce((a, b) => a * Math.max(b, 1), 1) * ELEMENT_BYTES[dtype]!;
    if (!Number.isSafeInteger(addressable))
      throw new SafetensorsError(file, `tensor '${name}' has shape [${shape.join(', ')}], too large to address`);
    const needed = (shape as number[]).reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype]!;
    if (end - begin !== needed) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' spans ${end - begin} bytes (data_offsets [${begin}, ${end}]) but shape [${shape.join(', ')}] ${dtype} needs ${needed}`,
      );
    }
    entries.push({ name, fileDtype: dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data buffer exactly: sorted by offset, each begins where the last ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLength = buf.byteLength - 8 - n;
  let position = 0;
  let previous: HeaderEntry | null = null;
  for (const entry of entries) {
    const at = `tensor '${entry.name}' (data_offsets [${entry.begin}, ${entry.end}])`;
    if (entry.begin < position)
      throw new SafetensorsError(file, `${at} overlaps tensor '${previous!.name}' (data_offsets [${previous!.begin}, ${previous!.end}])`);
    if (entry.begin > position)
      throw new SafetensorsError(file, `bytes [${position}, ${entry.begin}) of the data belong to no tensor: a hole before ${at}`);
    if (entry.end > dataLength) {
      throw new SafetensorsError(
        file,
        `${at} runs past the end of the data (${dataLength} bytes follow the header): the file is truncated or the offsets are out of range`,
      );
    }
    position = entry.end;
    previous = entry;
  }
  if (position < dataLength) {
    throw new SafetensorsError(
      file,
      `the last ${dataLength - position} bytes of the data belong to no tensor (the tensors cover ${position} of ${dataLength})`,
    );
  }
  return { entries, metadata, dataStart: 8 + n };
}

// Exact widenings for file dtypes byol-align has no tensor type for, read little-endian.
function widen(fileDtype: string, bytes: Uint8Array): ArrayBufferView {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (fileDtype) {
    case 'BF16': {
      const out = new Uint32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true) << 16;
      return new Float32Array(out.buffer);
    }
    case 'I8':
      return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    case 'I16': {
      const out = new Int32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true);
      return out;
    }
    default:
      return bytes;
  }
}

/**
 * Reads safetensors bytes, checking every rule of the format first (header within the buffer,
 * valid JSON, known dtypes, sizes matching shapes, tensors tiling the data with no hole,
 * overlap or duplicate); `sourceName` names the source in errors. Tensors come back on the CPU
 * in file order. F32, F64, F16, I64, I32, U8 and BOOL keep their dtype; BF16 is read as float32
 * and I8, I16 as int32 (exact widenings: byol-align has no tensor type for them).
 *
 * @example
 * const { tensors, metadata } = parseSafetensors(readFileSync('w.safetensors'), 'w.safetensors');
 */
export function parseSafetensors(buf: Uint8Array, sourceName = '<buffer>'): SafetensorsContents {
  if (typeof sourceName !== 'string') sourceName = '<buffer>';
  assertLittleEndianHost(sourceName);
  if (!(buf instanceof Uint8Array))
    throw new SafetensorsError(sourceName, `expected the bytes as a Uint8Array or Buffer, got ${buf === null ? 'null' : typeof buf}`);
  const { entries, metadata, dataStart } = readHeader(buf, sourceName);
  for (const entry of entries) {
    if (entry.fileDtype !== 'BOOL') continue;
    const bytes = buf.subarray(dataStart + entry.begin, dataStart + entry.end);
    const bad = bytes.findIndex((b) => b > 1);
    // libtorch assumes a bool byte is 0 or 1; anything else gives inconsistent results.
    if (bad >= 0)
      throw new SafetensorsError(
        sourceName,
        `BOOL tensor '${entry.name}' holds byte ${bytes[bad]} at element ${bad}; only 0 and 1 are valid`,
      );
  }
  // Everything is checked before the first tensor is made; should making one still fail (out of
  // memory), the ones already made are freed, so a failed load holds no memory.
  const tensors = new Map<string, Tensor>();
  for (const entry of entries) {
    const bytes = buf.subarray(dataStart + entry.begin, dataStart + entry.end);
    const dtype = LOADED_AS[entry.fileDtype]!;
    try {
      tensors.set(entry.name, new Tensor(native.fromBuffer(widen(entry.fileDtype, bytes), entry.shape, dtypeCode(dtype))));
    } catch (err) {
      for (const built of tensors.values()) built.dispose();
      throw new SafetensorsError(sourceName, `could not make tensor '${entry.name}': ${(err as Error).message}`, { cause: err });
    }
  }
  return { tensors, metadata };
}

/**
 * The tensor data of safetensors bytes: everything after the length field and the header, as a
 * view of `buf` (nothing is copied). Checks only that the header lies within the bytes (errors
 * name `sourceName`); parseSafetensors checks the rest. The data does not depend on the metadata,
 * since data_offsets count from the data's start: a checksum over it holds for any metadata.
 *
 * @example
 * const bytes = serializeSafetensors({ w: tensor([1, 2]) });
 * safetensorsData(bytes).byteLength; // 8: two float32s
 */
export function safetensorsData(buf: Uint8Array, sourceName = '<buffer>'): Uint8Array {
  return buf.subarray(8 + headerLength(buf, sourceName));
}

/**
 * Loads a safetensors file (as written by byol-align or Python's `safetensors.torch.save_file`),
 * validating it as parseSafetensors() does; errors name the file.
 *
 * @example
 * const { tensors } = loadSafetensors('encoder.safetensors');
 * model.loadStateDict(tensors);
 */
export function loadSafetensors(file: string): SafetensorsContents {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new SafetensorsError(file, `could not read: ${(err as Error).message}`, { cause: err });
  }
  return parseSafetensors(buf, file);
}
