// Prints the markdown table of docs/align.md's ablation from the runs' JSON results
// (examples/align_icons.ts --json, as scripts/ablate-icons.sh writes them):
//   node dist/scripts/ablation-table.js [DIR=bench/results/align] [--full]
// One row per run: rsum in each retrieval space, the best space's Recall@10 both ways, the collapse
// ratio and the training time; --full lists every recall of every space instead.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface Direction {
  r1: number;
  r5: number;
  r10: number;
}
interface RunResult {
  args: Record<string, string | boolean>;
  trainSeconds: number;
  collapse: Record<string, number>;
  results: Record<string, { i2t: Direction; t2i: Direction; rsum: number }>;
  chance: { i2t: Direction; t2i: Direction; rsum: number };
}

const dir = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'bench/results/align';
const runs = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ name: f.replace(/\.json$/, ''), run: JSON.parse(readFileSync(join(dir, f), 'utf8')) as RunResult }));
if (runs.length === 0) throw new Error(`ablation-table: no .json results in ${dir}`);

const f2 = (x: number): string => x.toFixed(2);
const full = process.argv.includes('--full');
if (full) {
  // Every space of every run, all six recalls.
  const recalls = (d: Direction): string => `${f2(d.r1)} | ${f2(d.r5)} | ${f2(d.r10)}`;
  console.log('| run | space | i2t R@1 | R@5 | R@10 | t2i R@1 | R@5 | R@10 | rsum |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { name, run } of runs) {
    for (const [space, m] of Object.entries(run.results))
      console.log(`| ${name} | ${space} | ${recalls(m.i2t)} | ${recalls(m.t2i)} | ${f2(m.rsum)} |`);
  }
} else {
  // One row per run: rsum in each space, and the best space's R@10 both ways against 10× chance.
  console.log(
    '| run | epochs | rsum projection | rsum pairing | rsum encoder | best space: i2t R@10 / t2i R@10 | collapse image / text | train s |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |');
  for (const { name, run } of runs) {
    const [bestSpace, best] = Object.entries(run.results).reduce((a, b) => (b[1].rsum > a[1].rsum ? b : a));
    const collapse = Object.values(run.collapse).map(f2).join(' / ');
    const rsum = (space: string): string => (run.results[space] ? f2(run.results[space].rsum) : '—');
    console.log(
      `| ${name} | ${run.args.epochs} | ${rsum('projection')} | ${rsum('pairing')} | ${rsum('encoder')} | ${bestSpace}: ${f2(best.i2t.r10)} / ${f2(best.t2i.r10)} | ${collapse} | ${run.trainSeconds.toFixed(0)} |`,
    );
  }
}
// Chance depends on the evaluation set's size, so there is one line per split.
for (const [split, chance] of new Map(runs.map(({ run }) => [run.args.split ?? 'test', run.chance]))) {
  console.log(`\nChance (${split} split): rsum ${f2(chance.rsum)}, R@10 ${f2(chance.i2t.r10)} / ${f2(chance.t2i.r10)}.`);
}
