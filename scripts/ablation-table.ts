// Prints the markdown table of docs/align.md's ablation from the JSON that
// bench/results/quality/run.sh writes (byol-align eval --json on both collections, and the
// PyTorch peer's results):  node dist/scripts/ablation-table.js [DIR=bench/results/quality]
// One row per run: rsum in the projection and encoder spaces on the icon test split and on the
// second collection, and the better space's Recall@10 both ways. No timings: the runs share the
// machine two at a time (timings belong in `npm run bench`).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface Direction {
  r1: number;
  r5: number;
  r10: number;
}
interface SpaceResult {
  space: string;
  i2t: Direction;
  t2i: Direction;
  rsum: number;
  chance: { i2t: Direction; t2i: Direction; rsum: number };
}
/** One line of bench/align_quality_torch.py's results (protocol 'own' is byol-align eval's). */
interface PeerResult extends SpaceResult {
  collection: string;
  protocol: string;
}

const COLLECTIONS = ['icons', 'other'] as const;
const dir = process.argv[2] ?? 'bench/results/quality';
const f2 = (x: number): string => x.toFixed(2);

function readLines(file: string): SpaceResult[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as SpaceResult);
}

/** Per collection, the results by space. */
type Row = { name: string; byCollection: Map<string, Map<string, SpaceResult>> };

const rows: Row[] = [];
const names = [...new Set(readdirSync(dir).flatMap((f) => /^(.+)\.icons\.json$/.exec(f)?.[1] ?? []))].sort();
for (const name of names) {
  const byCollection = new Map<string, Map<string, SpaceResult>>(COLLECTIONS.map((c) => [c, new Map()]));
  for (const c of COLLECTIONS) {
    const file = join(dir, `${name}.${c}.json`);
    if (existsSync(file)) for (const r of readLines(file)) byCollection.get(c)!.set(r.space, r);
  }
  rows.push({ name, byCollection });
}
for (const file of readdirSync(dir)
  .filter((f) => /^peer-.*\.json$/.test(f))
  .sort()) {
  const peer = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { results: PeerResult[] };
  const byCollection = new Map<string, Map<string, SpaceResult>>(COLLECTIONS.map((c) => [c, new Map()]));
  for (const r of peer.results) {
    // Recipe (b) has one space, its projections; its lines name none.
    if (r.protocol === 'own') byCollection.get(r.collection)?.set(r.space ?? 'projection', { ...r, space: r.space ?? 'projection' });
  }
  rows.push({ name: `PyTorch ${file.replace(/\.json$/, '')}`, byCollection });
}
if (rows.length === 0) throw new Error(`ablation-table: no results in ${dir}`);

const header = ['run'];
for (const c of COLLECTIONS) header.push(`${c} rsum projection`, `${c} rsum encoder`, `${c} R@10 i2t / t2i (better space)`);
console.log(`| ${header.join(' | ')} |`);
console.log(
  `| --- | ${header
    .slice(1)
    .map((h) => (h.includes('R@10') ? '---' : '---:'))
    .join(' | ')} |`,
);
for (const row of rows) {
  const cells = [row.name];
  for (const c of COLLECTIONS) {
    const spaces = row.byCollection.get(c)!;
    const rsum = (space: string): string => (spaces.has(space) ? f2(spaces.get(space)!.rsum) : '—');
    const best = [...spaces.values()].reduce<SpaceResult | undefined>((a, b) => (a === undefined || b.rsum > a.rsum ? b : a), undefined);
    cells.push(rsum('projection'), rsum('encoder'), best ? `${f2(best.i2t.r10)} / ${f2(best.t2i.r10)} (${best.space})` : '—');
  }
  console.log(`| ${cells.join(' | ')} |`);
}
for (const c of COLLECTIONS) {
  const chance = rows.flatMap((r) => [...r.byCollection.get(c)!.values()])[0]?.chance;
  if (chance) console.log(`\nChance (${c}): rsum ${f2(chance.rsum)}, R@10 ${f2(chance.i2t.r10)} / ${f2(chance.t2i.r10)}.`);
}
