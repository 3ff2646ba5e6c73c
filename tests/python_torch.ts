// The Python with PyTorch that reference tests run: $BYOL_ALIGN_PYTHON, else the first of Debian's
// /usr/bin/python3 (python3-torch) and the python3 on the PATH that imports torch (the search
// native/find-libtorch.cjs makes, Debian's first so that references come from the same torch here).
import { spawnSync } from 'node:child_process';

const CANDIDATES = ['/usr/bin/python3', 'python3'];
let found: string | undefined;

/** The python3 to run reference scripts with; /usr/bin/python3 when none imports torch (its error then says so). */
export function pythonWithTorch(): string {
  if (found !== undefined) return found;
  const fromEnv = process.env.BYOL_ALIGN_PYTHON;
  if (fromEnv !== undefined && fromEnv !== '') return (found = fromEnv);
  found = CANDIDATES.find((python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) ?? CANDIDATES[0]!;
  return found;
}
