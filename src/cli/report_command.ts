// `byol-align report`: figures and one self-contained page in the run directory.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { importPlugins, readConfigFile } from '../config/load.js';
import { resolvePluginSpecifier } from '../modalities/plugins.js';
import { resolveDevice } from '../run/device.js';
import {
  deviceOption,
  deviceSetting,
  listOption,
  pluginOption,
  requiredOption,
  stringOption,
  type CommandSpec,
  type OptionValues,
} from './options.js';

export const reportSpec: CommandSpec = {
  name: 'report',
  summary: 'Write a run’s report: report.html and figures (losses, schedules, recall, a map, examples).',
  options: {
    run: { type: 'string', value: 'RUN_DIR', help: 'the run directory' },
    data: { type: 'string', value: 'SPEC', help: "held-out data for the map and examples (default: the run's validation data)" },
    images: { type: 'string', value: 'DIR', help: 'its image folder' },
    device: deviceOption,
    plugin: pluginOption,
  },
};

export async function reportCommand(values: OptionValues): Promise<number> {
  const run = requiredOption(values, reportSpec, 'run');
  const device = resolveDevice(deviceSetting(values) ?? 'auto', '--device');
  await importPlugins(
    listOption(values, 'plugin').map((p) => resolvePluginSpecifier(p, process.cwd())),
    '--plugin',
  );
  const savedConfig = join(run, 'config.json');
  const saved = existsSync(savedConfig) ? readConfigFile(savedConfig) : {};
  if (Array.isArray(saved.plugins)) await importPlugins(saved.plugins as string[], savedConfig);
  // Loaded on use: the plotting libraries are large, and no other command needs them.
  const { buildReport } = await import('../report/report.js');
  const { html, figures } = await buildReport({
    run,
    data: stringOption(values, 'data'),
    images: stringOption(values, 'images'),
    device,
    onMessage: (m) => process.stderr.write(`${m}\n`),
  });
  process.stderr.write(`wrote ${html} and ${figures.length} figures in ${run}/figures\n`);
  return 0;
}
