// The run report: what `byol-align report --run RUN_DIR` writes into the run directory.
//   figures/loss.png          total loss and each term (intra, cross, InfoNCE, VICReg) per step
//   figures/lr.png, tau.png   the learning rate and the EMA's τ per step
//   figures/collapse.png      the collapse monitor per modality (1: spread out, → 0: collapsed)
//   figures/recall.png        Recall@1/5/10 both ways per validated epoch
//   figures/map.png           a 2-D UMAP of held-out image and caption embeddings, pairs joined
//   figures/retrieval.png     captions with their top-5 images, images with their top-5 captions
//   report.html               all of it in one self-contained page (figures inlined)
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import sharp from 'sharp';
import { UMAP } from 'umap-js';
import { cat, noGrad, tidy, F, type Tensor } from '../engine/index.js';
import { loadDataSource } from '../data/source.js';
import { PairedImageLoader } from '../data/loader.js';
import { mulberry32 } from '../data/epoch_order.js';
import type { PairedItem } from '../data/paired.js';
import type { Modality } from '../modalities/modality.js';
import { loadModel, type LoadedModel } from '../run/model_setup.js';
import { writeFileAtomic } from '../run/checkpoint.js';
import { escapeXml, lineChart, pairedScatter, type Series } from './svg.js';

export interface ReportOptions {
  /** The run directory. */
  run: string;
  /** Held-out data for the map and the retrieval examples (default: the run's validation data, else its training data). */
  data?: string;
  images?: string;
  /** Pairs in the map (default 300). */
  mapPairs?: number;
  onMessage?: (message: string) => void;
}

interface StepLine {
  step: number;
  terms: Record<string, number>;
  lr: number;
  tau: number;
  collapse: Record<string, number>;
}
interface EpochLine {
  epoch: number;
  val: { i2t: { r1: number; r5: number; r10: number }; t2i: { r1: number; r5: number; r10: number }; rsum: number };
}

const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

/** PNG bytes of an SVG (DejaVu Sans when installed, else the system's fonts). */
export function svgToPng(svg: string): Buffer {
  const font = existsSync(FONT)
    ? { fontFiles: [FONT], loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' }
    : { loadSystemFonts: true };
  return Buffer.from(new Resvg(svg, { font, background: 'white' }).render().asPng());
}

function readMetrics(run: string): { steps: StepLine[]; epochs: EpochLine[] } {
  const file = join(run, 'metrics.jsonl');
  if (!existsSync(file)) throw new Error(`${run}: no metrics.jsonl here; give a run directory written by byol-align train`);
  const steps: StepLine[] = [];
  const epochs: EpochLine[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        throw new Error(`${file}:${i + 1}: not JSON`);
      }
      const e = entry as Partial<StepLine & EpochLine>;
      if (typeof e.step === 'number') steps.push(e as StepLine);
      else if (e.val !== undefined) epochs.push(e as EpochLine);
    });
  if (steps.length === 0) throw new Error(`${file}: no training steps logged yet`);
  return { steps, epochs };
}

function curves(steps: StepLine[]): Record<string, string> {
  const termNames = Object.keys(steps[0]!.terms).filter((k) => k !== 'logitScale');
  const series = (pick: (s: StepLine) => number, name: string): Series => ({ name, points: steps.map((s) => [s.step, pick(s)]) });
  const modalities = Object.keys(steps[0]!.collapse);
  return {
    loss: lineChart(
      'Loss per step (total and each term before its weight)',
      'step',
      'loss',
      termNames.map((k) => series((s) => s.terms[k] ?? NaN, k)),
    ),
    lr: lineChart('Learning rate', 'step', 'lr', [series((s) => s.lr, 'lr')]),
    tau: lineChart('EMA coefficient τ of the target network', 'step', 'τ', [series((s) => s.tau, 'τ')]),
    collapse: lineChart(
      'Collapse monitor: std of normalised projections × √d (1 healthy, 0 collapsed)',
      'step',
      'ratio',
      modalities.map((m) => series((s) => s.collapse[m] ?? NaN, m)),
    ),
  };
}

function recallChart(epochs: EpochLine[]): string {
  const pick = (dir: 'i2t' | 't2i', k: 'r1' | 'r5' | 'r10'): Series => ({
    name: `${dir === 'i2t' ? 'image→text' : 'text→image'} R@${k.slice(1)}`,
    points: epochs.map((e) => [e.epoch + 1, e.val[dir][k]]),
  });
  const title =
    epochs.length > 0 ? 'Validation Recall@K per epoch (%)' : 'Validation Recall@K per epoch: no validation data in this run (--val-data)';
  return lineChart(
    title,
    'epoch',
    'recall (%)',
    (['i2t', 't2i'] as const).flatMap((d) => (['r1', 'r5', 'r10'] as const).map((k) => pick(d, k))),
  );
}

