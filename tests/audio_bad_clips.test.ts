// Bad clips in training (src/modalities/bad_item.ts, ManifestLoader.collated): under
// data.onBadRecord 'skip' a clip that is not a WAV, has a truncated header or NaN samples is left
// out of fit's statistics, dropped from its item (which keeps its text) when its batch meets it,
// counted as 'bad-media' and not read again; under 'fail' it stops, naming the file. Through
// `train`, loading the manifest already refuses the line whose clip is not a WAV at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { ManifestLoader, type ManifestBatch } from '../src/data/manifest_loader.js';
import type { DatasetError, PairedItem } from '../src/data/paired.js';
import { AudioDecodeError, audioModality, type AudioItem, type AudioModality } from '../src/modalities/audio/index.js';
import { BadItemError } from '../src/modalities/modality.js';
import { cli, TINY } from './cli_fixture.js';
import { scratchDir } from './scratch_dir.js';

const { WaveFile } = wavefile;
const dir = scratchDir('byol-bad-clips-');
mkdirSync(join(dir, 'clips'));

const SETTINGS = { clipSeconds: 0.25, nMels: 16, featureDim: 8, channels: 4 };
const AUDIO_TINY = ['audio.clipSeconds=0.25', 'audio.nMels=16', 'audio.channels=4', 'audio.featureDim=8'];
const COLOURS = ['red', 'green', 'blue', 'yellow'];

/** A 16-bit PCM WAV of a 0.5-amplitude tone, 0.3 s at 16 kHz. */
function toneWav(hz: number): Buffer {
  const wav = new WaveFile();
  const samples = Int16Array.from({ length: 4800 }, (_, n) => Math.round(0.5 * 32767 * Math.sin((2 * Math.PI * hz * n) / 16000)));
  wav.fromScratch(1, 16000, '16', samples);
  return Buffer.from(wav.toBuffer());
}

const clip = (name: string): string => join(dir, 'clips', name);
COLOURS.forEach((colour, c) => writeFileSync(clip(`${colour}.wav`), toneWav(300 * (c + 1))));
writeFileSync(clip('text.wav'), 'hello, not audio');
writeFileSync(clip('header.wav'), toneWav(440).subarray(0, 20)); // RIFF/WAVE, then the fmt chunk cut off
const nan = new WaveFile();
nan.fromScratch(
  1,
  16000,
  '32f',
  Float32Array.from({ length: 4800 }, (_, n) => (n === 100 ? Number.NaN : 0.1)),
);
writeFileSync(clip('nan.wav'), nan.toBuffer());
const BAD = [clip('text.wav'), clip('header.wav'), clip('nan.wav')];

/**
 * 16 items with a caption and a clip each (their colour's tone), but item 3 (not a WAV), item 7
 * (a truncated header) and item 12 (a NaN sample, and no caption: it has nothing left without it).
 */
const records = Array.from({ length: 16 }, (_, i) => {
  const colour = COLOURS[i % 4]!;
  const record: Record<string, unknown> = { id: `item-${i}`, text: [`a ${colour} tone`, `${colour} sound ${i}`] };
  record.audio = { 3: 'clips/text.wav', 7: 'clips/header.wav', 12: 'clips/nan.wav' }[i] ?? `clips/${colour}.wav`;
  if (i === 12) delete record.text;
  return JSON.stringify(record);
});
const manifest = join(dir, 'clips.jsonl');
/** As the run asks its modalities: an item with a caption or a clip has something besides an image. */
const hasOtherModality = (item: PairedItem): boolean => item.captions.length > 0 || audioModality.rawItems(item).length > 0;
writeFileSync(manifest, `${records.join('\n')}\n`);

test("fit leaves bad clips out of the statistics with skipBadItems, and throws the first one's file without", async () => {
  const clips: AudioItem[] = [clip('red.wav'), ...BAD, clip('green.wav')];
  const skipping = (await audioModality.fit(SETTINGS, clips, { skipBadItems: true })) as AudioModality;
  const goodOnly = (await audioModality.fit(SETTINGS, [clip('red.wav'), clip('green.wav')])) as AudioModality;
  assert.deepEqual(skipping.normalization, goodOnly.normalization);
  await assert.rejects(audioModality.fit(SETTINGS, clips), (err: Error) => {
    assert.ok(err instanceof AudioDecodeError && err instanceof BadItemError, `${err.name}: ${err.message}`);
    assert.ok(err.message.startsWith(`${clip('text.wav')}: not a WAV file`), err.message);
    assert.equal(err.reason, 'bad-media');
    return true;
  });
});

