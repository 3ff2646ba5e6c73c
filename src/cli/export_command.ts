// `byol-align export`: the online network under PyTorch's names, its config and tokenizer, and a
// self-check of a few inputs with their embeddings, for python/byol_align_export.py.
import { loadDataSource } from '../data/source.js';
import { exportModel, savedCheckItems } from '../run/export_run.js';
import { sampleCheckItems } from '../run/check_samples.js';
import { checkOutputDir } from '../run/run_dir.js';
import { runDataOptions, type LoadedModel } from '../run/model_setup.js';
import { deviceOption, pluginOption, requiredOption, stringOption, type CommandSpec, type OptionValues } from './options.js';
import { checkpointOption, loadModelFor } from './eval_command.js';

export const exportSpec: CommandSpec = {
  name: 'export',
  summary: 'Export a checkpoint for PyTorch (weights under PyTorch names, config, tokenizer, a self-check).',
  options: {
    checkpoint: checkpointOption,
    out: { type: 'string', short: 'o', value: 'DIR', help: 'the export folder' },
    'check-data': {
      type: 'string',
      value: 'SPEC',
      help: "where the self-check's sample inputs come from (default: the samples saved in the run, else none)",
    },
    images: { type: 'string', value: 'DIR', help: 'the image folder of --check-data' },
    force: { type: 'boolean', help: 'write into a non-empty folder' },
    device: deviceOption,
    plugin: pluginOption,
  },
};

export async function exportCommand(values: OptionValues): Promise<number> {
  const out = requiredOption(values, exportSpec, 'out');
  checkOutputDir(out, values.force === true);
  const loaded: LoadedModel = await loadModelFor(values, exportSpec);
  try {
    const spec = stringOption(values, 'check-data');
    const check =
      spec === undefined
        ? savedCheckItems(loaded)
        : sampleCheckItems(
            loadDataSource(spec, {
              images: stringOption(values, 'images'),
              defaultSplit: 'test',
              ...runDataOptions(loaded.config, 'skip'),
            }).items,
          );
    const result = await exportModel(loaded, out, check);
    process.stderr.write(`${result.message}\n`);
  } finally {
    await Promise.all(loaded.modalities.map((m) => m.close()));
  }
  process.stderr.write(
    `exported ${loaded.checkpoint.file} to ${out}; load or check it in PyTorch with python/byol_align_export.py ${out} (docs/cli.md)\n`,
  );
  return 0;
}
