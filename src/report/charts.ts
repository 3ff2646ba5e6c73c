// The report's charts as Vega-Lite specs, rendered server-side to SVG by Vega (no browser, no
// canvas: the SVG keeps its text as <text>, so the page's charts are selectable and searchable).
// Legends sit outside the plotting area; each loss term and each modality keeps one colour.
import type { TopLevelSpec } from 'vega-lite';
import { epochDirections, type EpochDirection, type EpochLine, type StepLine } from './metrics.js';

/** One colour per modality, shared by the collapse monitor and the map. */
const MODALITY_COLOURS: Record<string, string> = { image: '#1f77b4', text: '#d62728', vector: '#2ca02c' };
/** Recall@1/5/10 in three colours that stay apart from the modalities'. */
const RECALL_COLOURS = { domain: ['R@1', 'R@5', 'R@10'], range: ['#6a3d9a', '#ff7f0e', '#17becf'] };
const CHANCE = 'chance (random embeddings)';

const BASE_CONFIG = {
  background: 'white',
  title: { anchor: 'start', fontSize: 15, subtitleFontSize: 12, subtitleColor: '#555' },
  legend: { orient: 'right', labelLimit: 260, labelFontSize: 12, titleFontSize: 12 },
  axis: { labelFontSize: 12, titleFontSize: 13 },
  header: { labelFontSize: 13, labelFontWeight: 'bold' },
} as const;

/** An integer axis: ticks only at whole steps or epochs. */
const integerAxis = (title: string) => ({ title, format: 'd', tickMinStep: 1 });

/**
 * The SVG of a Vega-Lite spec. Vega is loaded on first use: it takes a noticeable share of a
 * second to import, which no other command should pay.
 *
 * @example
 * const svg = await renderSvg({ data: { values: [{ x: 1, y: 2 }] }, mark: 'point', encoding: { x: { field: 'x' } } });
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [{ View, parse }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new View(parse(compile({ ...spec, config: { ...BASE_CONFIG, ...spec.config } } as TopLevelSpec).spec), {
    renderer: 'none',
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The part of a term's name before '/': 'intra/image' → 'intra'. */
const family = (term: string): string => term.split('/')[0]!;

const averaged = (stepsPerPoint: number): string[] => (stepsPerPoint > 1 ? [`each point: the mean over ${stepsPerPoint} steps`] : []);

/**
 * Every loss term per step, a panel per family of terms (own y scale), one colour per term. A term
 * is logged only on the steps that weight it (a first stage has other terms): the chart has the
 * terms of every step, each drawn over the steps that have it.
 */
export function lossChart(steps: StepLine[], stepsPerPoint: number): TopLevelSpec {
  const terms = [...new Set(steps.flatMap((s) => Object.keys(s.terms)))].filter((k) => k !== 'logitScale');
  const families = [...new Set(terms.map(family))];
  const values = steps.flatMap((s) => terms.map((term) => ({ step: s.step, term, family: family(term), value: s.terms[term] ?? null })));
  return {
    title: { text: 'Loss per step: the total and each term before its weight', subtitle: averaged(stepsPerPoint) },
    data: { values },
    facet: { field: 'family', type: 'nominal', sort: families, title: null },
    columns: 3,
    spec: {
      width: 190,
      height: 120,
      mark: { type: 'line', point: steps.length <= 30, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'step', type: 'quantitative', axis: integerAxis('step'), scale: { nice: false } },
        y: { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } },
        // Ten distinct hues while they suffice; tableau20 (hues in light/dark pairs) beyond.
        color: {
          field: 'term',
          type: 'nominal',
          scale: { domain: terms, scheme: terms.length <= 10 ? 'tableau10' : 'tableau20' },
          legend: { title: 'term' },
        },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** One quantity per step, a single line; `yFormat` is a d3-format specifier for its axis. */
export function stepChart(
  steps: StepLine[],
  stepsPerPoint: number,
  axis: { title: string; yTitle: string; yFormat: string },
  pick: (s: StepLine) => number,
): TopLevelSpec {
  const { title, yTitle, yFormat } = axis;
  return {
    title: { text: title, subtitle: averaged(stepsPerPoint) },
    width: 330,
    height: 160,
    data: { values: steps.map((s) => ({ step: s.step, value: pick(s) })) },
    mark: { type: 'line', point: steps.length <= 30, color: '#4c78a8' },
    encoding: {
      x: { field: 'step', type: 'quantitative', axis: integerAxis('step'), scale: { nice: false } },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false }, axis: { format: yFormat } },
    },
  };
}