/** Up to n items spread evenly over the data set (deterministic). */
function spread(items: PairedItem[], n: number): PairedItem[] {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

async function embedPairs(loaded: LoadedModel, items: PairedItem[]): Promise<{ images: Tensor; captions: Tensor }> {
  const image = loaded.modalities.find((m) => m.name === 'image');
  const text = loaded.modalities.find((m) => m.name === 'text') as Modality<string> | undefined;
  if (!image || !text) throw new Error('the report map needs a model with image and text modalities');
  const { config, model } = loaded;
  const loader = new PairedImageLoader(
    { items, source: 'report', skipped: {} },
    { batchSize: 128, size: config.image.size, channels: config.image.channels, fit: config.image.fit, shuffle: false, dropLast: false },
  );
  const parts: Tensor[] = [];
  try {
    for await (const b of loader.epoch(0)) {
      parts.push(noGrad(() => tidy(() => F.normalize(model.embed('image', image.evalInput(b.images), 'projection')))));
      b.images.dispose();
    }
  } finally {
    await loader.close();
  }
  const ids = await text.collate(items.map((i) => i.captions[0]!));
  const captions = noGrad(() => tidy(() => F.normalize(model.embed('text', text.evalInput(ids), 'projection'))));
  ids.dispose();
  const images = cat(parts);
  for (const p of parts) p.dispose();
  return { images, captions };
}

function rows(t: Tensor): number[][] {
  const [n, d] = t.shape as [number, number];
  const flat = t.toFlatArray();
  return Array.from({ length: n }, (_, i) => flat.slice(i * d, (i + 1) * d));
}

async function thumbnail(file: string): Promise<string> {
  const png = await sharp(file)
    .resize(72, 72, { fit: 'contain', background: '#ffffff' })
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Text cut into lines of at most `width` characters at spaces, at most `lines` of them. */
function wrap(text: string, width: number, lines: number): string[] {
  const out: string[] = [''];
  for (const word of text.split(/\s+/)) {
    const line = out[out.length - 1]!;
    if (line === '' || line.length + 1 + word.length <= width) out[out.length - 1] = line === '' ? word : `${line} ${word}`;
    else out.push(word);
  }
  if (out.length > lines) out.splice(lines, out.length - lines, '…');
  return out;
}

/** Three captions with their top-5 images and three images with their top-5 captions, among the sample. */
async function retrievalGrid(items: PairedItem[], images: number[][], captions: number[][]): Promise<string> {
  const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const top = (query: number[], gallery: number[][]): number[] =>
    gallery
      .map((g, i) => [dot(query, g), i] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 5)
      .map(([, i]) => i);
  const picks = [0, Math.floor(items.length / 3), Math.floor((2 * items.length) / 3)];
  const rowH = 100;
  const width = 980;
  const parts: string[] = [];
  let y = 40;
  parts.push(
    `<text x="12" y="${y - 14}" font-size="15" font-weight="bold">Text → image: each caption and its top-5 images (green: its own image)</text>`,
  );
  for (const q of picks) {
    wrap(items[q]!.captions[0]!, 44, 4).forEach((line, k) =>
      parts.push(`<text x="12" y="${y + 18 + 15 * k}" font-size="12">${escapeXml(line)}</text>`),
    );
    for (const [rank, i] of top(captions[q]!, images).entries()) {
      const x = 380 + rank * 118;
      parts.push(`<image x="${x}" y="${y}" width="72" height="72" href="${await thumbnail(items[i]!.image!)}"/>`);
      if (i === q) parts.push(`<rect x="${x - 3}" y="${y - 3}" width="78" height="78" fill="none" stroke="#2ca02c" stroke-width="3"/>`);
    }
    y += rowH;
  }
  y += 30;
  parts.push(
    `<text x="12" y="${y - 14}" font-size="15" font-weight="bold">Image → text: each image and its top-5 captions (green: one of its own)</text>`,
  );
  for (const q of picks) {
    parts.push(`<image x="12" y="${y}" width="72" height="72" href="${await thumbnail(items[q]!.image!)}"/>`);
    for (const [rank, i] of top(images[q]!, captions).entries()) {
      const own = i === q;
      parts.push(
        `<text x="110" y="${y + 14 + rank * 15}" font-size="12" fill="${own ? '#2ca02c' : '#222'}">${rank + 1}. ${escapeXml(items[i]!.captions[0]!.slice(0, 110))}</text>`,
      );
    }
    y += rowH;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="DejaVu Sans, sans-serif"><rect width="${width}" height="${y}" fill="white"/>${parts.join('\n')}</svg>`;
}

/**
 * Writes the report's figures and report.html into the run directory; returns their paths.
 *
 * @example
 * const { html } = await buildReport({ run: 'runs/icons' });
 */
export async function buildReport(options: ReportOptions): Promise<{ html: string; figures: string[] }> {
  const { run } = options;
  const { steps, epochs } = readMetrics(run);
  const svgs: Record<string, string> = { ...curves(steps), recall: recallChart(epochs) };

  const loaded = loadModel(run, (m) => options.onMessage?.(`skipping a broken checkpoint: ${m}`));
  const spec = options.data ?? loaded.config.data.val ?? loaded.config.data.train;
  if (spec === undefined) throw new Error(`${run}: its config names no data; give --data SPEC for the map and the examples`);
  const images =
    options.images ??
    (options.data === undefined && loaded.config.data.val
      ? (loaded.config.data.valImages ?? loaded.config.data.images)
      : loaded.config.data.images);
  const dataset = loadDataSource(spec, { images, defaultSplit: 'test', onBadRecord: 'skip' });
  const items = spread(
    dataset.items.filter((i) => i.image !== undefined && i.captions.length > 0),
    options.mapPairs ?? 300,
  );
  if (items.length < 6) throw new Error(`${spec}: only ${items.length} items with an image and a caption; the map needs at least 6`);
  const { images: imageEmb, captions: captionEmb } = await embedPairs(loaded, items);
  const imageRows = rows(imageEmb);
  const captionRows = rows(captionEmb);
  imageEmb.dispose();
  captionEmb.dispose();
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, 2 * items.length - 1), minDist: 0.1, random: mulberry32(7) });
  const xy = umap.fit([...imageRows, ...captionRows]) as [number, number][];
  svgs.map = pairedScatter(
    `UMAP of ${items.length} held-out images and captions (projection space)`,
    { name: 'image', points: xy.slice(0, items.length) },
    { name: 'caption', points: xy.slice(items.length) },
  );
  svgs.retrieval = await retrievalGrid(items, imageRows, captionRows);
  await Promise.all(loaded.modalities.map((m) => (m as { close?: () => Promise<void> }).close?.()));

  const figureDir = join(run, 'figures');
  mkdirSync(figureDir, { recursive: true });
  const pngs: Record<string, Buffer> = {};
  const figures: string[] = [];
  for (const [name, svg] of Object.entries(svgs)) {
    pngs[name] = svgToPng(svg);
    const file = join(figureDir, `${name}.png`);
    writeFileAtomic(file, pngs[name]!);
    figures.push(file);
  }
  const last = epochs.at(-1)?.val;
  const img = (name: string, alt: string): string =>
    `<figure><img src="data:image/png;base64,${pngs[name]!.toString('base64')}" alt="${escapeXml(alt)}"><figcaption>${escapeXml(alt)}</figcaption></figure>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>byol-align report: ${escapeXml(run)}</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>
</head><body>
<h1>byol-align run report</h1>
<p>Run <code>${escapeXml(run)}</code>: ${steps.length} steps logged, checkpoint <code>${escapeXml(loaded.checkpoint.file)}</code> (step ${loaded.checkpoint.step}); objective <code>${escapeXml(loaded.config.loss.objective)}</code>.</p>
${
  last
    ? `<h2>Last validation</h2><table><tr><th></th><th>R@1</th><th>R@5</th><th>R@10</th></tr><tr><th>image→text</th><td>${last.i2t.r1.toFixed(2)}</td><td>${last.i2t.r5.toFixed(2)}</td><td>${last.i2t.r10.toFixed(2)}</td></tr><tr><th>text→image</th><td>${last.t2i.r1.toFixed(2)}</td><td>${last.t2i.r5.toFixed(2)}</td><td>${last.t2i.r10.toFixed(2)}</td></tr></table><p>rsum ${last.rsum.toFixed(2)}</p>`
    : '<p>No validation data in this run.</p>'
}
<h2>Training</h2>
${img('loss', 'Loss per step, total and each term')}
${img('lr', 'Learning rate per step')}
${img('tau', 'EMA coefficient τ per step')}
${img('collapse', 'Collapse monitor per modality')}
<h2>Retrieval</h2>
${img('recall', 'Validation Recall@K per epoch')}
${img('map', 'UMAP of held-out image and caption embeddings, pairs joined')}
${img('retrieval', 'Retrieval examples')}
</body></html>
`;
  const htmlFile = join(run, 'report.html');
  writeFileAtomic(htmlFile, Buffer.from(html));
  return { html: htmlFile, figures };
}
