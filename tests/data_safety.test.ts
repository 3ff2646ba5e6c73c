// What data files cannot make byol-align do (issue 20): read outside the image folder (`..`, absolute
// paths, symbolic links), echo the content of a file that is not an image, hang on a FIFO named like
// an image or a data file, spend unbounded time and memory on one huge caption or a giant image,
// overflow the stack on deeply nested JSON, or read bytes that are not UTF-8 as U+FFFD.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pngBytes } from './png.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { loadKarpathySplit } from '../src/data/karpathy.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { loadDataSource } from '../src/data/source.js';
import { decodeImage, describeDecodeFailure, ImageDecodeError, maxInputPixels } from '../src/data/image_decode.js';
import { ImageDecodePool } from '../src/data/image_pool.js';
import { captionText, DatasetError, imageFileProblem, MAX_CAPTION_CHARS, parseJson, type BadRecordReason } from '../src/data/paired.js';
import { decodeUtf8, firstInvalidUtf8Byte, InvalidUtf8Error } from '../src/data/safe_read.js';
import { firstJsonSyntaxError } from '../src/engine/json_text.js';
import { EmbedInputError, readEmbedInputs } from '../src/run/embed_run.js';
import { scratchDir } from './scratch_dir.js';

const root = scratchDir('byol-align-data-safety-');
let folders = 0;
function folder(): string {
  const dir = join(root, String(folders++));
  mkdirSync(dir);
  return dir;
}

function write(dir: string, name: string, content: string | Buffer | object): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content));
  return path;
}

