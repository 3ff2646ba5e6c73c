// `npm run data:speech`: gives the icon data set (`npm run data:icons`, data/icons) a spoken version
// of its captions for the audio modality (issue 17). Each clip is one caption of an icon spoken by
// Debian's espeak-ng with a voice (8 English accents × 10 male and female variants), speed and pitch
// drawn from the seed and the clip's id (scripts/espeak_ng.ts), so two clips of one caption differ.
// Then a JSONL manifest per split of the icon set (src/data/jsonl.ts reads them), its items in the
// COCO file's order, each keeping its icon's id and `concept` (for the validation hold-out), with
// stated shares of modality combinations (scripts/modality_shares.ts):
//
//   audio share 0.5 (--audio-share): half of a split's icons get a clip of one of their captions;
//   of those, 0.4 (--image-audio-share) keep image+audio only (their text dropped), 0.2
//   (--text-audio-share) text+audio only (their image dropped) and the rest image+text+audio; the
//   icons without a clip stay image+text. By default: 50% image+text, 20% image+audio, 10%
//   text+audio, 20% image+text+audio.
//
// The text+audio items are there so that each of the three modalities is missing from some items
// (as in users' data: clips with a transcript but no picture), which exercises every presence mask
// and gives the text–audio terms items of their own. For retrieval in all six directions on one
// gallery, every split but train also gets `<split>_all.jsonl`, every item image+text+audio
// (those with a clip in `<split>.jsonl` keep theirs). Splits are the icon set's, so test concepts
// stay unseen in training. stats.json records the options, the counts per combination, the clips
// and the voices. The same icon set, options and espeak-ng version give the same bytes.
import { parseArgs } from 'node:util';
import { join, relative, resolve, sep } from 'node:path';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadCocoCaptions } from '../src/data/coco.js';
import type { PairedItem } from '../src/data/paired.js';
import {
  ESPEAK_ACCENTS,
  ESPEAK_VARIANTS,
  PITCH_RANGE,
  SPEED_WPM_RANGE,
  drawClip,
  espeakVersion,
  espeakVoices,
  mapBounded,
  speakToWav,
  type ClipSettings,
  type WavFacts,
} from './espeak_ng.js';
import { COMBINATIONS, assignCombinations, type Combination, type ModalityShares } from './modality_shares.js';

const USAGE = `Usage: node dist/scripts/build-speech-dataset.js [options]

Speaks captions of the icon data set (npm run data:icons) with espeak-ng into WAV clips and writes
JSONL manifests per split in which a stated share of the icons has audio (see docs/speech-data.md).

Options:
  --icons DIR              the icon data set (default data/icons): its captions_<split>.json and images/
  --out DIR                output directory (default data/icons-speech); an earlier build there is replaced
  --seed N                 draws the items with audio, the captions spoken, voices, speeds, pitches (default 0)
  --audio-share X          share of a split's icons with a clip (default 0.5)
  --image-audio-share X    share of those that keep image+audio only (default 0.4)
  --text-audio-share X     share of those that keep text+audio only (default 0.2); the rest keep all three
  --limit N                only the first N icons of each split (quick runs, tests)
  --jobs N                 espeak-ng processes at once (default 2)
  --espeak PATH            the espeak-ng program (default espeak-ng, on the PATH)
  --help                   print this text
`;

export interface SpeechBuildOptions {
  iconsDir: string;
  outDir: string;
  seed: number;
  shares: ModalityShares;
  /** The first `limit` icons of each split; undefined for all. */
  limit?: number;
  /** espeak-ng processes at once. */
  jobs: number;
  /** The espeak-ng program: a name on the PATH or a path. */
  espeakProgram: string;
  log?: (line: string) => void;
}

export const DEFAULT_SHARES: ModalityShares = { audio: 0.5, imageAudio: 0.4, textAudio: 0.2 };

/** A clip as clips.jsonl lists it. */
interface ClipRecord {
  file: string;
  split: string;
  id: string;
  caption: string;
  voice: string;
  speedWpm: number;
  pitch: number;
  seconds: number;
}

