// The run report: what `byol-align report --run RUN_DIR` writes into the run directory.
//   figures/loss.png          the total loss and each term per step, a panel per family of terms
//   figures/lr.png, tau.png   the learning rate and the EMA's τ per step
//   figures/collapse.png      the collapse monitor per modality (1: spread out, → 0: collapsed)
//   figures/recall.png        validation Recall@1/5/10 both ways per epoch, chance dashed (runs that validated)
//   figures/map.png           a 2-D UMAP of image and caption embeddings in the run's retrieval space
//   figures/retrieval.png     captions with their top-5 images, images with their top-5 captions
//   report.html               all of it in one self-contained page, the charts inline as SVG
// Charts are Vega-Lite specs (charts.ts) rendered to SVG by Vega; PNGs come from the SVGs via sharp.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UMAP } from 'umap-js';
import type { TopLevelSpec } from 'vega-lite';
import { loadDataSource } from '../data/source.js';
import { holdOutByConcept } from '../data/holdout.js';
import { mulberry32 } from '../data/epoch_order.js';
import { loadModel, runDataOptions, type LoadedModel } from '../run/model_setup.js';
import { writeFileAtomic } from '../run/checkpoint.js';
import { binSteps, parseMetrics, type RunMetrics } from './metrics.js';
import { collapseChart, lossChart, mapChart, recallChart, renderSvg, stepChart } from './charts.js';
import { embedSample, spread } from './sample.js';
import { retrievalExamples } from './examples.js';
import { reportPage, type PageFigure } from './page.js';
import { escapeXml, svgToPng } from './svg.js';

export { svgToPng };

export interface ReportOptions {
  /** The run directory. */
  run: string;
  /** Data for the map and the retrieval examples (default: the run's validation data, else its training data). */
  data?: string;
  images?: string;
  /** Pairs in the map (default 300). */
  mapPairs?: number;
  /** Where the sample is embedded: a device setting (cpu, the default, auto, cuda, cuda:N). */
  device?: string;
  onMessage?: (message: string) => void;
}

/** Points per curve at most; longer runs are averaged in bins. */
const MAX_POINTS = 600;

function readMetrics(run: string): RunMetrics {
  const file = join(run, 'metrics.jsonl');
  if (!existsSync(file)) throw new Error(`${run}: no metrics.jsonl here; give a run directory written by byol-align train`);
  return parseMetrics(readFileSync(file, 'utf8'), file);
}

/** The data the map and examples are drawn from, and how the page names it. */
function sampleData(options: ReportOptions, loaded: LoadedModel): { spec: string; images?: string; name: string; heldOut?: number } {
  const { data } = loaded.config;
  if (options.data !== undefined) return { spec: options.data, images: options.images ?? data.images, name: `data ${options.data}` };
  if (data.val !== undefined) return { spec: data.val, images: options.images ?? data.valImages ?? data.images, name: 'validation data' };
  if (data.train !== undefined && data.valFraction > 0)
    return { spec: data.train, images: options.images ?? data.images, name: 'validation data', heldOut: data.valFraction };
  if (data.train !== undefined) return { spec: data.train, images: options.images ?? data.images, name: 'training data' };
  throw new Error(`${options.run}: its config names no data; give --data SPEC for the map and the examples`);
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
  const loaded = loadModel(run, (m) => options.onMessage?.(`skipping a broken checkpoint: ${m}`), options.device);
  const source = sampleData(options, loaded);
  const read = loadDataSource(source.spec, {
    images: source.images,
    defaultSplit: 'test',
    ...runDataOptions(loaded.config, 'skip'),
  });
  // A run validated on held-out training concepts: the map shows those, as training left them out.
  const dataset = source.heldOut === undefined ? read : holdOutByConcept(read, source.heldOut).val;
  const items = spread(
    dataset.items.filter((i) => i.image !== undefined && i.captions.length > 0),
    options.mapPairs ?? 300,
  );
  if (items.length < 6) throw new Error(`${source.spec}: only ${items.length} items with an image and a caption; the map needs at least 6`);
  const space = loaded.retrievalSpace;
  const sample = await embedSample(loaded, items, space);
  await Promise.all(loaded.modalities.map((m) => m.close()));
  if (sample.imageGallery[0]!.length !== sample.textGallery[0]!.length) {
    throw new Error(`${run}: image and text embeddings differ in width in the ${space} space; the map needs one shared space`);
  }
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, 2 * items.length - 1), minDist: 0.1, random: mulberry32(7) });
  const xy = umap.fit([...sample.imageGallery, ...sample.textGallery]) as [number, number][];

  const { lines, stepsPerPoint } = binSteps(steps, MAX_POINTS);
  const chart = async (name: string, spec: TopLevelSpec, caption: string): Promise<PageFigure> => ({
    name,
    svg: await renderSvg(spec),
    caption,
  });
  const training = [
    [await chart('loss', lossChart(lines, stepsPerPoint), 'Every loss term before its weight; each panel has its own scale')],
    [
      await chart(
        'lr',
        stepChart(lines, stepsPerPoint, { title: 'Learning rate', yTitle: 'lr', yFormat: '.1~e' }, (s) => s.lr),
        'Learning rate per step',
      ),
      await chart(
        'tau',
        stepChart(lines, stepsPerPoint, { title: 'EMA coefficient τ of the target network', yTitle: 'τ', yFormat: '.4~f' }, (s) => s.tau),
        'τ per step',
      ),
    ],
    [await chart('collapse', collapseChart(lines, stepsPerPoint), 'Collapse monitor per modality')],
  ];
  const mapTitle = `${items.length} images and captions of the ${source.name}, ${space} space`;
  const retrieval = [
    ...(epochs.length > 0 ? [[await chart('recall', recallChart(epochs), 'Validation Recall@K per epoch, chance dashed')]] : []),
    [await chart('map', mapChart(mapTitle, xy.slice(0, items.length), xy.slice(items.length)), `Map of ${mapTitle}`)],
    [
      {
        name: 'retrieval',
        svg: await retrievalExamples(sample),
        caption: `Retrieval examples among ${items.length} pairs of the ${source.name}, ${space} space`,
      },
    ],
  ];

  const figureDir = join(run, 'figures');
  mkdirSync(figureDir, { recursive: true });
  const figures: string[] = [];
  for (const figure of [...training, ...retrieval].flat()) {
    const file = join(figureDir, `${figure.name}.png`);
    writeFileAtomic(file, await svgToPng(figure.svg));
    figures.push(file);
  }
  const about = `Run <code>${escapeXml(run)}</code>: ${steps.length} steps logged; checkpoint <code>${escapeXml(loaded.checkpoint.file)}</code> (step ${loaded.checkpoint.step}); objective <code>${escapeXml(loaded.config.loss.objective)}</code>; retrieval space <code>${space}</code> (the one <code>eval</code> uses).`;
  const html = reportPage({
    run,
    about,
    config: loaded.config,
    validation: epochs.at(-1),
    sampleSource: source.name,
    training,
    retrieval,
  });
  const htmlFile = join(run, 'report.html');
  writeFileAtomic(htmlFile, Buffer.from(html));
  return { html: htmlFile, figures };
}
