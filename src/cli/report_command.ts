// `byol-align report`: figures and one self-contained page in the run directory.
import { requiredOption, stringOption, type CommandSpec, type OptionValues } from './options.js';

export const reportSpec: CommandSpec = {
  name: 'report',
  summary: 'Write a run’s report: report.html and figures (losses, schedules, recall, a map, examples).',
  options: {
    run: { type: 'string', value: 'RUN_DIR', help: 'the run directory' },
    data: { type: 'string', value: 'SPEC', help: "held-out data for the map and examples (default: the run's validation data)" },
    images: { type: 'string', value: 'DIR', help: 'its image folder' },
  },
};

export async function reportCommand(values: OptionValues): Promise<number> {
  const run = requiredOption(values, reportSpec, 'run');
  // Loaded on use: the plotting libraries are large, and no other command needs them.
  const { buildReport } = await import('../report/report.js');
  const { html, figures } = await buildReport({
    run,
    data: stringOption(values, 'data'),
    images: stringOption(values, 'images'),
    onMessage: (m) => process.stderr.write(`${m}\n`),
  });
  process.stderr.write(`wrote ${html} and ${figures.length} figures in ${run}/figures\n`);
  return 0;
}
