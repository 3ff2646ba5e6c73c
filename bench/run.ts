// `npm run bench -- NAME [...]`: runs the named benchmarks (all when none is named).
import os from 'node:os';
import { benchEngine } from './engine.js';
import { benchByol } from './byol.js';
import { benchAlign } from './align.js';

const benchmarks: Record<string, () => void | Promise<void>> = {
  engine: () => benchEngine([1, os.availableParallelism()]),
  byol: () => benchByol(os.availableParallelism()),
  align: () => benchAlign(os.availableParallelism()),
};

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !(name in benchmarks));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${Object.keys(benchmarks).join(', ')}`);
  process.exit(2);
}
for (const name of requested.length > 0 ? requested : Object.keys(benchmarks)) await benchmarks[name]!();
