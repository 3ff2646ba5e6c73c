// A fresh folder under the system's temporary folder for a test's files, removed when the test that
// made it ends (made at a file's top level: when the file ends), so that test runs leave nothing
// behind: a checkpoint test alone left about 50 MB a run. Not inside a before hook: node:test
// ends the hook's own scope, and so removes the folder, before the tests run.
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Makes a folder named `prefix` + random characters and registers its removal. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