test("under 'skip' a bad clip is counted as bad-media, dropped from its item for good and never read again", async () => {
  const dataset = loadJsonlManifest(manifest, { modalityFields: ['audio'] });
  const audio = (await audioModality.fit(SETTINGS, [clip('red.wav')])) as AudioModality;
  const skips: DatasetError[] = [];
  const loader = new ManifestLoader(dataset, {
    batchSize: 16,
    size: 4,
    shuffle: false,
    poolSize: 1,
    hasOtherModality,
    onBadRecord: 'skip',
    onSkip: (e) => skips.push(e),
  });
  const collated: AudioItem[][] = [];
  const collate = (items: AudioItem[]) => {
    collated.push([...items]);
    return audio.collate(items);
  };
  const firstBatch = async (epoch: number): Promise<ManifestBatch> => {
    for await (const batch of loader.epoch(epoch)) return batch;
    throw new Error('no batch');
  };
  try {
    for (const epoch of [0, 1]) {
      const batch = await firstBatch(epoch);
      // Every item stays in the batch: 12 has no clip left but is still a row (it trains nothing).
      assert.deepEqual(batch.indices, [...Array(16).keys()]);
      const rows = await loader.collated(batch, 'audio', audioModality.rawItems, collate);
      const good = [...Array(16).keys()].filter((i) => ![3, 7, 12].includes(i));
      assert.deepEqual(rows!.rows, good);
      const expected = await audio.collate(good.map((i) => clip(`${COLOURS[i % 4]}.wav`)));
      assert.deepEqual(rows!.data.shape, [13, 1, 16, audio.frames]);
      assert.deepEqual(rows!.data.toFlatArray(), expected.toFlatArray());
      // The text rows are untouched: item 3 and 7 keep their caption.
      assert.deepEqual(
        batch.text!.rows,
        [...Array(16).keys()].filter((i) => i !== 12),
      );
      assert.deepEqual(loader.skipped, { 'bad-media': 3 }, `epoch ${epoch}: each bad clip counted once`);
    }
    // Epoch 0: the first collate meets text.wav at item 3, the next header.wav, then nan.wav, then
    // the 13 good clips pass; epoch 1 collates them once, reading no bad clip again.
    assert.deepEqual(
      collated.map((c) => c.length),
      [16, 15, 14, 13, 13],
    );
    assert.deepEqual(
      skips.map((e) => [e.file, e.reason]),
      BAD.map((file) => [file, 'bad-media']),
    );
    assert.match(skips[0]!.message, /clips\/text\.wav: not a WAV file .*\(audio item 3\)$/);
    assert.match(skips[1]!.message, /clips\/header\.wav: not a readable WAV file .*the header may be truncated \(audio item 6\)$/);
    assert.match(skips[2]!.message, /clips\/nan\.wav: sample 100 .* is NaN, not a finite number \(audio item 10\)$/);
  } finally {
    await loader.close();
  }
});

test("under 'fail' the first bad clip a batch meets stops it, naming the file", async () => {
  const dataset = loadJsonlManifest(manifest, { modalityFields: ['audio'] });
  const audio = (await audioModality.fit(SETTINGS, [clip('red.wav')])) as AudioModality;
  const loader = new ManifestLoader(dataset, { batchSize: 16, size: 4, shuffle: false, poolSize: 1, hasOtherModality });
  try {
    for await (const batch of loader.epoch(0)) {
      await assert.rejects(
        loader.collated(batch, 'audio', audioModality.rawItems, (items) => audio.collate(items)),
        (err: Error) => err instanceof AudioDecodeError && err.message.startsWith(`${clip('text.wav')}: not a WAV file`),
      );
      // Errors that do not name a bad item stop the batch under either policy.
      await assert.rejects(
        loader.collated(batch, 'audio', audioModality.rawItems, () => Promise.reject(new RangeError('a bug'))),
        /a bug/,
      );
    }
    assert.deepEqual(loader.skipped, {});
  } finally {
    await loader.close();
  }
});

test("train under data.onBadRecord=skip trains with the good clips and reports each bad one; under 'fail' it names the file", () => {
  // Loading the manifest refuses item 3's line (its file is not a WAV at all, as a non-image is
  // refused); a 17th good item keeps 16 for two steps of 8, which meet every other clip once.
  const manifest17 = join(dir, 'clips17.jsonl');
  writeFileSync(
    manifest17,
    `${[...records, JSON.stringify({ id: 'item-16', text: ['a red tone'], audio: 'clips/red.wav' })].join('\n')}\n`,
  );
  const args = ['--data', `jsonl:${manifest17}`, '--steps', '2', ...TINY, ...AUDIO_TINY];
  const run = join(dir, 'run-skip');
  const skipped = cli('train', ...args, '--out', run, 'data.onBadRecord=skip');
  assert.equal(skipped.status, 0, skipped.stderr);
  const reported = skipped.stderr
    .split('\n')
    .filter((l) => l.startsWith('skipped: '))
    .map((l) => l.slice('skipped: '.length).split(': ')[0]!);
  assert.deepEqual(reported.sort(), [`${manifest17}:4 (id "item-3")`, clip('header.wav'), clip('nan.wav')].sort(), skipped.stderr);
  const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { loss: number; terms: Record<string, number> });
  assert.equal(steps.length, 2);
  for (const step of steps) {
    assert.ok(Number.isFinite(step.loss), JSON.stringify(step));
    assert.ok(step.terms['cross/text->audio']! > 0, JSON.stringify(step.terms));
  }

  const failed = cli('train', ...args, '--out', join(dir, 'run-fail'));
  assert.equal(failed.status, 1, failed.stderr);
  const escaped = (path: string): string => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(failed.stderr, new RegExp(`${escaped(manifest17)}:4 .*${escaped(clip('text.wav'))} is not a WAV file`));
  assert.ok(!existsSync(join(dir, 'run-fail', 'checkpoints')), 'bad data found while starting leaves no run files');
});
