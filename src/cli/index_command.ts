// `byol-align index`: embeds a data set's images, captions and vectors into a LanceDB table for
// `search` and `serve`; `--delete ID...` removes rows.
import { buildIndex, DEFAULT_ANN_MIN_ROWS, deleteItems, type IndexProgress } from '../index/index.js';
import { setNumThreads } from '../engine/index.js';
import { MAX_THREADS } from '../config/schema.js';
import {
  deviceOption,
  deviceSetting,
  integerOption,
  requiredOption,
  stringOption,
  UsageError,
  type CommandSpec,
  type OptionValues,
} from './options.js';
import { resolveDevice } from '../run/device.js';
import { threadsOption } from './train_command.js';
import { checkpointOption } from './eval_command.js';

export const indexSpec: CommandSpec = {
  name: 'index',
  summary: 'Embed every image, caption and vector of a data set into a LanceDB search index (new or changed items only).',
  positionals: '[ID ...] (with --delete)',
  options: {
    checkpoint: checkpointOption,
    data: { type: 'string', value: 'SPEC', help: 'the data to index: coco:FILE, karpathy:FILE[#split] or jsonl:FILE' },
    images: { type: 'string', value: 'DIR', help: 'its image folder' },
    db: { type: 'string', value: 'DIR', help: 'the LanceDB folder (made if missing)' },
    table: { type: 'string', value: 'NAME', help: 'the table', default: 'items' },
    rebuild: { type: 'boolean', help: 'replace a table that another checkpoint made (default: refused)' },
    delete: { type: 'boolean', help: 'remove the rows whose ids follow (image:ITEM, text:ITEM:N, vector:ITEM) instead of indexing' },
    'batch-size': { type: 'string', value: 'N', help: 'inputs per forward', default: '256' },
    'ann-min-rows': {
      type: 'string',
      value: 'N',
      help: 'rows of one modality from which it gets an approximate (ANN) index instead of exact search in memory',
      default: String(DEFAULT_ANN_MIN_ROWS),
    },
    threads: threadsOption,
    device: deviceOption,
    quiet: { type: 'boolean', short: 'q', help: 'no progress bar' },
  },
  notes: "Row ids: image:ITEM, text:ITEM:N (the item's Nth caption), vector:ITEM. Scores are cosine similarities. See docs/search.md.",
};

/** A one-line bar redrawn on a terminal; on a file or pipe a plain line every 5 s and at the end. */
function progressWriter(stream: NodeJS.WriteStream): { update: (p: IndexProgress) => void; finish: () => void } {
  const started = performance.now();
  let lastPlain: number | undefined;
  let open = false;
  return {
    update(p) {
      const width = 20;
      const filled = Math.round((width * p.done) / p.total);
      const rate = p.done / ((performance.now() - started) / 1000);
      const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} rows (${p.modality}) ${rate.toFixed(0)} rows/s`;
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        open = true;
        return;
      }
      const now = performance.now();
      if (lastPlain === undefined || now - lastPlain >= 5000 || p.done === p.total) {
        stream.write(`${text}\n`);
        lastPlain = now;
      }
    },
    finish() {
      if (open) stream.write('\n');
      open = false;
    },
  };
}

export async function indexCommand(values: OptionValues, positionals: string[]): Promise<number> {
  const db = requiredOption(values, indexSpec, 'db');
  const table = stringOption(values, 'table');
  if (values.delete === true) {
    if (positionals.length === 0) throw new UsageError('index --delete needs the ids to remove, e.g. image:42 text:42:0');
    const removed = await deleteItems({ db, table, ids: positionals });
    process.stderr.write(`removed ${removed} of the ${positionals.length} ids from ${db} (table ${table ?? 'items'})\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`index: unexpected argument '${positionals[0]}' (ids follow --delete only)`);
  const threads = integerOption(values, 'threads', MAX_THREADS);
  if (threads !== undefined) setNumThreads(threads);
  const device = resolveDevice(deviceSetting(values) ?? 'auto', '--device');
  const bar = values.quiet === true ? undefined : progressWriter(process.stderr);
  const result = await buildIndex({
    checkpoint: requiredOption(values, indexSpec, 'checkpoint'),
    data: requiredOption(values, indexSpec, 'data'),
    images: stringOption(values, 'images'),
    db,
    table,
    rebuild: values.rebuild === true,
    batchSize: integerOption(values, 'batch-size', 65536),
    annMinRows: integerOption(values, 'ann-min-rows'),
    onProgress: bar?.update,
    device,
    onSkip: (m) => process.stderr.write(`skipping a broken checkpoint: ${m}\n`),
  });
  bar?.finish();
  const written = Object.entries(result.written).map(([m, n]) => `${n} ${m}`);
  process.stderr.write(
    `indexed ${written.length > 0 ? written.join(', ') : 'nothing new'} (${result.unchanged} unchanged); ` +
      `table ${result.table} in ${db} has ${result.rows} rows of width ${result.provenance.dim} (${result.provenance.space} space of ${result.provenance.checkpoint})\n` +
      (result.skippedModalities.length > 0 ? `left out ${result.skippedModalities.join(', ')}: the model does not embed it\n` : '') +
      Object.entries(result.ann)
        .map(([modality, what]) => `ANN index of ${modality}: ${what}\n`)
        .join('') +
      `search it: byol-align search --db ${db}${table === undefined || table === 'items' ? '' : ` --table ${table}`} --text "..."\n`,
  );
  return 0;
}
