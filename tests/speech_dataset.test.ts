// The spoken icon data set (issue 17, scripts/build-speech-dataset.ts) built from a tiny synthetic
// icon set: real espeak-ng clips, the manifests' modality combinations against counts worked out
// by hand, byte-for-byte determinism, and a clear error when espeak-ng is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSpeechDataset, type SpeechBuildOptions } from '../scripts/build-speech-dataset.js';
import { EspeakMissingError, drawClip } from '../scripts/espeak_ng.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { pngBytes } from './png.js';
import { scratchDir } from './scratch_dir.js';

const SCRIPT = fileURLToPath(new URL('../scripts/build-speech-dataset.js', import.meta.url));

const root = scratchDir('speech-dataset-');

// Ten training icons and four test icons; icons 1 and 2 have the one same caption, so with every
// icon spoken their two clips say the same words.
const TRAIN_CAPTIONS: string[][] = [
  ['a red square'],
  ['a red square'],
  ['a cat', 'a sleeping cat'],
  ['a house', 'a small house with a roof'],
  ['an arrow pointing left'],
  ['a heart', 'a love symbol'],
  ['a star'],
  ['a bell', 'a notification bell'],
  ['a tree'],
  ['a key'],
];
const TEST_CAPTIONS: string[][] = [['a boat'], ['a cloud', 'a rain cloud'], ['a lock'], ['a sun']];

function writeIconSet(dir: string): void {
  mkdirSync(join(dir, 'images', 'set'), { recursive: true });
  let imageId = 0;
  let annotationId = 0;
  for (const [split, captions] of [
    ['train', TRAIN_CAPTIONS],
    ['test', TEST_CAPTIONS],
  ] as const) {
    const images = [];
    const annotations = [];
    for (const list of captions) {
      const id = ++imageId;
      writeFileSync(join(dir, 'images', 'set', `icon-${id}.png`), pngBytes());
      images.push({ id, file_name: `set/icon-${id}.png`, width: 1, height: 1, concept: `concept ${id}` });
      for (const caption of list) annotations.push({ id: ++annotationId, image_id: id, caption });
    }
    writeFileSync(join(dir, `captions_${split}.json`), JSON.stringify({ images, annotations }));
  }
}

const iconsDir = join(root, 'icons');
writeIconSet(iconsDir);

const options = (outDir: string, overrides: Partial<SpeechBuildOptions> = {}): SpeechBuildOptions => ({
  iconsDir,
  outDir,
  seed: 0,
  shares: { audio: 0.5, imageAudio: 0.5, textAudio: 0.25 },
  limit: 8,
  jobs: 2,
  espeakProgram: 'espeak-ng',
  ...overrides,
});

const halfSpoken = join(root, 'half');
const halfSpokenAgain = join(root, 'half-again');
const allSpoken = join(root, 'all');
const halfStats = await buildSpeechDataset(options(halfSpoken));
await buildSpeechDataset(options(halfSpokenAgain));
await buildSpeechDataset(options(allSpoken, { shares: { audio: 1, imageAudio: 0, textAudio: 0 } }));

interface ManifestLine {
  id: string;
  concept?: string;
  image?: string;
  text?: string[];
  audio?: string;
}

const readLines = <T>(file: string): T[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);

const combinationOf = (line: ManifestLine): string =>
  [line.image && 'image', line.text && 'text', line.audio && 'audio'].filter((m) => typeof m === 'string').join('+');

function countCombinations(lines: ManifestLine[]): Record<string, number> {
  const counts: Record<string, number> = { 'image+text': 0, 'image+audio': 0, 'text+audio': 0, 'image+text+audio': 0 };
  for (const line of lines) counts[combinationOf(line)]!++;
  return counts;
}