function throwsDatasetError(fn: () => unknown, reason: BadRecordReason, ...fragments: string[]): DatasetError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DatasetError, `expected a DatasetError, got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  for (const fragment of fragments) assert.ok(caught.message.includes(fragment), `"${caught.message}" lacks "${fragment}"`);
  return caught;
}

/** A data root with an image folder and, beside it, a folder the data must not reach. */
function tree(): { dir: string; images: string; outside: string; secret: string } {
  const dir = folder();
  const images = join(dir, 'data', 'images');
  write(images, 'ok.png', pngBytes());
  const outside = join(dir, 'outside');
  const secret = write(outside, 'secret.png', pngBytes());
  return { dir, images, outside, secret };
}

const coco = (fileName: string): object => ({
  images: [{ id: 1, file_name: fileName }],
  annotations: [{ id: 10, image_id: 1, caption: 'a caption' }],
});

describe('no reads outside the image folder', () => {
  test("COCO: a file_name like '../../outside/secret.png' is refused, naming the captions file and the record", () => {
    const { dir, images, secret } = tree();
    const captions = write(dir, 'captions.json', coco('../../outside/secret.png'));
    throwsDatasetError(
      () => loadCocoCaptions(captions, images),
      'outside-image-folder',
      captions,
      'images[0] (id 1)',
      secret,
      'outside the image folder',
    );
    const skipped = loadCocoCaptions(captions, images, { onBadRecord: 'skip' });
    assert.deepEqual(skipped.items, []);
    assert.deepEqual(skipped.skipped, { 'outside-image-folder': 1 });
  });

  test('COCO: with allowOutsideImages the same record is read', () => {
    const { dir, images, secret } = tree();
    const captions = write(dir, 'captions.json', coco('../../outside/secret.png'));
    assert.deepEqual(
      loadCocoCaptions(captions, images, { allowOutsideImages: true }).items.map((i) => i.image),
      [secret],
    );
    // The data-source spec, which the config's data.allowOutsideImages goes through, passes it on.
    assert.equal(loadDataSource(`coco:${captions}`, { images, allowOutsideImages: true }).items.length, 1);
    throwsDatasetError(() => loadDataSource(`coco:${captions}`, { images }), 'outside-image-folder', captions);
  });

  test('COCO: a symbolic link in the image folder whose target is outside is refused; one to a file inside is read', () => {
    const { dir, images, secret } = tree();
    symlinkSync(secret, join(images, 'link.png'));
    symlinkSync(join(images, 'ok.png'), join(images, 'inner.png'));
    const captions = write(dir, 'captions.json', coco('link.png'));
    throwsDatasetError(
      () => loadCocoCaptions(captions, images),
      'outside-image-folder',
      captions,
      'images[0] (id 1)',
      join(images, 'link.png'),
      `symbolic link to ${secret}`,
    );
    const inner = write(dir, 'inner.json', coco('inner.png'));
    assert.deepEqual(
      loadCocoCaptions(inner, images).items.map((i) => i.image),
      [join(images, 'inner.png')],
    );
  });

  test('COCO: a symbolic link to a folder outside is refused even when the file is not checked', () => {
    const { dir, images, outside } = tree();
    symlinkSync(outside, join(images, 'sub'));
    const captions = write(dir, 'captions.json', coco('sub/secret.png'));
    throwsDatasetError(() => loadCocoCaptions(captions, images, { checkImages: false }), 'outside-image-folder', 'symbolic link');
  });

  test("Karpathy: a filepath of '../..' is refused, naming the split file and the record", () => {
    const { dir, images } = tree();
    const split = write(dir, 'dataset_x.json', {
      images: [{ filepath: '../..', filename: 'outside/secret.png', split: 'test', sentences: [{ raw: 'a caption' }] }],
    });
    throwsDatasetError(
      () => loadKarpathySplit(split, images, 'test'),
      'outside-image-folder',
      split,
      'images[0] (outside/secret.png)',
      'outside the image folder',
    );
  });

  test("JSONL: an absolute path or '..' outside the manifest's folder is refused with the line; an absolute path inside is read", () => {
    const { dir, secret } = tree();
    const base = join(dir, 'data');
    const inside = join(base, 'images', 'ok.png');
    const manifest = write(
      base,
      'pairs.jsonl',
      [
        { id: 'in', image: inside },
        { id: 'abs', image: secret },
        { id: 'up', image: '../outside/secret.png' },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    throwsDatasetError(() => loadJsonlManifest(manifest), 'outside-image-folder', `${manifest}:2 (id "abs")`, secret);
    const kept = loadJsonlManifest(manifest, { onBadRecord: 'skip' });
    assert.deepEqual(
      kept.items.map((i) => [i.id, i.image]),
      [['in', inside]],
    );
    assert.deepEqual(kept.skipped, { 'outside-image-folder': 2 });
  });

  test('embed: a symbolic link in the input folder to a file outside it is refused unless allowed', () => {
    const { images, secret } = tree();
    symlinkSync(secret, join(images, 'z.png'));
    assert.throws(
      () => readEmbedInputs('image', images),
      (err: Error) => err instanceof EmbedInputError && err.message.includes(join(images, 'z.png')) && err.message.includes(secret),
    );
    assert.deepEqual(readEmbedInputs('image', images, { allowOutsideImages: true }).ids, ['ok.png', 'z.png']);
  });

  test('embed: a symbolic link in the input folder to a file inside it is read', () => {
    const { images } = tree();
    symlinkSync(join(images, 'ok.png'), join(images, 'again.png'));
    assert.deepEqual(readEmbedInputs('image', images).ids, ['again.png', 'ok.png']);
  });
});

describe('errors never quote file content', () => {
  const secretText = 'root:*:20000:0:99999:7:::\n';
  const quoted = (message: string): boolean =>
    message.includes('root') || message.includes('72 6f 6f 74') || message.toLowerCase().includes('726f6f74');

  test('the parsers name a non-image file without its first bytes', () => {
    const dir = folder();
    const shadow = write(dir, 'images/shadow.png', secretText);
    const problem = imageFileProblem(shadow);
    assert.equal(problem?.reason, 'not-an-image');
    assert.ok(problem.problem.includes(shadow), problem.problem);
    assert.ok(!quoted(problem.problem), problem.problem);
  });

  test('decoding names a non-image file without its first bytes', async () => {
    const dir = folder();
    const shadow = write(dir, 'shadow.png', secretText);
    await assert.rejects(
      decodeImage(shadow, { size: 8 }),
      (err: Error) =>
        err instanceof ImageDecodeError && err.kind === 'not-an-image' && err.message.startsWith(shadow) && !quoted(err.message),
    );
  });

  test('embed names a non-image input without its first bytes', () => {
    const dir = folder();
    write(dir, 'shadow.png', secretText);
    assert.throws(
      () => readEmbedInputs('image', dir),
      (err: Error) => err instanceof EmbedInputError && err.message.includes('shadow.png') && !quoted(err.message),
    );
  });
});

describe('a FIFO named like a data file does not hang', () => {
  const fifoDir = folder();
  const fifo = (name: string): string => {
    const path = join(fifoDir, name);
    const made = spawnSync('mkfifo', [path]);
    assert.equal(made.status, 0, `mkfifo failed: ${String(made.stderr)}`);
    return path;
  };
  const url = (module: string): string => JSON.stringify(new URL(`../src/${module}`, import.meta.url).href);
  /** Runs an ES module in a child process: a read that blocks forever blocks the event loop too, so only a child can be timed out. */
  function inChild(code: string): string {
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(child.signal, null, `the child was killed after 30 s: it hung; stderr: ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    return child.stdout.trim();
  }

  test('a COCO image that is a FIFO is refused as not an image', () => {
    const images = join(fifoDir, 'coco-images');
    mkdirSync(images);
    const pipe = join(images, 'pipe.png');
    assert.equal(spawnSync('mkfifo', [pipe]).status, 0);
    const captions = write(fifoDir, 'coco.json', coco('pipe.png'));
    const out = inChild(`
      import { loadCocoCaptions } from ${url('data/coco.js')};
      try { loadCocoCaptions(${JSON.stringify(captions)}, ${JSON.stringify(images)}); console.log('loaded'); }
      catch (err) { console.log(err.reason + ' | ' + err.message); }
    `);
    assert.equal(out, `not-an-image | ${captions}: images[0] (id 1): image ${pipe} is a FIFO (named pipe), not an image file`);
  });

  test('a captions file that is a FIFO is refused naming it', () => {
    const captions = fifo('captions.json');
    const out = inChild(`
      import { loadCocoCaptions } from ${url('data/coco.js')};
      try { loadCocoCaptions(${JSON.stringify(captions)}, ${JSON.stringify(fifoDir)}); console.log('loaded'); }
      catch (err) { console.log(err.reason + ' | ' + err.message); }
    `);
    assert.equal(out, `missing-file | ${captions}: is a FIFO (named pipe), not a file (the COCO captions file)`);
  });

  test('decodeImage and the decode pool refuse a FIFO', () => {
    const pipe = fifo('decode.png');
    const out = inChild(`
      import { decodeImage } from ${url('data/image_decode.js')};
      import { ImageDecodePool } from ${url('data/image_pool.js')};
      try { await decodeImage(${JSON.stringify(pipe)}, { size: 4 }); console.log('decoded'); }
      catch (err) { console.log(err.kind + ' | ' + err.message); }
      const pool = new ImageDecodePool({ size: 1 });
      const { failures } = await pool.decodeBatch([${JSON.stringify(pipe)}], { size: 4 });
      console.log(failures.map((f) => f.index + ' ' + f.error.kind).join());
      await pool.close();
    `);
    assert.equal(out, `not-an-image | ${pipe}: is a FIFO (named pipe), not an image file\n0 not-an-image`);
  });

  test('embed refuses a FIFO among the images of a folder, and as a text input', () => {
    const images = join(fifoDir, 'embed-images');
    mkdirSync(images);
    writeFileSync(join(images, 'a.png'), pngBytes());
    assert.equal(spawnSync('mkfifo', [join(images, 'b.png')]).status, 0);
    const text = fifo('queries.txt');
    const out = inChild(`
      import { readEmbedInputs } from ${url('run/embed_run.js')};
      for (const [modality, input] of [['image', ${JSON.stringify(images)}], ['text', ${JSON.stringify(text)}]]) {
        try { readEmbedInputs(modality, input); console.log('read'); } catch (err) { console.log(err.name + ' | ' + err.message); }
      }
    `);
    const [image, textLine] = out.split('\n');
    assert.match(image!, /^EmbedInputError \| image .*b\.png is a FIFO \(named pipe\), not an image file/);
    assert.equal(textLine, `EmbedInputError | ${text}: a FIFO (named pipe), not a file`);
  });

  test('a config file that is a FIFO is refused naming it', () => {
    const config = fifo('run.yaml');
    const out = inChild(`
      import { readConfigFile } from ${url('config/load.js')};
      try { readConfigFile(${JSON.stringify(config)}); console.log('read'); } catch (err) { console.log(err.name + ' | ' + err.message); }
    `);
    assert.equal(out, `ConfigError | ${config}: cannot read the config file (a FIFO (named pipe))`);
  });
});

