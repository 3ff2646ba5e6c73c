// byol-align report: figures, and the page checked in Debian's Chromium (a screenshot of it is kept
// in the fixture's folder while the tests run).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { binSteps, type StepLine } from '../src/report/metrics.js';

const { dir, data, trainedRun } = useCliFixture();
const FIGURES = ['loss', 'lr', 'tau', 'collapse', 'recall', 'map', 'retrieval'];

let browser: Browser;
before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu'] });
});
after(() => browser.close());

/** Red-channel deviation of a PNG: 0 for a blank (one-colour) image. */
async function redStdev(png: string | Buffer): Promise<number> {
  return (await sharp(png).stats()).channels[0]!.stdev;
}

/** The run's report opened in Chromium, with the errors it logged; a full-page screenshot is written beside it. */
async function openReport(run: string, screenshot: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`file://${resolve(run, 'report.html')}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  return { page, errors };
}

interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}
const overlap = (a: Box, b: Box): boolean => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

let validated: { run: string; page: Page; errors: string[] } | undefined;
/** The fixture's validated run, reported once and opened once for the tests below. */
async function validatedReport(): Promise<{ run: string; page: Page; errors: string[] }> {
  if (validated) return validated;
  const run = trainedRun();
  const r = cli('report', '--run', run);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote .*report\.html and 7 figures/);
  validated = { run, ...(await openReport(run, join(dir, 'report-validated.png'))) };
  return validated;
}

test('report writes a non-blank PNG per figure and a page Chromium opens without errors', async () => {
  const { run, page, errors } = await validatedReport();
  for (const name of FIGURES) {
    const file = join(run, 'figures', `${name}.png`);
    const { width, height } = await sharp(file).metadata();
    assert.ok(width! >= 300 && height! >= 200, `${name}: ${width}×${height}`);
    assert.ok((await redStdev(file)) > 5, `${name}.png looks blank`);
  }
  assert.ok((await redStdev(join(dir, 'report-validated.png'))) > 5, 'the screenshot of the page looks blank');
  assert.match(await page.title(), /byol-align report/);
  assert.deepEqual(errors, []);
});

test('report charts are inline SVG whose text can be selected, with unique element ids', async () => {
  const { page } = await validatedReport();
  const figures = await page.$$eval('figure', (fs) =>
    fs.map((f) => ({
      id: f.id,
      svgs: f.querySelectorAll('svg').length,
      texts: f.querySelectorAll('svg text').length,
      imgs: f.querySelectorAll('img').length,
    })),
  );
  assert.deepEqual(
    figures.map((f) => f.id),
    FIGURES.map((n) => `fig-${n}`),
  );
  for (const f of figures) {
    assert.equal(f.svgs, 1, `${f.id}: one inline <svg>`);
    assert.equal(f.imgs, 0, `${f.id}: no <img>`);
    assert.ok(f.texts >= 5, `${f.id}: ${f.texts} <text> elements`);
  }
  // Select the whole page as a reader would: the charts' titles and axis titles come with it.
  await page.keyboard.press('Control+A');
  const selected = await page.evaluate(() => window.getSelection()?.toString() ?? '');
  for (const text of ['Loss per step', 'recall (%)', 'epoch', 'chance (random embeddings)', 'image → text'])
    assert.ok(selected.includes(text), `selection lacks '${text}'`);
  const ids = await page.$$eval('[id]', (els) => els.map((e) => e.id));
  assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids.filter((id, i) => ids.indexOf(id) !== i).join(', ')}`);
});

