// `npm run bench -- engine`: matmul throughput, the cost of one tiny op, and an MLP training step
// (784→1024→1024→256, ReLU, batch 256, MSE, Adam), for byol-align and PyTorch on the same thread count.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { F, manualSeed, randn, ones, tidy, setNumThreads, getNumThreads, libtorchVersion, keep } from '../src/index.js';
import { Linear, ReLU, Sequential } from '../src/nn/index.js';
import { Adam } from '../src/optim/index.js';
import { secondsPerCall, runTorchScript, machineDescription } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const torchScript = path.join(here, '..', '..', 'bench', 'engine_torch.py');

interface EngineFigures {
  matmul_gflops: number;
  tiny_op_us: number;
  mlp_step_ms: number;
}

function measureOurs(): EngineFigures {
  manualSeed(0);
  const a = keep(randn([1024, 1024]));
  const b = keep(randn([1024, 1024]));
  const matmulSeconds = secondsPerCall(() => a.mm(b).dispose());

  const tiny = keep(ones([1]));
  const reps = 20000;
  const tinySeconds =
    secondsPerCall(
      () => {
        for (let i = 0; i < reps; i++) tiny.add(tiny).dispose();
      },
      1,
      1,
    ) / reps;

  const net = new Sequential(new Linear(784, 1024), new ReLU(), new Linear(1024, 1024), new ReLU(), new Linear(1024, 256));
  const optimizer = new Adam(net.parameters(), { lr: 1e-3 });
  const x = keep(randn([256, 784]));
  const y = keep(randn([256, 256]));
  const step = (): void =>
    tidy(() => {
      optimizer.zeroGrad();
      F.mseLoss(net.forward(x), y).backward();
      optimizer.step();
    });
  const stepSeconds = secondsPerCall(step, 3);
  return { matmul_gflops: (2 * 1024 ** 3) / matmulSeconds / 1e9, tiny_op_us: tinySeconds * 1e6, mlp_step_ms: stepSeconds * 1e3 };
}

export function benchEngine(threadCounts: number[]): void {
  console.log(`engine benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  for (const threads of threadCounts) {
    setNumThreads(threads);
    const ours = measureOurs();
    const torch = runTorchScript(torchScript, [String(threads)]);
    console.log(`\nthreads: ${getNumThreads()}`);
    const row = (label: string, key: keyof EngineFigures, unit: string, higherIsBetter: boolean): void => {
      const theirs = torch ? Number(torch[key]) : NaN;
      const speed = higherIsBetter ? ours[key] / theirs : theirs / ours[key];
      console.log(
        `  ${label.padEnd(28)} byol-align ${ours[key].toFixed(2).padStart(9)} ${unit.padEnd(8)} PyTorch ${torch ? theirs.toFixed(2).padStart(9) : '      n/a'} ${unit.padEnd(8)} speed ratio ${torch ? speed.toFixed(3) : 'n/a'}`,
      );
    };
    row('matmul 1024³', 'matmul_gflops', 'GFLOP/s', true);
    row('tiny op (add, 1 element)', 'tiny_op_us', 'µs', false);
    row('MLP training step', 'mlp_step_ms', 'ms/step', false);
    if (torch) console.log(`  (PyTorch ${torch.torch} via /usr/bin/python3; ratio > 1 means byol-align is faster)`);
  }
}
