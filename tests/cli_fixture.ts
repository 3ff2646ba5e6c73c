// The command's test fixture, shared by the CLI, export and report tests: a tiny COCO-format data
// set (24 coloured shapes, two captions each) written into a fresh temporary folder, a tiny model
// config, the command run as a child process, and one short run trained on demand.
import { before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { scratchDir } from './scratch_dir.js';

export const CLI = join('dist', 'src', 'cli', 'main.js');
const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];
const SHAPES = ['square', 'stripe', 'dot', 'frame'];
// A tiny model and 24 items in batches of 8: 3 steps per epoch, seconds per run.
export const TINY = [
  '--threads',
  '1',
  'image.size=16',
  'text.dModel=16',
  'text.layers=1',
  'text.heads=2',
  'text.vocabSize=64',
  'text.maxLength=8',
  'model.projectionHiddenDim=32',
  'model.projectionDim=16',
  'model.predictionHiddenDim=32',
  'train.batchSize=8',
  'train.checkpointEvery=2',
  'train.keepCheckpoints=2',
];

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the command in a child process. */
export function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Starts `train ARGS` in a child process, waits until it has logged two steps, sends `signals`
 * (`gapMs` apart) and returns its exit code and stderr.
 */
export async function trainAndSignal(
  out: string,
  args: string[],
  signals: NodeJS.Signals[],
  gapMs = 20,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'train', ...args, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const metrics = join(out, 'metrics.jsonl');
  while (!existsSync(metrics) || readFileSync(metrics, 'utf8').split('\n').length < 3) await new Promise((r) => setTimeout(r, 10));
  for (const [i, signal] of signals.entries()) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    child.kill(signal);
  }
  return { code: await exited, stderr };
}

export interface CliFixture {
  /** The temporary folder (removed after the test file). */
  dir: string;
  images: string;
  annotations: string;
  /** --data and --images for the fixture's data set. */
  data: string[];
  /** A run of 3 steps (one epoch, validated), trained on first use and shared by the file's tests. */
  trainedRun: () => string;
}

async function writeShapes(images: string, annotations: string): Promise<void> {
  mkdirSync(images);
  const imageEntries = [];
  const captionEntries = [];
  let id = 0;
  for (const [c, colour] of COLOURS.entries()) {
    for (const [s, shape] of SHAPES.entries()) {
      const pixels = Buffer.alloc(16 * 16 * 3);
      for (let y = 0; y < 16; y++) {
        for (let x = 0; x < 16; x++) {
          const inside =
            s === 0
              ? x > 3 && x < 12 && y > 3 && y < 12
              : s === 1
                ? x % 4 < 2
                : s === 2
                  ? (x - 8) ** 2 + (y - 8) ** 2 < 12
                  : x < 2 || y < 2;
          const v = inside ? 40 * c + 30 : 250;
          pixels.set([v, (v * 3) % 256, 255 - v], (y * 16 + x) * 3);
        }
      }
      const file = `${colour}-${shape}.png`;
      await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
        .png()
        .toFile(join(images, file));
      imageEntries.push({ id, file_name: file });
      captionEntries.push({ id: 2 * id, image_id: id, caption: `a ${colour} ${shape}` });
      captionEntries.push({ id: 2 * id + 1, image_id: id, caption: `${shape} in ${colour}` });
      id++;
    }
  }
  writeFileSync(annotations, JSON.stringify({ images: imageEntries, annotations: captionEntries }));
}

/**
 * Runs `fn` with the fixture's captions changed (item 0's first caption becomes 'a crimson square';
 * item 3 gains 'a red frame again', annotation id 1000), then restores the file.
 */
export async function withChangedCaptions<T>(fixture: CliFixture, fn: () => Promise<T>): Promise<T> {
  const original = readFileSync(fixture.annotations, 'utf8');
  try {
    const coco = JSON.parse(original) as { annotations: { id: number; image_id: number; caption: string }[] };
    coco.annotations[0]!.caption = 'a crimson square';
    coco.annotations.push({ id: 1000, image_id: 3, caption: 'a red frame again' });
    writeFileSync(fixture.annotations, JSON.stringify(coco));
    return await fn();
  } finally {
    writeFileSync(fixture.annotations, original);
  }
}

/** Registers before/after hooks that write the data set into a new temporary folder and remove it. */
export function useCliFixture(): CliFixture {
  const dir = scratchDir('byol-cli-');
  const images = join(dir, 'images');
  const annotations = join(dir, 'captions.json');
  const data = ['--data', `coco:${annotations}`, '--images', images];
  before(() => writeShapes(images, annotations));
  let run = '';
  const trainedRun = (): string => {
    if (run) return run;
    run = join(dir, 'run-embed');
    const r = cli('train', ...data, '--val-data', `coco:${annotations}`, '--steps', '3', '--out', run, ...TINY);
    assert.equal(r.status, 0, r.stderr);
    return run;
  };
  return { dir, images, annotations, data, trainedRun };
}
