// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
// (two zero bytes, a type code, the number of dimensions), the dimensions as big-endian u32, then
// the values row-major. Files may be gzipped, as Debian's dataset-fashion-mnist ships them.
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tensor, type Tensor } from '../engine/index.js';

const UNSIGNED_BYTE = 0x08;

/** The decoded contents of an IDX file: its shape and its bytes (only unsigned-byte data is used by MNIST-style sets). */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Parses IDX bytes (gzipped or raw); `source` names the file in errors. */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? new Uint8Array(gunzipSync(bytes)) : bytes;
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) throw new Error(`${source}: not an IDX file (bad magic number)`);
  if (raw[2] !== UNSIGNED_BYTE)
    throw new Error(`${source}: IDX type 0x${raw[2]!.toString(16)} is not supported (only unsigned bytes, 0x08)`);
  const ndim = raw[3]!;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (raw.length < 4 + 4 * ndim) throw new Error(`${source}: truncated IDX header`);
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (raw.length - offset !== count) {
    throw new Error(`${source}: IDX header says ${count} values (shape [${shape.join(', ')}]) but the file holds ${raw.length - offset}`);
  }
  return { shape, data: raw.subarray(offset) };
}

export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read IDX file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseIdx(bytes, path);
}

/** An image classification set: uint8 images [N, 1, H, W] and int64 labels [N]. */
export interface LabelledImages {
  images: Tensor;
  labels: Tensor;
}

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Loads an MNIST-layout split from a directory: `train` or `t10k` prefixed image and label files.
 *
 * @example
 * const { images, labels } = loadMnistSplit(DEBIAN_FASHION_MNIST_DIR, 'train'); // [60000,1,28,28], [60000]
 */
export function loadMnistSplit(dir: string, split: 'train' | 't10k'): LabelledImages {
  const find = (kind: string): string => {
    for (const name of [
      `${split}-${kind}-idx${kind === 'images' ? 3 : 1}-ubyte.gz`,
      `${split}-${kind}-idx${kind === 'images' ? 3 : 1}-ubyte`,
    ]) {
      const path = `${dir}/${name}`;
      if (existsSync(path)) return path;
    }
    throw new Error(`${dir}: no ${split} ${kind} file (${split}-${kind}-idx*-ubyte[.gz]); on Debian install dataset-fashion-mnist`);
  };
  const images = readIdx(find('images'));
  const labels = readIdx(find('labels'));
  if (images.shape.length !== 3) throw new Error(`${dir}: ${split} images have shape [${images.shape.join(', ')}], expected [N, H, W]`);
  if (labels.shape[0] !== images.shape[0]) {
    throw new Error(`${dir}: ${split} has ${images.shape[0]} images but ${labels.shape[0]} labels`);
  }
  const [n, h, w] = images.shape as [number, number, number];
  return {
    images: tensor(images.data, { shape: [n, 1, h, w] }),
    labels: tensor(labels.data).to('int64'),
  };
}