export interface SplitStats {
  manifest: string;
  items: number;
  combinations: Record<Combination, number>;
  /** Clips spoken for this split (for `<split>_all.jsonl` too). */
  clips: number;
  audioSeconds: number;
  /** `<split>_all.jsonl`, every item image+text+audio; all splits but train. */
  allModalities?: { manifest: string; items: number };
}

export interface SpeechStats {
  kind: 'icons-speech';
  options: { icons: string; seed: number; shares: ModalityShares; limit: number | null };
  espeakNg: string;
  format: { sampleRateHz: number; channels: number; bitsPerSample: number } | null;
  voices: {
    available: number;
    accents: string[];
    variants: string[];
    speedWpm: readonly [number, number];
    pitch: readonly [number, number];
    /** Clips per voice, voices by name; only voices some clip has. */
    clips: Record<string, number>;
  };
  splits: Record<string, SplitStats>;
  totals: { clips: number; audioSeconds: number; wavBytes: number };
}

/** The icon set's splits, train first, then val, test and any other, from its captions_<split>.json files. */
function iconSplits(iconsDir: string): string[] {
  if (!existsSync(iconsDir)) throw new Error(`${iconsDir}: no such directory; build the icon data set first (npm run data:icons)`);
  const rank = (split: string): number => ['train', 'val', 'test'].indexOf(split) + 1 || 4;
  const splits = readdirSync(iconsDir)
    .map((name) => /^captions_(.+)\.json$/.exec(name)?.[1])
    .filter((split): split is string => split !== undefined)
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (splits.length === 0)
    throw new Error(`${iconsDir} holds no captions_<split>.json; build the icon data set first (npm run data:icons)`);
  return splits;
}

/** Replaces an earlier build of this script; refuses a folder that holds anything else, and the icon set's own. */
function prepareOutDir(outDir: string, iconsDir: string): void {
  if (resolve(outDir) === resolve(iconsDir))
    throw new Error(`--out must differ from --icons (${outDir}): the icon set has its own stats.json`);
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    const statsFile = join(outDir, 'stats.json');
    let kind: unknown;
    try {
      kind = (JSON.parse(readFileSync(statsFile, 'utf8')) as { kind?: unknown }).kind;
    } catch {
      // no stats.json, or not ours: refused below
    }
    if (kind !== 'icons-speech') {
      throw new Error(`${outDir} is not empty and holds no stats.json of an earlier speech build; choose another --out or empty it`);
    }
    for (const name of readdirSync(outDir)) {
      if (name === 'speech' || name.endsWith('.jsonl') || name === 'stats.json')
        rmSync(join(outDir, name), { recursive: true, force: true });
    }
  }
  mkdirSync(join(outDir, 'speech'), { recursive: true });
}

const SAFE_ID = /^[A-Za-z0-9_-]+$/;

interface PlannedClip {
  split: string;
  item: PairedItem;
  /** Relative to the output folder, with forward slashes. */
  file: string;
  caption: string;
  settings: ClipSettings;
}

interface PlannedSplit {
  split: string;
  items: PairedItem[];
  combinations: Map<string, Combination>;
  clips: Map<string, PlannedClip>;
}

function planSplit(options: SpeechBuildOptions, split: string): PlannedSplit {
  const captionsFile = join(options.iconsDir, `captions_${split}.json`);
  const { items: all } = loadCocoCaptions(captionsFile, join(options.iconsDir, 'images'));
  const items = options.limit === undefined ? all : all.slice(0, options.limit);
  const combinations = assignCombinations(
    items.map((item) => item.id),
    options.shares,
    `${options.seed}:${split}:modalities`,
  );
  const clips = new Map<string, PlannedClip>();
  for (const item of items) {
    // train needs clips only for its items with audio; the other splits for all (their _all manifest)
    if (split === 'train' && !combinations.get(item.id)!.includes('audio')) continue;
    if (!SAFE_ID.test(item.id)) throw new Error(`${captionsFile}: image id ${JSON.stringify(item.id)} is not usable in a file name`);
    const { settings, captionIndex } = drawClip(options.seed, `${split}:${item.id}`, item.captions.length);
    clips.set(item.id, { split, item, file: `speech/${split}/${item.id}.wav`, caption: item.captions[captionIndex]!, settings });
  }
  return { split, items, combinations, clips };
}