describe('bounded work per caption and per image', () => {
  test('a 10 MB caption is cut to MAX_CAPTION_CHARS characters before anything tokenizes it', () => {
    const dir = folder();
    write(dir, 'images/a.png', pngBytes());
    const huge = 'word '.repeat(2_000_000); // 10 MB
    const captions = write(dir, 'captions.json', {
      images: [{ id: 1, file_name: 'a.png' }],
      annotations: [{ id: 10, image_id: 1, caption: huge }],
    });
    const [item] = loadCocoCaptions(captions, join(dir, 'images')).items;
    assert.equal(MAX_CAPTION_CHARS, 16384);
    // 16384 characters of 'word word …' end inside a word ('word ' × 3276, then 'word'), with no trailing space.
    assert.equal(item!.captions[0], huge.slice(0, MAX_CAPTION_CHARS).trimEnd());
    assert.equal(item!.captions[0]!.length, 16384);
  });

  test('the cut never splits a surrogate pair, and short captions are only trimmed', () => {
    const emoji = '\u{1F600}'; // two UTF-16 units
    const text = 'a'.repeat(MAX_CAPTION_CHARS - 1) + emoji;
    assert.equal(captionText(text), 'a'.repeat(MAX_CAPTION_CHARS - 1));
    assert.equal(captionText('  a cat  '), 'a cat');
  });

  test('embed cuts a huge text input the same way', () => {
    const dir = folder();
    const file = write(dir, 'q.txt', 'x'.repeat(1_000_000) + '\nshort\n');
    const { items } = readEmbedInputs('text', file);
    assert.deepEqual(
      (items as string[]).map((s) => s.length),
      [MAX_CAPTION_CHARS, 5],
    );
  });

  test('the pixel limit follows the model size: 4096² at least, (64·size)² in between, 16383² at most', () => {
    assert.equal(maxInputPixels(8), 4096 * 4096);
    assert.equal(maxInputPixels(64), 4096 * 4096);
    assert.equal(maxInputPixels(128), 8192 * 8192);
    assert.equal(maxInputPixels(1024), 16383 * 16383);
  });

  test('an image over the limit is "too large", with its dimensions, not "corrupt or truncated"', async () => {
    const dir = folder();
    // Only the header is read before the limit applies, so a 5000×4000 header over a few bytes of data suffices.
    const big = write(dir, 'big.png', pngBytes(5000, 4000));
    await assert.rejects(decodeImage(big, { size: 64 }), (err: Error) => {
      assert.ok(err instanceof ImageDecodeError);
      assert.equal(err.kind, 'image-too-large');
      assert.equal(err.reason, 'image-too-large');
      assert.equal(
        err.message,
        `${big}: is too large (5000×4000 = 20.0 megapixels): a model of 64-pixel images reads at most 16.8 megapixels; shrink the file`,
      );
      return true;
    });
    // A 128-px model may read 67 MP, so the same header passes the limit and the missing data is what fails.
    await assert.rejects(decodeImage(big, { size: 128 }), (err: Error) => err instanceof ImageDecodeError && err.kind === 'corrupt-image');
    // The kind survives the trip through a decode worker.
    const pool = new ImageDecodePool({ size: 1 });
    try {
      const { failures } = await pool.decodeBatch([big], { size: 64 });
      assert.deepEqual(
        failures.map((f) => [f.index, f.error.kind]),
        [[0, 'image-too-large']],
      );
    } finally {
      await pool.close();
    }
  });

  test("libvips' timeout is reported as a decode that took too long", () => {
    const dir = folder();
    const file = write(dir, 'slow.png', pngBytes());
    const err = describeDecodeFailure(file, new Error('timeout: 37% complete'));
    assert.equal(err.kind, 'corrupt-image');
    assert.equal(err.message, `${file}: took more than 30 s to decode and was given up (libvips: timeout: 37% complete)`);
  });
});