test('report legends lie outside the plotted marks', async () => {
  const { page } = await validatedReport();
  const charts = await page.$$eval('figure svg.marks', (svgs) =>
    svgs.map((svg) => {
      const box = (e: Element) => {
        const r = e.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      };
      return {
        id: svg.closest('figure')!.id,
        legends: [...svg.querySelectorAll('g.role-legend')].map(box),
        marks: [...svg.querySelectorAll('g.role-mark')].map(box).filter((b) => b.right > b.left || b.bottom > b.top),
      };
    }),
  );
  assert.equal(charts.length, 6);
  const withLegend = charts.filter((c) => c.legends.length > 0).map((c) => c.id);
  assert.deepEqual(withLegend, ['fig-loss', 'fig-collapse', 'fig-recall', 'fig-map']);
  for (const c of charts) {
    assert.ok(c.marks.length > 0, `${c.id}: no marks`);
    for (const legend of c.legends) for (const mark of c.marks) assert.ok(!overlap(legend, mark), `${c.id}: a legend covers marks`);
  }
});

test('report step and epoch axes are labelled with integers only', async () => {
  const { page } = await validatedReport();
  const axes = await page.$$eval('figure svg g.role-axis', (groups) =>
    groups
      .map((g) => ({
        title: g.querySelector('.role-axis-title text')?.textContent ?? '',
        labels: [...g.querySelectorAll('.role-axis-label text')].map((t) => t.textContent ?? ''),
      }))
      .filter((a) => a.title === 'step' || a.title === 'epoch'),
  );
  assert.ok(axes.filter((a) => a.title === 'epoch').length >= 1, 'no epoch axis');
  assert.ok(axes.filter((a) => a.title === 'step').length >= 4, 'step axes missing');
  for (const axis of axes) {
    assert.ok(axis.labels.length >= 1, `${axis.title} axis without labels`);
    for (const label of axis.labels) assert.match(label, /^\d+$/, `${axis.title} tick label '${label}'`);
  }
});

test('report shows chance on the recall chart and beside the recall table', async () => {
  const { run, page } = await validatedReport();
  const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, never>);
  const last = lines.filter((l) => l.val !== undefined).at(-1) as unknown as {
    chance: { i2t: Record<string, number>; t2i: Record<string, number> };
  };
  const rules = await page.$$eval('#fig-recall g.mark-rule.role-mark line', (ls) => ls.map((l) => l.getAttribute('stroke-dasharray')));
  assert.equal(rules.length, 6, 'a chance rule per direction and K');
  for (const dash of rules) assert.ok(dash && dash !== '1,0', `chance rule not dashed: ${dash}`);
  const rows = await page.$$eval('table tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
  const expected = (dir: 'i2t' | 't2i', name: string) => [
    `${name}, chance`,
    ...['r1', 'r5', 'r10'].map((k) => last.chance[dir][k]!.toFixed(2)),
  ];
  assert.ok(
    rows.some((r) => JSON.stringify(r) === JSON.stringify(expected('i2t', 'image → text'))),
    JSON.stringify(rows),
  );
  assert.ok(
    rows.some((r) => JSON.stringify(r) === JSON.stringify(expected('t2i', 'text → image'))),
    JSON.stringify(rows),
  );
});

test("report summarises the run's config", async () => {
  const { run, page } = await validatedReport();
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as {
    loss: { objective: string };
    train: { batchSize: number };
  };
  const summary = await page.$$eval('h2', (hs) => {
    const table = hs.find((h) => h.textContent === 'Config')?.nextElementSibling;
    return table ? [...table.querySelectorAll('tr')].map((tr) => [tr.children[0]!.textContent, tr.children[1]!.textContent]) : [];
  });
  const row = (key: string): string => summary.find(([k]) => k === key)?.[1] ?? '';
  assert.match(row('objective'), new RegExp(`^${config.loss.objective} \\(`));
  assert.match(row('length'), new RegExp(`batch ${config.train.batchSize}\\b`));
  assert.match(row('text encoder'), /1 layer, width 16, 2 heads/);
  assert.ok(row('validation data').startsWith('coco:'), row('validation data'));
});