/** One manifest line: the item's id and concept, its fields for its combination, paths relative to the output folder. */
function manifestLine(outDir: string, item: PairedItem, combination: Combination, clip: PlannedClip | undefined): string {
  const parts = new Set(combination.split('+'));
  const record: Record<string, unknown> = { id: item.id };
  // the validation hold-out (src/data/holdout.ts) splits by `concept`, as it does the COCO files
  if (typeof item.extra?.concept === 'string') record.concept = item.extra.concept;
  if (parts.has('image')) record.image = relative(outDir, item.image!).split(sep).join('/');
  if (parts.has('text')) record.text = item.captions;
  if (parts.has('audio')) record.audio = clip!.file;
  return JSON.stringify(record);
}

function writeManifest(outDir: string, name: string, lines: string[]): void {
  writeFileSync(join(outDir, name), lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Builds the spoken data set into `options.outDir`: speech/<split>/<id>.wav, <split>.jsonl (and
 * <split>_all.jsonl for every split but train), clips.jsonl (each clip's caption, voice, speed,
 * pitch and length) and stats.json. Throws before writing anything when espeak-ng cannot be run.
 * Returns the statistics written to stats.json.
 *
 * @example
 * const stats = await buildSpeechDataset({ iconsDir: 'data/icons', outDir: 'data/icons-speech', seed: 0,
 *   shares: DEFAULT_SHARES, jobs: 2, espeakProgram: 'espeak-ng', limit: 200 });
 * stats.splits.train.combinations; // { 'image+text': 100, 'image+audio': 40, 'text+audio': 20, 'image+text+audio': 40 }
 */
export async function buildSpeechDataset(options: SpeechBuildOptions): Promise<SpeechStats> {
  const log = options.log ?? ((): void => {});
  const version = await espeakVersion(options.espeakProgram);
  const planned = iconSplits(options.iconsDir).map((split) => planSplit(options, split));
  prepareOutDir(options.outDir, options.iconsDir);
  for (const { split } of planned) mkdirSync(join(options.outDir, 'speech', split), { recursive: true });

  const clips = planned.flatMap((p) => [...p.clips.values()]);
  log(`speaking ${clips.length} clips with ${options.jobs} espeak-ng process(es) at a time (espeak-ng ${version})`);
  let done = 0;
  const facts = await mapBounded(clips, options.jobs, async (clip): Promise<WavFacts> => {
    const wav = await speakToWav(options.espeakProgram, clip.caption, clip.settings, join(options.outDir, clip.file));
    if (++done % 1000 === 0) log(`${done} / ${clips.length} clips`);
    return wav;
  });
  const seconds = (wav: WavFacts): number => wav.dataBytes / (wav.sampleRateHz * wav.channels * (wav.bitsPerSample / 8));

  const records: ClipRecord[] = clips.map((clip, i) => ({
    file: clip.file,
    split: clip.split,
    id: clip.item.id,
    caption: clip.caption,
    voice: clip.settings.voice,
    speedWpm: clip.settings.speedWpm,
    pitch: clip.settings.pitch,
    seconds: round3(seconds(facts[i]!)),
  }));
  writeManifest(
    options.outDir,
    'clips.jsonl',
    records.map((r) => JSON.stringify(r)),
  );

  const splits: Record<string, SplitStats> = {};
  let at = 0;
  for (const { split, items, combinations, clips: splitClips } of planned) {
    const splitFacts = facts.slice(at, at + splitClips.size);
    at += splitClips.size;
    const counts = Object.fromEntries(COMBINATIONS.map((c) => [c, 0])) as Record<Combination, number>;
    const lines = items.map((item) => {
      const combination = combinations.get(item.id)!;
      counts[combination]++;
      return manifestLine(options.outDir, item, combination, splitClips.get(item.id));
    });
    writeManifest(options.outDir, `${split}.jsonl`, lines);
    splits[split] = {
      manifest: `${split}.jsonl`,
      items: items.length,
      combinations: counts,
      clips: splitClips.size,
      audioSeconds: round3(splitFacts.reduce((acc, wav) => acc + seconds(wav), 0)),
    };
    if (split !== 'train') {
      const allLines = items.map((item) => manifestLine(options.outDir, item, 'image+text+audio', splitClips.get(item.id)));
      writeManifest(options.outDir, `${split}_all.jsonl`, allLines);
      splits[split].allModalities = { manifest: `${split}_all.jsonl`, items: items.length };
    }
  }

  const perVoice = new Map<string, number>();
  for (const clip of clips) perVoice.set(clip.settings.voice, (perVoice.get(clip.settings.voice) ?? 0) + 1);
  const first = facts[0];
  const stats: SpeechStats = {
    kind: 'icons-speech',
    options: {
      icons: relative(options.outDir, options.iconsDir).split(sep).join('/'),
      seed: options.seed,
      shares: { ...options.shares },
      limit: options.limit ?? null,
    },
    espeakNg: version,
    format: first === undefined ? null : { sampleRateHz: first.sampleRateHz, channels: first.channels, bitsPerSample: first.bitsPerSample },
    voices: {
      available: espeakVoices().length,
      accents: [...ESPEAK_ACCENTS],
      variants: ESPEAK_VARIANTS.filter((v) => v !== ''),
      speedWpm: SPEED_WPM_RANGE,
      pitch: PITCH_RANGE,
      clips: Object.fromEntries([...perVoice].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    },
    splits,
    totals: {
      clips: clips.length,
      audioSeconds: round3(facts.reduce((acc, wav) => acc + seconds(wav), 0)),
      wavBytes: facts.reduce((acc, wav) => acc + 44 + wav.dataBytes, 0),
    },
  };
  writeFileSync(join(options.outDir, 'stats.json'), `${JSON.stringify(stats, null, 2)}\n`);
  return stats;
}

function share(value: string, flag: string): number {
  const x = Number(value);
  if (value.trim() === '' || !(x >= 0 && x <= 1)) throw new Error(`${flag} must be a number in [0, 1], got "${value}"`);
  return x;
}

function nonNegativeInt(value: string, flag: string, min = 0): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

/** The command: parses `argv` (the arguments after the script), builds, prints a summary. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      icons: { type: 'string', default: 'data/icons' },
      out: { type: 'string', default: 'data/icons-speech' },
      seed: { type: 'string', default: '0' },
      'audio-share': { type: 'string', default: String(DEFAULT_SHARES.audio) },
      'image-audio-share': { type: 'string', default: String(DEFAULT_SHARES.imageAudio) },
      'text-audio-share': { type: 'string', default: String(DEFAULT_SHARES.textAudio) },
      limit: { type: 'string' },
      jobs: { type: 'string', default: '2' },
      espeak: { type: 'string', default: 'espeak-ng' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const start = performance.now();
  const stats = await buildSpeechDataset({
    iconsDir: args.icons,
    outDir: args.out,
    seed: nonNegativeInt(args.seed, '--seed'),
    shares: {
      audio: share(args['audio-share'], '--audio-share'),
      imageAudio: share(args['image-audio-share'], '--image-audio-share'),
      textAudio: share(args['text-audio-share'], '--text-audio-share'),
    },
    ...(args.limit === undefined ? {} : { limit: nonNegativeInt(args.limit, '--limit', 1) }),
    jobs: nonNegativeInt(args.jobs, '--jobs', 1),
    espeakProgram: args.espeak,
    log: (line) => console.log(line),
  });
  const elapsedS = (performance.now() - start) / 1000;
  for (const [split, s] of Object.entries(stats.splits)) {
    const combos = COMBINATIONS.map((c) => `${s.combinations[c]} ${c}`).join(', ');
    console.log(`${args.out}/${s.manifest}: ${s.items} items (${combos}); ${s.clips} clips, ${s.audioSeconds.toFixed(0)} s of speech`);
    if (s.allModalities)
      console.log(`${args.out}/${s.allModalities.manifest}: ${s.allModalities.items} items, all image+text+audio (${split})`);
  }
  const { clips, wavBytes } = stats.totals;
  console.log(
    `${clips} clips, ${(wavBytes / 2 ** 20).toFixed(1)} MiB, in ${elapsedS.toFixed(1)} s (${(clips / elapsedS).toFixed(1)} clips/s)`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`build-speech-dataset: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
