// Prints the markdown table of docs/align.md's ablation from the runs' JSON results
// (examples/align_icons.ts --json, as scripts/ablate-icons.sh writes them):
//   node dist/scripts/ablation-table.js [DIR=bench/results/align]
// One row per run and retrieval space: recalls in percent, rsum, the collapse ratio, training time.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface Direction {
  r1: number;
  r5: number;
  r10: number;
}
interface RunResult {
  args: Record<string, string>;
  trainSeconds: number;
  collapse: Record<string, number>;
  results: Record<string, { i2t: Direction; t2i: Direction; rsum: number }>;
  chance: { i2t: Direction; t2i: Direction; rsum: number };
}

const dir = process.argv[2] ?? 'bench/results/align';
const runs = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ name: f.replace(/\.json$/, ''), run: JSON.parse(readFileSync(join(dir, f), 'utf8')) as RunResult }));
if (runs.length === 0) throw new Error(`ablation-table: no .json results in ${dir}`);

const f2 = (x: number): string => x.toFixed(2);
const recalls = (d: Direction): string => `${f2(d.r1)} | ${f2(d.r5)} | ${f2(d.r10)}`;
console.log('| run | space | i2t R@1 | R@5 | R@10 | t2i R@1 | R@5 | R@10 | rsum | collapse (image / text) | train s |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
for (const { name, run } of runs) {
  const collapse = Object.values(run.collapse).map(f2).join(' / ');
  for (const [space, m] of Object.entries(run.results)) {
    const label = `${name} (${run.args.split ?? 'test'})`;
    console.log(
      `| ${label} | ${space} | ${recalls(m.i2t)} | ${recalls(m.t2i)} | ${f2(m.rsum)} | ${collapse} | ${run.trainSeconds.toFixed(0)} |`,
    );
  }
}
// Chance depends on the evaluation set's size, so there is one row per split.
const chanceBySplit = new Map(runs.map(({ run }) => [run.args.split ?? 'test', run.chance]));
for (const [split, chance] of chanceBySplit) {
  console.log(`| chance (${split}) | any | ${recalls(chance.i2t)} | ${recalls(chance.t2i)} | ${f2(chance.rsum)} | | |`);
}
