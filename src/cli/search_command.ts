// `byol-align search`: the nearest indexed items to a text, an image or a vector, as a table or JSON.
import { readFileSync } from 'node:fs';
import { searchIndex, MAX_K, type Filter, type SearchQuery } from '../index/index.js';
import { setNumThreads } from '../engine/index.js';
import { MAX_THREADS } from '../config/schema.js';
import {
  deviceOption,
  exactOption,
  bf16QueriesOption,
  precisionOptions,
  deviceSetting,
  integerOption,
  stringOption,
  requiredOption,
  UsageError,
  type CommandSpec,
  type OptionValues,
} from './options.js';
import { resolveDevice } from '../run/device.js';
import { threadsOption } from './train_command.js';

export const searchSpec: CommandSpec = {
  name: 'search',
  summary: 'Search an index made by `index` with a text, an image or a vector (cosine similarity).',
  options: {
    db: { type: 'string', value: 'DIR', help: 'the LanceDB folder' },
    table: { type: 'string', value: 'NAME', help: 'the table', default: 'items' },
    text: { type: 'string', value: 'TEXT', help: 'query with a text' },
    image: { type: 'string', value: 'FILE', help: 'query with an image file' },
    vector: { type: 'string', value: 'FILE', help: 'query with a JSON file holding an array of numbers (an input of the vector modality)' },
    embedding: {
      type: 'string',
      value: 'FILE',
      help: "query with a JSON file holding a point of the index's space (an array of its width)",
    },
    k: { type: 'string', value: 'N', help: `results (at most ${MAX_K})`, default: '10' },
    offset: { type: 'string', value: 'N', help: 'results to skip first (paging)' },
    modality: { type: 'string', value: 'M', help: 'only results of this modality: image, text or vector' },
    where: {
      type: 'string',
      value: 'JSON',
      help: 'metadata conditions, e.g. \'{"item": "42"}\' or \'{"width": {"gte": 100}}\' (eq, ne, gt, gte, lt, lte, in)',
    },
    checkpoint: {
      type: 'string',
      value: 'CKPT',
      help: 'embed the query with this checkpoint (default: the one that built the table; another is refused)',
    },
    json: {
      type: 'boolean',
      help: 'one JSON object on stdout: {"query", "hits": [{rank, score, id, item, modality, text, media, metadata}]}',
    },
    threads: threadsOption,
    exact: exactOption,
    'bf16-queries': bf16QueriesOption,
    device: deviceOption,
  },
};

function readJsonNumbers(file: string, option: string): number[] {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--${option} ${file}: ${(err as Error).message}`);
  }
  if (!Array.isArray(value)) throw new UsageError(`--${option} ${file}: expected a JSON array of numbers`);
  return value as number[];
}

function searchQuery(values: OptionValues): SearchQuery {
  const given = ['text', 'image', 'vector', 'embedding'].filter((name) => stringOption(values, name) !== undefined);
  if (given.length !== 1)
    throw new UsageError(
      `search needs exactly one of --text, --image, --vector or --embedding${given.length > 1 ? `, got ${given.map((g) => `--${g}`).join(' and ')}` : ''}`,
    );
  const value = stringOption(values, given[0]!)!;
  if (given[0] === 'text') return { text: value };
  if (given[0] === 'image') return { image: value };
  if (given[0] === 'vector') return { vector: readJsonNumbers(value, 'vector') };
  return { embedding: readJsonNumbers(value, 'embedding') };
}

function parseWhere(text: string | undefined): Filter | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Filter;
  } catch (err) {
    throw new UsageError(`--where must be a JSON object of column conditions, e.g. '{"item": "42"}' (${(err as Error).message})`);
  }
}

export async function searchCommand(values: OptionValues): Promise<number> {
  const db = requiredOption(values, searchSpec, 'db');
  const query = searchQuery(values);
  const threads = integerOption(values, 'threads', MAX_THREADS);
  if (threads !== undefined) setNumThreads(threads);
  const device = resolveDevice(deviceSetting(values) ?? 'auto', '--device');
  const offset = stringOption(values, 'offset') === '0' ? 0 : (integerOption(values, 'offset') ?? 0);
  const hits = await searchIndex({
    db,
    table: stringOption(values, 'table'),
    checkpoint: stringOption(values, 'checkpoint'),
    ...precisionOptions(values),
    query,
    k: integerOption(values, 'k', MAX_K) ?? 10,
    offset,
    modality: stringOption(values, 'modality'),
    where: parseWhere(stringOption(values, 'where')),
    device,
    onSkip: (m) => process.stderr.write(`skipping a broken checkpoint: ${m}\n`),
  });
  if (values.json === true) {
    const shown = 'image' in query ? { image: query.image } : query;
    process.stdout.write(`${JSON.stringify({ query: shown, hits })}\n`);
    return 0;
  }
  if (hits.length === 0) {
    process.stdout.write('no results\n');
    return 0;
  }
  const rows = hits.map((h) => [String(h.rank), h.score.toFixed(4), h.id, h.text ?? h.media ?? '']);
  const header = ['rank', 'score', 'id', 'caption or path'];
  const widths = header.map((title, c) => Math.max(title.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string =>
    cells.map((cell, c) => (c === cells.length - 1 ? cell : c < 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
  return 0;
}
