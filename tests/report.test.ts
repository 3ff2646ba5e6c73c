// byol-align report: figures and a page checked in Debian's Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { cli, useCliFixture } from './cli_fixture.js';

const { dir, trainedRun } = useCliFixture();

test('report writes non-blank figures and a page that opens in Chromium without errors', async () => {
  const run = trainedRun();
  const r = cli('report', '--run', run);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote .*report\.html and 7 figures/);
  for (const name of ['loss', 'lr', 'tau', 'collapse', 'recall', 'map', 'retrieval']) {
    const file = join(run, 'figures', `${name}.png`);
    const { channels, width, height } = await sharp(file)
      .stats()
      .then(async (stats) => ({ ...(await sharp(file).metadata()), channels: stats.channels }));
    assert.ok(width! >= 300 && height! >= 200, `${name}: ${width}×${height}`);
    // Not blank: drawn pixels make the red channel vary (a white page has deviation 0).
    assert.ok(channels[0]!.stdev > 5, `${name}.png looks blank (red channel stdev ${channels[0]!.stdev})`);
  }
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`file://${resolve(run, 'report.html')}`);
    const imagesLoaded = await page.$$eval('img', (imgs) =>
      imgs.map((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0),
    );
    assert.deepEqual(imagesLoaded, [true, true, true, true, true, true, true]);
    assert.match(await page.title(), /byol-align report/);
    assert.match((await page.textContent('body')) ?? '', /Last validation/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
  const missing = cli('report', '--run', join(dir, 'nowhere'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nowhere: no metrics\.jsonl here/);
});
