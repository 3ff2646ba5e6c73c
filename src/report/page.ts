// report.html: one self-contained page with the charts inlined as SVG (their text selectable),
// the last validation beside chance, and a summary of the run's config.
import type { Config } from '../config/schema.js';
import { lossWeights } from '../run/model_setup.js';
import { epochDirections, epochRsum, type EpochLine, type RecallAtK } from './metrics.js';
import { escapeXml } from './svg.js';

export interface PageFigure {
  name: string;
  svg: string;
  caption: string;
}

export interface PageContent {
  run: string;
  /** One sentence about the run: steps, checkpoint, objective. */
  about: string;
  config: Config;
  /** The last validated epoch, if the run validated. */
  validation?: EpochLine;
  /** Where the map and examples come from: 'validation data', 'training data', or a --data spec. */
  sampleSource: string;
  /** Rows of figures, a row's figures side by side. */
  training: PageFigure[][];
  retrieval: PageFigure[][];
}

const STYLE = `body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h2{margin-top:2em;border-bottom:1px solid #ddd}figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:90%}.row{display:flex;flex-wrap:wrap;gap:1.5em}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:4px 10px}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f5f5f5;text-align:left}.chance{color:#777}code{font-size:95%}pre{background:#f7f7f7;padding:0.8em;overflow:auto;font-size:85%}`;

const cells = (r: RecallAtK): string => [r.r1, r.r5, r.r10].map((v) => `<td class="n">${v.toFixed(2)}</td>`).join('');

/** Recall@K in every direction measured, each beside what random embeddings reach on the same set. */
function validationTable(last: EpochLine): string {
  const rows = epochDirections(last).map((d) => {
    const name = `${escapeXml(d.query)} → ${escapeXml(d.gallery)}`;
    const chance = d.chance ? `<tr class="chance"><td>${name}, chance</td>${cells(d.chance)}</tr>` : '';
    return `<tr><td>${name}</td>${cells(d.metrics)}</tr>${chance}`;
  });
  const { rsum, chance } = epochRsum(last);
  const rsumChance = chance !== undefined ? ` (chance ${chance.toFixed(2)})` : ' (chance not recorded by this run)';
  const bySpace = last.rsumBySpace
    ? `; rsum by space: ${Object.entries(last.rsumBySpace)
        .map(([space, rsum]) => `${escapeXml(space)} ${rsum.toFixed(2)}`)
        .join(', ')}`
    : '';
  return `<h2>Last validation (epoch ${last.epoch}${last.space ? `, ${escapeXml(last.space)} space` : ''})</h2>
<table><tr><th>Recall (%)</th><th>R@1</th><th>R@5</th><th>R@10</th></tr>${rows.join('')}</table>
<p>rsum ${rsum.toFixed(2)}${rsumChance}${bySpace}. Chance: what random embeddings reach on the same validation set.</p>`;
}

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** The settings that tell runs apart, then the whole config. */
function configSummary(config: Config): string {
  const weights = Object.entries(lossWeights(config))
    .filter(([, w]) => w !== 0)
    .map(([k, w]) => `${k.replace(/Weight$/, '')} ${w}`)
    .join(', ');
  const { data, image, text, model, optim, train } = config;
  const length = train.steps !== undefined ? `${train.steps} steps` : `${train.epochs ?? 10} epochs`;
  const rows: [string, string][] = [
    ['training data', `${data.train ?? '—'}${data.images ? ` (images ${data.images})` : ''}`],
    ['validation data', data.val ?? 'none: the map and examples use the training data'],
    ['objective', `${config.loss.objective} (${weights})`],
    ['image encoder', `${image.encoder}, ${image.size}×${image.size}, ${image.channels} channels`],
    [
      'text encoder',
      `Transformer, ${count(text.layers, 'layer')}, width ${text.dModel}, ${count(text.heads, 'head')}, vocabulary ${text.vocabSize}`,
    ],
    [
      'heads',
      `projection ${model.projectionDim} (hidden ${model.projectionHiddenDim}), ${model.sharedHeads ? 'shared' : 'per modality'}; τ from ${model.tauBase}`,
    ],
    ['optimiser', `${optim.optimizer}, base lr ${optim.baseLr}, weight decay ${optim.weightDecay}`],
    ['length', `${length}, batch ${train.batchSize}, seed ${train.seed}`],
  ];
  return `<h2>Config</h2>
<table>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${escapeXml(v)}</td></tr>`).join('')}</table>
<details><summary>The whole config</summary><pre>${escapeXml(JSON.stringify(config, null, 2))}</pre></details>`;
}

const figure = (f: PageFigure): string =>
  `<figure id="fig-${f.name}">${f.svg}<figcaption>${escapeXml(f.caption)} (also <code>figures/${f.name}.png</code>)</figcaption></figure>`;
const figureRows = (rows: PageFigure[][]): string =>
  rows.map((row) => (row.length === 1 ? figure(row[0]!) : `<div class="row">${row.map(figure).join('')}</div>`)).join('\n');

/** The page's HTML. */
export function reportPage(content: PageContent): string {
  const title = `byol-align report: ${content.run}`;
  const noValidation = `<h2>No validation</h2><p>This run had no validation data (train with <code>--val-data</code> to record Recall@K per epoch); the map and the examples below use the ${escapeXml(content.sampleSource)}.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>${STYLE}</style>
</head><body>
<h1>byol-align run report</h1>
<p>${content.about}</p>
${content.validation ? validationTable(content.validation) : noValidation}
${configSummary(content.config)}
<h2>Training</h2>
${figureRows(content.training)}
<h2>Retrieval</h2>
${figureRows(content.retrieval)}
</body></html>
`;
}