/** The collapse monitor per modality, with its healthy level 1 drawn. */
export function collapseChart(steps: StepLine[], stepsPerPoint: number): TopLevelSpec {
  const modalities = Object.keys(steps[0]!.collapse);
  const values = steps.flatMap((s) => modalities.map((modality) => ({ step: s.step, modality, ratio: s.collapse[modality] ?? null })));
  return {
    title: {
      text: 'Collapse monitor: std of the normalised projections × √d',
      subtitle: ['1: spread over every direction; towards 0: collapsed onto a few', ...averaged(stepsPerPoint)],
    },
    width: 560,
    height: 200,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: steps.length <= 30 },
        encoding: {
          x: { field: 'step', type: 'quantitative', axis: integerAxis('step'), scale: { nice: false } },
          y: { field: 'ratio', type: 'quantitative', title: 'ratio', scale: { domain: [0, 1.1] } },
          color: {
            field: 'modality',
            type: 'nominal',
            scale: { domain: modalities, range: modalities.map((m) => MODALITY_COLOURS[m] ?? '#777') },
            legend: { title: 'modality' },
          },
        },
      },
      {
        data: { values: [{ y: 1 }] },
        mark: { type: 'rule', color: '#999', strokeDash: [4, 3] },
        encoding: { y: { field: 'y', type: 'quantitative' } },
      },
    ],
  };
}

/**
 * Recall@1/5/10 per epoch, a panel per direction, with the level random embeddings reach on the
 * same validation set as a dashed rule in each K's colour.
 */
export function recallChart(epochs: EpochLine[]): TopLevelSpec {
  const ks = [
    ['r1', 'R@1'],
    ['r5', 'R@5'],
    ['r10', 'R@10'],
  ] as const;
  const last = epochDirections(epochs.at(-1)!);
  const directionName = (d: EpochDirection): string => `${d.query} → ${d.gallery}`;
  const directions = last.map(directionName);
  const chance = last.some((d) => d.chance !== undefined);
  const measured = epochs.flatMap((e) =>
    epochDirections(e).flatMap((d) =>
      ks.map(([key, k]) => ({ kind: 'measured', direction: directionName(d), k, epoch: e.epoch, recall: d.metrics[key] })),
    ),
  );
  const chanceLevels = last.flatMap((d) =>
    d.chance ? ks.map(([key, k]) => ({ kind: CHANCE, direction: directionName(d), k, recall: d.chance![key] })) : [],
  );
  const values = [...measured, ...chanceLevels];
  const lastEpoch = epochs.at(-1)!.epoch;
  const colour = { field: 'k', type: 'nominal', scale: RECALL_COLOURS, legend: { title: 'Recall@K' } } as const;
  const dash = {
    field: 'kind',
    type: 'nominal',
    scale: {
      domain: ['measured', CHANCE],
      range: [
        [1, 0],
        [5, 4],
      ],
    },
    legend: {
      title: null,
      symbolType: 'stroke',
      symbolStrokeWidth: 2,
      symbolSize: 400,
      encode: { symbols: { update: { stroke: { value: '#444' } } } },
    },
  } as const;
  return {
    title: {
      text: `Validation Recall@K per epoch (%)${epochs[0]!.space ? `, ${epochs[0]!.space} space` : ''}`,
      subtitle: chance ? 'dashed: what random embeddings reach on the same validation set' : 'chance level not recorded by this run',
    },
    data: { values },
    // Two panels a row: image ↔ text side by side, and with a third modality its pairs below.
    facet: { field: 'direction', type: 'nominal', sort: directions, title: null },
    columns: 2,
    spec: {
      width: 300,
      height: 200,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'measured'" }],
          mark: { type: 'line', point: true },
          encoding: {
            x: {
              field: 'epoch',
              type: 'quantitative',
              axis: integerAxis('epoch'),
              scale: { domain: [1, Math.max(2, lastEpoch)], nice: false },
            },
            y: { field: 'recall', type: 'quantitative', title: 'recall (%)' },
            color: colour,
            strokeDash: dash,
          },
        },
        {
          transform: [{ filter: `datum.kind === '${CHANCE}'` }],
          mark: { type: 'rule', strokeWidth: 1.5 },
          encoding: { y: { field: 'recall', type: 'quantitative' }, color: colour, strokeDash: dash },
        },
      ],
    },
  };
}

/** A 2-D map of paired image and caption embeddings, each pair joined by a grey segment. */
export function mapChart(title: string, images: [number, number][], captions: [number, number][]): TopLevelSpec {
  const points = [...images.map(([x, y]) => ({ x, y, modality: 'image' })), ...captions.map(([x, y]) => ({ x, y, modality: 'text' }))];
  const segments = images.flatMap(([x, y], pair) => [
    { pair, x, y },
    { pair, x: captions[pair]![0], y: captions[pair]![1] },
  ]);
  const position = {
    x: { field: 'x', type: 'quantitative', axis: null, scale: { zero: false } },
    y: { field: 'y', type: 'quantitative', axis: null, scale: { zero: false } },
  } as const;
  return {
    title: { text: title, subtitle: 'UMAP (umap-js) of the embeddings; a grey segment joins an image and its caption' },
    width: 520,
    height: 400,
    layer: [
      {
        data: { values: segments },
        mark: { type: 'line', color: '#bbb', strokeWidth: 0.7 },
        encoding: { ...position, detail: { field: 'pair' } },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 28, opacity: 0.85 },
        encoding: {
          ...position,
          color: {
            field: 'modality',
            type: 'nominal',
            scale: { domain: ['image', 'text'], range: [MODALITY_COLOURS.image!, MODALITY_COLOURS.text!] },
            legend: { title: 'embedding of', labelExpr: "datum.label === 'text' ? 'caption' : 'image'" },
          },
        },
      },
    ],
  };
}
