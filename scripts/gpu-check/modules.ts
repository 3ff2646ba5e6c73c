// Prints the node_modules folders (relative to the project root, one a line) that the package's
// production dependencies need, each package's own dependencies and installed optional ones
// followed, less the packages named as arguments (with everything only they need); a package
// nested in another's folder is not printed, it travels with that folder.
// Usage: node dist/scripts/gpu-check/modules.js [@lancedb/lancedb ...]   (from the project root)
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const excluded = new Set(process.argv.slice(2));
const found = new Set<string>();

/** The folder `name` resolves to from `fromDir`, as Node looks it up (nearest node_modules upwards). */
function locate(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === path.dirname(dir)) return null;
  }
}

function visit(dir: string): void {
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  const names = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies };
  for (const name of Object.keys(names)) {
    if (excluded.has(name)) continue;
    const at = locate(name, dir);
    // An optional or peer dependency not installed here (another platform's binary): skipped.
    if (at === null || found.has(at)) continue;
    found.add(at);
    visit(at);
  }
}

visit(root);
const dirs = [...found].map((dir) => path.relative(root, dir));
const inside = (dir: string): boolean => dirs.some((other) => dir.startsWith(`${other}${path.sep}`));
for (const dir of dirs.filter((dir) => !inside(dir)).sort()) console.log(dir);
