// The second icon test collection (issue 18): other sets than the training sets, no emoji sets,
// and only concepts that no training drawing carries, built by the same command as the main set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captionSynonyms, conceptKey } from '../scripts/icon_captions.js';
import { listEntries, loadIconSetPackage } from '../scripts/iconify_sets.js';
import { ICON_SETS, OTHER_ICON_SETS } from '../scripts/build-icon-dataset.js';
import { scratchDir } from './scratch_dir.js';

const SCRIPT = fileURLToPath(new URL('../scripts/build-icon-dataset.js', import.meta.url));

interface Coco {
  info: { split: string };
  images: { id: number; file_name: string; width: number; concept: string; icon_set: string; icon_name: string }[];
  annotations: { id: number; image_id: number; caption: string }[];
}

test('the second collection uses none of the training sets and no emoji set', () => {
  for (const prefix of OTHER_ICON_SETS) {
    assert.ok(!(ICON_SETS as readonly string[]).includes(prefix), `${prefix} is a training set`);
    assert.doesNotMatch(prefix, /emoji|noto|twemoji|openmoji/);
  }
});

test('with every training concept on the training side, the collection holds only concepts no training drawing carries', () => {
  const root = scratchDir('icons-other-');
  const out = join(root, 'other');
  // test fraction 0: every concept of the training sets is a training concept
  const args = [SCRIPT, '--collection', 'other', '--other-out', out, '--limit', '40', '--size', '32', '--test-fraction', '0'];
  execFileSync(process.execPath, args, { stdio: 'pipe' });
  const coco = JSON.parse(readFileSync(join(out, 'captions_other.json'), 'utf8')) as Coco;
  assert.equal(coco.info.split, 'other');
  // 40 images share out as 8 per set; Fluent Color draws only 4 concepts that no training set has
  const perSet = OTHER_ICON_SETS.map((prefix) => coco.images.filter((i) => i.icon_set === prefix).length);
  assert.deepEqual(perSet, [8, 8, 4, 8, 8]);
  assert.deepEqual(readdirSync(join(out, 'images')).sort(), [...OTHER_ICON_SETS].sort());

  const trainingKeys = new Set<string>();
  for (const prefix of ICON_SETS) {
    const { set } = loadIconSetPackage(prefix);
    for (const entry of listEntries(set)) {
      if (entry.icon.hidden) continue;
      trainingKeys.add(conceptKey(entry.name, set));
      for (const synonym of captionSynonyms(entry.name, entry.synonyms, set)) trainingKeys.add(conceptKey(synonym, set));
    }
  }
  const perSetConcept = new Set<string>();
  const perImage = new Map<number, number>();
  for (const a of coco.annotations) perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
  for (const image of coco.images) {
    assert.ok(!trainingKeys.has(image.concept), `${image.file_name}: concept "${image.concept}" is carried by a training drawing`);
    const { set } = loadIconSetPackage(image.icon_set);
    assert.equal(image.concept, conceptKey(image.icon_name, set));
    assert.ok(!perSetConcept.has(`${image.icon_set}/${image.concept}`), `${image.file_name}: its set already gave "${image.concept}"`);
    perSetConcept.add(`${image.icon_set}/${image.concept}`);
    assert.equal(image.width, 32);
    assert.ok(existsSync(join(out, 'images', image.file_name)), `${image.file_name} exists`);
    const n = perImage.get(image.id) ?? 0;
    assert.ok(n >= 2 && n <= 5, `${image.file_name}: ${n} captions`);
  }
  const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'));
  assert.equal(stats.totals.images.other, coco.images.length);
  assert.equal(stats.totals.captions.other, coco.annotations.length);
  // Fluent Color draws most concepts of Fluent, a training set, so most of it is left out
  const fluentColor = stats.sets.find((s: { prefix: string }) => s.prefix === 'fluent-color');
  assert.ok(fluentColor.excluded.seenInTraining > 0);

  const again = join(root, 'again');
  execFileSync(process.execPath, [...args.slice(0, 4), again, ...args.slice(5)], { stdio: 'pipe' });
  assert.equal(readFileSync(join(again, 'captions_other.json'), 'utf8'), readFileSync(join(out, 'captions_other.json'), 'utf8'));
});

test('the command builds the main set and the second collection beside it, and refuses an unknown collection or set', () => {
  const root = scratchDir('icons-both-');
  execFileSync(process.execPath, [SCRIPT, '--out', join(root, 'icons'), '--limit', '11', '--size', '16'], { stdio: 'pipe' });
  assert.ok(existsSync(join(root, 'icons', 'captions_train.json')));
  assert.ok(existsSync(join(root, 'icons-other', 'captions_other.json')));
  const badCollection = spawnSync(process.execPath, [SCRIPT, '--out', join(root, 'x'), '--collection', 'all'], { encoding: 'utf8' });
  assert.equal(badCollection.status, 1);
  assert.match(badCollection.stderr, /--collection must be both, main or other, got "all"/);
  const badSet = spawnSync(process.execPath, [SCRIPT, '--collection', 'other', '--other-out', join(root, 'y'), '--other-sets', 'mdi'], {
    encoding: 'utf8',
  });
  assert.equal(badSet.status, 1);
  assert.match(badSet.stderr, /unknown icon set "mdi" for --other-sets/);
});
