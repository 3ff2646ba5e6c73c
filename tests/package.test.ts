// The package as npm users get it: `npm pack`, installed into an empty folder with production
// dependencies only (the addon builds from source there, as it does for users), then the command
// and the library used from that folder alone. A devDependency imported at run time, or a file
// missing from package.json's "files", fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TINY, useCliFixture } from './cli_fixture.js';
import { pythonWithTorch } from './python_torch.js';

const { dir, data, annotations } = useCliFixture();

function run(cwd: string, command: string, args: string[], timeoutMs = 120_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: `${r.stderr}${r.error ? String(r.error) : ''}` };
}

test('the packed package installs with production dependencies only, and its command and library work', () => {
  const { version, devDependencies } = JSON.parse(readFileSync('package.json', 'utf8')) as {
    version: string;
    devDependencies: Record<string, string>;
  };
  // dist/ is fresh: `npm test` compiles before it runs the tests.
  const pack = run(process.cwd(), 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
  assert.equal(pack.status, 0, pack.stderr);
  const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  const files = packed!.files.map((f) => f.path);
  for (const needed of [
    'dist/src/cli/main.js',
    'dist/src/index.js',
    'native/find-libtorch.cjs',
    'binding.gyp',
    'python/byol_align_export.py',
  ])
    assert.ok(files.includes(needed), `${needed} is in the package`);
  assert.ok(!files.some((f) => f.startsWith('dist/tests/') || f.startsWith('src/')), 'no tests or sources in the package');

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const install = run(
    app,
    'npm',
    ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed!.filename)],
    20 * 60_000,
  );
  assert.equal(install.status, 0, install.stderr);
  const installed = join(app, 'node_modules');
  // Tools only the repository uses are absent (a production dependency may still pull in a
  // devDependency such as @types/node, so the check names the ones nothing needs at run time).
  const devOnly = ['typescript', 'eslint', 'prettier', 'playwright-core', '@resvg/resvg-js'];
  for (const dev of devOnly) {
    assert.ok(dev in devDependencies, `${dev} is a devDependency`);
    assert.equal(existsSync(join(installed, dev)), false, `${dev} (a devDependency) is not installed`);
  }

  const npx = (...args: string[]): ReturnType<typeof run> => run(app, 'npx', ['--no-install', 'byol-align', ...args]);
  const v = npx('--version');
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^byol-align ${version.replaceAll('.', '\\.')}\\nlibtorch \\d+\\.\\d+`));
  const help = npx('--help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /Commands:\n {2}train/);

  const trained = npx('train', ...data, '--val-data', `coco:${annotations}`, '--steps', '3', '--out', 'run', ...TINY);
  assert.equal(trained.status, 0, trained.stderr);
  const evaluated = npx('eval', '--checkpoint', 'run', '--data', `coco:${annotations}`, '--images', data[3]!, '--json');
  assert.equal(evaluated.status, 0, evaluated.stderr);
  assert.equal(JSON.parse(evaluated.stdout).n_images, 24);
  writeFileSync(join(app, 'q.txt'), 'a red square\n');
  const embedded = npx('embed', '--checkpoint', 'run', '--modality', 'text', '--input', 'q.txt', '--out', 'q.jsonl');
  assert.equal(embedded.status, 0, embedded.stderr);
  assert.match(readFileSync(join(app, 'q.jsonl'), 'utf8'), /"id":"1","embedding":\[/);
  const exported = npx('export', '--checkpoint', 'run', '--out', 'export');
  assert.equal(exported.status, 0, exported.stderr);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'check.safetensors'])
    assert.ok(existsSync(join(app, 'export', f)), f);
  // The Python module ships with the package and checks the export (Debian's python3-torch).
  const py = run(app, pythonWithTorch(), [join(installed, 'byol-align', 'python', 'byol_align_export.py'), 'export']);
  assert.equal(py.status, 0, py.stdout + py.stderr);
  assert.match(py.stdout, /^match$/m);
  const reported = npx('report', '--run', 'run');
  assert.equal(reported.status, 0, reported.stderr);
  assert.ok(existsSync(join(app, 'run', 'report.html')));

  writeFileSync(
    join(app, 'use.mjs'),
    "import { tensor, train, loadModel } from 'byol-align';\n" +
      'console.log(typeof train, typeof loadModel, tensor([1, 2, 3]).sum().item());\n',
  );
  const library = run(app, process.execPath, ['use.mjs']);
  assert.equal(library.status, 0, library.stderr);
  assert.equal(library.stdout, 'function function 6\n');
});