/** A WAV header read by hand: RIFF/WAVE, the fmt chunk's fields, the data chunk's bytes. */
function parseWav(file: string): { channels: number; rate: number; bits: number; samples: Int16Array } {
  const bytes = readFileSync(file);
  assert.equal(bytes.toString('latin1', 0, 4), 'RIFF', `${file}: RIFF`);
  assert.equal(bytes.readUInt32LE(4), bytes.length - 8, `${file}: RIFF size`);
  assert.equal(bytes.toString('latin1', 8, 12), 'WAVE', `${file}: WAVE`);
  assert.equal(bytes.toString('latin1', 12, 16), 'fmt ');
  assert.equal(bytes.readUInt16LE(20), 1, 'PCM');
  assert.equal(bytes.toString('latin1', 36, 40), 'data');
  const dataBytes = bytes.readUInt32LE(40);
  assert.equal(dataBytes, bytes.length - 44, `${file}: data size`);
  const samples = new Int16Array(bytes.buffer.slice(bytes.byteOffset + 44, bytes.byteOffset + 44 + dataBytes));
  return { channels: bytes.readUInt16LE(22), rate: bytes.readUInt32LE(24), bits: bytes.readUInt16LE(34), samples };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => statSync(join(dir, name)).isFile())
    .sort();
}

test('every clip is a 16-bit mono RIFF/WAVE file at 22050 Hz with sound in it', () => {
  const clips = filesUnder(join(halfSpoken, 'speech'));
  // train: round(8 × 0.5) = 4 clips; test: all 4 icons (for test_all.jsonl)
  assert.equal(clips.length, 8);
  for (const clip of clips) {
    const wav = parseWav(join(halfSpoken, 'speech', clip));
    assert.deepEqual([wav.channels, wav.rate, wav.bits], [1, 22050, 16]);
    // a short caption is well over 0.3 s of speech, and speech is not silence
    assert.ok(wav.samples.length > 0.3 * 22050, `${clip}: ${wav.samples.length} samples`);
    assert.ok(wav.samples.filter((s) => Math.abs(s) > 1000).length > 1000, `${clip} is nearly silent`);
  }
  assert.deepEqual(halfStats.format, { sampleRateHz: 22050, channels: 1, bitsPerSample: 16 });
  assert.equal(halfStats.totals.clips, 8);
});

test('two clips of one caption are spoken with different settings and differ', () => {
  const clips = readLines<{ file: string; id: string; caption: string; voice: string; speedWpm: number; pitch: number }>(
    join(allSpoken, 'clips.jsonl'),
  );
  const [first, second] = ['1', '2'].map((id) => clips.find((c) => c.id === id)!);
  assert.equal(first!.caption, 'a red square');
  assert.equal(second!.caption, 'a red square');
  assert.notDeepEqual([first!.voice, first!.speedWpm, first!.pitch], [second!.voice, second!.speedWpm, second!.pitch]);
  assert.ok(!readFileSync(join(allSpoken, first!.file)).equals(readFileSync(join(allSpoken, second!.file))));
  // and the clips of the whole set use more than one voice
  assert.ok(new Set(clips.map((c) => c.voice)).size > 1);
});

test('the manifests hold exactly the combinations the shares ask for', () => {
  // train, 8 icons: round(8 × 0.5) = 4 with audio; of them round(4 × 0.5) = 2 image+audio,
  // round(4 × 0.25) = 1 text+audio, 1 image+text+audio; 4 image+text.
  const train = readLines<ManifestLine>(join(halfSpoken, 'train.jsonl'));
  assert.deepEqual(
    train.map((l) => l.id),
    ['1', '2', '3', '4', '5', '6', '7', '8'],
  );
  assert.deepEqual(countCombinations(train), { 'image+text': 4, 'image+audio': 2, 'text+audio': 1, 'image+text+audio': 1 });
  // every line keeps its icon's concept, which the validation hold-out splits by
  assert.deepEqual(
    train.map((l) => l.concept),
    train.map((l) => `concept ${l.id}`),
  );
  // test, 4 icons: 2 with audio; round(2 × 0.5) = 1 image+audio, round(2 × 0.25) = round(0.5) = 1 text+audio
  const testLines = readLines<ManifestLine>(join(halfSpoken, 'test.jsonl'));
  assert.deepEqual(
    testLines.map((l) => l.id),
    ['11', '12', '13', '14'],
  );
  assert.deepEqual(countCombinations(testLines), { 'image+text': 2, 'image+audio': 1, 'text+audio': 1, 'image+text+audio': 0 });
  const testAll = readLines<ManifestLine>(join(halfSpoken, 'test_all.jsonl'));
  assert.deepEqual(countCombinations(testAll), { 'image+text': 0, 'image+audio': 0, 'text+audio': 0, 'image+text+audio': 4 });
  // a test icon's clip is the same file in both test manifests
  for (const line of testLines.filter((l) => l.audio !== undefined)) {
    assert.equal(testAll.find((l) => l.id === line.id)!.audio, line.audio);
  }
  assert.deepEqual(halfStats.splits.train!.combinations, countCombinations(train));
  assert.deepEqual(halfStats.splits.test!.combinations, countCombinations(testLines));
  // the captions stay whole; image paths lead to the icon set's images
  const three = train.find((l) => combinationOf(l) === 'image+text+audio')!;
  assert.deepEqual(three.text, TRAIN_CAPTIONS[Number(three.id) - 1]);
  assert.equal(resolve(halfSpoken, three.image!), join(iconsDir, 'images', 'set', `icon-${three.id}.png`));
  assert.equal(relative(halfSpoken, join(iconsDir, 'images')), '../icons/images');
});

