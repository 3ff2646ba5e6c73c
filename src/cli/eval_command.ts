// `byol-align eval`: retrieval metrics of a checkpoint on a paired data set, as a table or JSON.
import { loadModelWithPlugins, runDataOptions, type LoadedModel } from '../run/model_setup.js';
import { importPlugins } from '../config/load.js';
import { resolvePluginSpecifier } from '../modalities/plugins.js';
import { evaluatePaired } from '../run/evaluate_run.js';
import { loadDataSource } from '../data/source.js';
import { setNumThreads } from '../engine/index.js';
import { MAX_THREADS } from '../config/schema.js';
import type { RetrievalDirection, RetrievalSpace } from '../align/evaluate.js';
import type { DirectionMetrics } from '../eval/retrieval.js';
import {
  deviceOption,
  deviceSetting,
  integerOption,
  listOption,
  pluginOption,
  requiredOption,
  stringOption,
  type CommandSpec,
  type OptionValues,
  UsageError,
} from './options.js';
import { threadsOption } from './train_command.js';
import { resolveDevice } from '../run/device.js';

export const checkpointOption = {
  type: 'string',
  value: 'CKPT',
  help: 'a checkpoint file, or a run directory (its newest good checkpoint)',
} as const;

const SPACES: readonly RetrievalSpace[] = ['projection', 'encoder', 'pairing'];

export const evalSpec: CommandSpec = {
  name: 'eval',
  summary: 'Retrieval metrics in every direction between modalities (Recall@1/5/10, ranks; COCO protocol for image–text) beside chance.',
  options: {
    checkpoint: checkpointOption,
    data: { type: 'string', value: 'SPEC', help: 'the data to evaluate on: coco:FILE, karpathy:FILE[#split] or jsonl:FILE' },
    images: { type: 'string', value: 'DIR', help: 'its image folder' },
    space: {
      type: 'string',
      value: 'S',
      help: 'projection, encoder or pairing, several separated by commas, or all (default: the space the run retrieved best in at validation, else projection); the data is read once',
    },
    json: { type: 'boolean', help: 'one JSON object per space on stdout (one line each) with everything the table shows' },
    threads: threadsOption,
    device: deviceOption,
    plugin: pluginOption,
  },
};

/**
 * Loads a checkpoint with its run's plug-ins (and any --plugin) onto --device (auto by default,
 * whatever device trained it), reporting broken newer ones on stderr.
 */
export async function loadModelFor(values: OptionValues, spec: CommandSpec): Promise<LoadedModel> {
  const threads = integerOption(values, 'threads', MAX_THREADS);
  if (threads !== undefined) setNumThreads(threads);
  // Before anything is read: a GPU this libtorch lacks is a config error at once.
  const device = resolveDevice(deviceSetting(values) ?? 'auto', '--device');
  const checkpoint = requiredOption(values, spec, 'checkpoint');
  const plugins = listOption(values, 'plugin').map((p) => resolvePluginSpecifier(p, process.cwd()));
  await importPlugins(plugins, '--plugin');
  return loadModelWithPlugins(checkpoint, (m) => process.stderr.write(`skipping a broken checkpoint: ${m}\n`), device);
}

/** `--space`: one space, several separated by commas, or all. */
function spacesOption(values: OptionValues): RetrievalSpace[] | undefined {
  const v = stringOption(values, 'space');
  if (v === undefined) return undefined;
  if (v === 'all') return [...SPACES];
  const spaces = v.split(',').map((s) => s.trim());
  for (const s of spaces) {
    if (!(SPACES as readonly string[]).includes(s))
      throw new UsageError(`--space must be one or more of ${SPACES.join(', ')} (or all), got '${s}'`);
  }
  return [...new Set(spaces as RetrievalSpace[])];
}

export async function evalCommand(values: OptionValues): Promise<number> {
  const dataSpec = requiredOption(values, evalSpec, 'data');
  const requested = spacesOption(values);
  const { config, modalities, model, checkpoint, retrievalSpace } = await loadModelFor(values, evalSpec);
  const dataset = loadDataSource(dataSpec, {
    images: stringOption(values, 'images'),
    defaultSplit: 'test',
    ...runDataOptions(config),
  });
  const results = await evaluatePaired(model, modalities, dataset, {
    size: config.image.size,
    channels: config.image.channels,
    fit: config.image.fit,
    spaces: requested ?? [retrievalSpace],
  });
  const ranks = (d: DirectionMetrics): Record<string, number> => ({ r1: d.r1, r5: d.r5, r10: d.r10, medr: d.medr, meanr: d.meanr });
  for (const { metrics, chance, directions, rsum, chanceRsum, space } of results) {
    if (values.json === true) {
      const imageText = metrics
        ? {
            i2t: ranks(metrics.i2t),
            t2i: ranks(metrics.t2i),
            rsum: metrics.rsum,
            n_images: metrics.nImages,
            n_captions: metrics.nCaptions,
          }
        : {};
      const json = {
        ...imageText,
        space,
        ...(chance ? { chance } : {}),
        directions: directions.map((d) => ({
          query: d.query,
          gallery: d.gallery,
          ...ranks(d.metrics),
          chance: d.chance,
          n_queries: d.nQueries,
          n_gallery: d.nGallery,
        })),
        rsum_all: rsum,
        chance_rsum_all: chanceRsum,
        checkpoint: checkpoint.file,
        data: dataSpec,
      };
      process.stdout.write(`${JSON.stringify(json)}\n`);
      continue;
    }
    const f = (x: number): string => x.toFixed(2).padStart(6);
    const width = Math.max(...directions.map((d) => `${d.query} → ${d.gallery}`.length));
    const row = (d: RetrievalDirection): string =>
      `${`${d.query} → ${d.gallery}`.padEnd(width)}  ${f(d.metrics.r1)} ${f(d.metrics.r5)} ${f(d.metrics.r10)}  ` +
      `medr ${d.metrics.medr}  meanr ${d.metrics.meanr.toFixed(1)}   (chance R@10 ${d.chance.r10.toFixed(2)}; ${d.nQueries} queries, ${d.nGallery} in the gallery)`;
    const lines = [
      `${checkpoint.file} on ${dataSpec} (${space} space)`,
      `${' '.repeat(width)}     R@1    R@5   R@10`,
      ...directions.map(row),
    ];
    if (metrics && chance)
      lines.push(
        `image–text rsum ${metrics.rsum.toFixed(2)} (chance ${chance.rsum.toFixed(2)}; ${metrics.nImages} images, ${metrics.nCaptions} captions)`,
      );
    if (!metrics || directions.length > 2)
      lines.push(`rsum over ${directions.length} directions ${rsum.toFixed(2)} (chance ${chanceRsum.toFixed(2)})`);
    process.stdout.write(`${lines.join('\n')}\n\n`);
  }
  return 0;
}