test('report retrieval examples mark the correct item, and show it with its rank when it is not in the top 5', async () => {
  const { page } = await validatedReport();
  const examples = await page.$$eval('#fig-retrieval g.example', (gs) =>
    gs.map((g) => ({
      direction: g.getAttribute('data-direction'),
      correct: [...g.querySelectorAll('g.correct')].map((c) => ({ rank: Number(c.getAttribute('data-rank')), text: c.textContent ?? '' })),
      shown: g.querySelectorAll('image').length,
      lines: [...g.querySelectorAll('text')].map((t) => t.textContent ?? ''),
    })),
  );
  assert.deepEqual(
    examples.map((e) => e.direction),
    ['t2i', 't2i', 't2i', 'i2t', 'i2t', 'i2t'],
  );
  for (const e of examples) {
    assert.equal(e.correct.length, 1, `${e.direction}: one correct item`);
    const { rank, text } = e.correct[0]!;
    assert.ok(Number.isInteger(rank) && rank >= 1 && rank <= 24, `rank ${rank}`);
    if (e.direction === 't2i') {
      assert.equal(text, `correct, rank ${rank}`);
      assert.equal(e.shown, rank <= 5 ? 5 : 6, 'the top 5, and the correct image after them when missed');
    } else {
      assert.ok(text.startsWith(`${rank}. `) && text.endsWith('(correct)'), text);
      assert.equal(e.lines.length, rank <= 5 ? 5 : 6);
    }
  }
  // A model trained for 3 steps is near chance (top 5 of 24): some example misses.
  assert.ok(
    examples.some((e) => e.correct[0]!.rank > 5),
    'no missed example to check',
  );
});

test('report of a run without validation data says training data and draws no recall chart', async () => {
  const run = join(dir, 'run-no-val');
  const t = cli('train', ...data, '--steps', '3', '--out', run, ...TINY);
  assert.equal(t.status, 0, t.stderr);
  const r = cli('report', '--run', run);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote .*report\.html and 6 figures/);
  const { page, errors } = await openReport(run, join(dir, 'report-no-val.png'));
  assert.deepEqual(errors, []);
  assert.equal(await page.$('#fig-recall'), null);
  const mapTitle = await page.$eval('#fig-map .role-title-text text', (t) => t.textContent ?? '');
  assert.match(mapTitle, /^24 images and captions of the training data, projection space$/);
  const body = (await page.textContent('body')) ?? '';
  assert.match(body, /No validation/);
  assert.match(body, /Retrieval examples among 24 pairs of the training data/);
  assert.doesNotMatch(body, /held-out|Validation Recall/);
});

test('report of a folder without metrics names it', () => {
  const missing = cli('report', '--run', join(dir, 'nowhere'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nowhere: no metrics\.jsonl here/);
});

test('report curves average consecutive steps in bins, each at its last step, when a run has more steps than points', () => {
  const line = (step: number): StepLine => ({ step, terms: { total: step * 2 }, lr: step * 10, tau: 1, collapse: { image: step % 2 } });
  const steps = [1, 2, 3, 4, 5, 6, 7].map(line);
  assert.deepEqual(binSteps(steps, 7), { lines: steps, stepsPerPoint: 1 });
  const { lines, stepsPerPoint } = binSteps(steps, 3);
  // ceil(7 / 3) = 3 steps a bin: [1, 2, 3], [4, 5, 6], [7].
  assert.equal(stepsPerPoint, 3);
  assert.deepEqual(
    lines.map((l) => [l.step, l.terms.total, l.lr, l.collapse.image]),
    [
      [3, 4, 20, 2 / 3],
      [6, 10, 50, 1 / 3],
      [7, 14, 70, 1],
    ],
  );
});

test('a bin averages each loss term over the steps that logged it (a first stage logs other terms)', () => {
  // Steps 1–2 are a first stage with the intra term only; from step 3 the cross term replaces it.
  const line = (step: number, terms: Record<string, number>): StepLine => ({ step, terms, lr: 1, tau: 1, collapse: {} });
  const steps = [line(1, { 'intra/a': 2 }), line(2, { 'intra/a': 4 }), line(3, { 'cross/a->b': 9 }), line(4, { 'cross/a->b': 5 })];
  const { lines } = binSteps(steps, 1);
  assert.deepEqual(lines[0]!.terms, { 'intra/a': 3, 'cross/a->b': 7 });
});