describe('deeply nested JSON', () => {
  test('the syntax-error locator is iterative: 200000 open brackets cost no stack', () => {
    const text = '['.repeat(200_000) + '}';
    assert.equal(firstJsonSyntaxError(text), 200_000);
    assert.equal(firstJsonSyntaxError('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)), null);
    assert.equal(firstJsonSyntaxError('['.repeat(100_000) + ']'.repeat(100_000)), null);
  });

  test('a deeply nested malformed COCO file is a DatasetError at its line and column', () => {
    const dir = folder();
    mkdirSync(join(dir, 'images'));
    const file = write(dir, 'captions.json', '{"images":\n' + '['.repeat(200_000) + '}');
    const err = throwsDatasetError(() => loadCocoCaptions(file, join(dir, 'images')), 'malformed-json', `${file}:2:200001: malformed JSON`);
    assert.equal(err.line, 2);
  });

  test('a deeply nested malformed JSONL line is refused with its line', () => {
    assert.throws(
      () => parseJson('['.repeat(100_000) + '}', 'm.jsonl', 7),
      (err: Error) => err instanceof DatasetError && err.message.startsWith('m.jsonl:7:100001: malformed JSON'),
    );
  });
});

describe('bytes that are not UTF-8', () => {
  const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

  test('a COCO captions file with a Latin-1 byte is refused at its line and byte, not read as U+FFFD', () => {
    const dir = folder();
    mkdirSync(join(dir, 'images'));
    const file = write(dir, 'captions.json', latin1('{"images": [],\n"annotations": [{"caption": "caf\xe9"}]}'));
    const err = throwsDatasetError(() => loadCocoCaptions(file, join(dir, 'images')), 'invalid-utf8', `${file}:2:`, 'not valid UTF-8');
    assert.equal(err.line, 2);
    assert.equal(err.column, 33); // '"annotations": [{"caption": "caf' is 32 bytes
  });

  test('a JSONL manifest and a Karpathy split file are refused the same way', () => {
    const dir = folder();
    const manifest = write(dir, 'm.jsonl', latin1('{"id": 1, "text": "ok"}\n{"id": 2, "text": "\xff"}\n'));
    throwsDatasetError(() => loadJsonlManifest(manifest), 'invalid-utf8', `${manifest}:2:20:`);
    const split = write(dir, 'dataset_x.json', latin1('{"images": [{"filename": "\xe9.png"}]}'));
    throwsDatasetError(() => loadKarpathySplit(split, dir, 'test'), 'invalid-utf8', `${split}:1:27:`);
  });

  test('an embed text input with invalid UTF-8 is refused with its line', () => {
    const dir = folder();
    const file = write(dir, 'q.txt', latin1('one\ntwo\nthr\xe9e\n'));
    assert.throws(
      () => readEmbedInputs('text', file),
      (err: Error) => err instanceof EmbedInputError && err.message.startsWith(`${file}:3:4: not valid UTF-8`),
    );
  });

  test('decodeUtf8 agrees with TextDecoder on random bytes, and places the first bad byte', () => {
    let seed = 12345;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    // Bytes biased to lead and continuation bytes, so that valid multi-byte sequences occur too.
    const pool = [0x41, 0x0a, 0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xc0, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
    for (let trial = 0; trial < 2000; trial++) {
      const bytes = Uint8Array.from({ length: 1 + (next() % 12) }, () => pool[next() % pool.length]!);
      const offset = firstInvalidUtf8Byte(bytes);
      let valid = true;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        valid = false;
      }
      assert.equal(offset === bytes.length, valid, `bytes ${Array.from(bytes)}`);
      // Everything before the offset is valid UTF-8 on its own.
      assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, offset)), `bytes ${Array.from(bytes)}`);
    }
    // Overlong, surrogate, past U+10FFFF, cut short: each refused at its first byte (line 1, column 3).
    for (const bad of [
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
    ]) {
      assert.throws(
        () => decodeUtf8(Uint8Array.from([0x61, 0x62, ...bad])),
        (err: Error) => err instanceof InvalidUtf8Error && err.line === 1 && err.column === 3,
      );
    }
    assert.equal(decodeUtf8(Uint8Array.from([0xef, 0xbb, 0xbf, 0xe2, 0x82, 0xac])), '€');
  });
});