test('the manifest loads with the audio field kept for the audio modality', () => {
  const { items } = loadJsonlManifest(join(halfSpoken, 'train.jsonl'), { allowOutsideImages: true, modalityFields: ['audio'] });
  assert.equal(items.length, 8);
  const spoken = items.filter((item) => item.extra?.audio !== undefined);
  assert.equal(spoken.length, 4);
  for (const item of spoken) assert.ok(existsSync(join(halfSpoken, item.extra!.audio as string)));
  assert.equal(items.filter((item) => item.image === undefined).length, 1);
  assert.equal(items.filter((item) => item.captions.length === 0).length, 2);
});

test('the same seed gives the same bytes', () => {
  const files = filesUnder(halfSpoken);
  assert.deepEqual(filesUnder(halfSpokenAgain), files);
  assert.ok(files.includes('stats.json') && files.includes('clips.jsonl') && files.includes('train.jsonl'));
  for (const file of files) {
    assert.ok(readFileSync(join(halfSpoken, file)).equals(readFileSync(join(halfSpokenAgain, file))), `${file} differs between runs`);
  }
});

test("a clip's caption, voice, speed and pitch depend on the seed and the icon only", () => {
  type Clip = { split: string; id: string; voice: string; speedWpm: number; pitch: number };
  // the half-spoken and the all-spoken builds (one seed) speak an icon both speak alike
  const all = readLines<Clip>(join(allSpoken, 'clips.jsonl'));
  const half = readLines<Clip>(join(halfSpoken, 'clips.jsonl'));
  assert.equal(half.length, 8);
  for (const clip of half)
    assert.deepEqual(
      all.find((c) => c.id === clip.id),
      clip,
    );
  // another seed draws other settings for every one of these icons
  for (const clip of all) {
    const { settings } = drawClip(1, `${clip.split}:${clip.id}`, 1);
    assert.notDeepEqual(settings, { voice: clip.voice, speedWpm: clip.speedWpm, pitch: clip.pitch }, `icon ${clip.id}`);
  }
});

test('a missing espeak-ng is an error that names the program, before anything is written', async () => {
  const outDir = join(root, 'no-espeak');
  await assert.rejects(
    buildSpeechDataset(options(outDir, { espeakProgram: join(root, 'nowhere', 'espeak-ng') })),
    (err: Error) =>
      err instanceof EspeakMissingError &&
      /cannot run espeak-ng as ".*nowhere\/espeak-ng" \(ENOENT\)/.test(err.message) &&
      /apt-get install espeak-ng/.test(err.message),
  );
  assert.equal(existsSync(outDir), false);

  const cli = spawnSync(process.execPath, [SCRIPT, '--icons', iconsDir, '--out', outDir, '--espeak', join(root, 'nowhere', 'espeak-ng')], {
    encoding: 'utf8',
  });
  assert.equal(cli.status, 1);
  assert.match(cli.stderr, /^build-speech-dataset: cannot run espeak-ng as /);
});
