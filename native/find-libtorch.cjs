// Prints where libtorch's headers or libraries are, for binding.gyp.
// Order (issue #2): $LIBTORCH (a directory with include/ and lib/), then an installed
// PyTorch (its package carries include/ and lib/), then Debian's libtorch-dev system paths.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function hasLibtorch(root) {
  return fs.existsSync(path.join(root, 'include', 'torch', 'script.h')) && fs.existsSync(path.join(root, 'lib', 'libtorch.so'));
}

function fromPython() {
  const script = 'import torch, os; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))';
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      const [dir, abi] = execFileSync(python, ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim()
        .split('\n');
      if (dir && hasLibtorch(dir)) return { dir, abi };
    } catch {
      // this python has no torch; try the next
    }
  }
  return null;
}

function headerDirs(include) {
  return [include, path.join(include, 'torch', 'csrc', 'api', 'include')];
}

// CUDA kernels register themselves when libtorch_cuda is loaded, so it is linked even though
// no symbol of ours references it (--no-as-needed), where the libtorch found has it.
function linkFlags(libDir) {
  const flags = [`-L${libDir}`, `-Wl,-rpath,${libDir}`, '-Wl,--no-as-needed', '-ltorch', '-ltorch_cpu', '-lc10'];
  if (fs.existsSync(path.join(libDir, 'libtorch_cuda.so'))) flags.push('-ltorch_cuda');
  if (fs.existsSync(path.join(libDir, 'libc10_cuda.so'))) flags.push('-lc10_cuda');
  flags.push('-Wl,--as-needed');
  return flags;
}

// '1' when this libtorch ships c10d's ProcessGroupGloo header and the Gloo headers it includes are
// found (in libtorch's include/, or the system's: Debian's libgloo-dev), so that
// native/distributed.cc can be compiled with USE_C10D_GLOO; '0' otherwise.
function hasGloo(includeDirs) {
  const c10d = includeDirs.some((dir) => fs.existsSync(path.join(dir, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp')));
  const gloo = [...includeDirs, '/usr/include', '/usr/local/include'].some((dir) => fs.existsSync(path.join(dir, 'gloo', 'config.h')));
  return c10d && gloo ? '1' : '0';
}

function locate() {
  const fromEnv = process.env.LIBTORCH;
  if (fromEnv) {
    if (!hasLibtorch(fromEnv)) {
      throw new Error(`LIBTORCH=${fromEnv} has no include/torch/script.h and lib/libtorch.so`);
    }
    return {
      include: headerDirs(path.join(fromEnv, 'include')),
      lib: path.join(fromEnv, 'lib'),
      abi: process.env.LIBTORCH_CXX11_ABI ?? '1',
    };
  }
  const py = fromPython();
  if (py) {
    return { include: headerDirs(path.join(py.dir, 'include')), lib: path.join(py.dir, 'lib'), abi: py.abi };
  }
  const multiarch = '/usr/lib/x86_64-linux-gnu';
  for (const libDir of [multiarch, '/usr/lib/aarch64-linux-gnu', '/usr/lib']) {
    if (fs.existsSync('/usr/include/torch/script.h') && fs.existsSync(path.join(libDir, 'libtorch.so'))) {
      return { include: headerDirs('/usr/include'), lib: libDir, abi: '1' };
    }
  }
  throw new Error(
    'byol-align: libtorch was not found. Install it with `apt-get install libtorch-dev` (Debian/Ubuntu), ' +
      'or `pip install torch`, or set LIBTORCH to a directory holding include/ and lib/ (the libtorch zip from pytorch.org).',
  );
}

try {
  const where = locate();
  const what = process.argv[2];
  if (what === 'include') console.log(where.include.join(' '));
  else if (what === 'lib') console.log(where.lib);
  else if (what === 'abi') console.log(where.abi);
  else if (what === 'libs') console.log(linkFlags(where.lib).join(' '));
  else if (what === 'gloo') console.log(hasGloo(where.include));
  else console.log(JSON.stringify(where));
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
