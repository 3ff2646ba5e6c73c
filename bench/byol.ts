// `npm run bench -- byol`: BYOL training throughput (images/s) on the Fashion-MNIST configuration
// (SmallCnn, 4096→256 BatchNorm heads, batch 256, both augmented views, Adam, EMA), for byol-align
// and the same step in PyTorch (bench/byol_torch.py), on the same thread count.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { manualSeed, randint, setNumThreads, getNumThreads, libtorchVersion } from '../src/index.js';
import { Byol } from '../src/byol/model.js';
import { trainByol } from '../src/byol/train.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { byolView1, byolView2 } from '../src/modalities/image/augment.js';
import { runTorchScript, machineDescription } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const torchScript = path.join(here, '..', '..', 'bench', 'byol_torch.py');
const STEPS = 20;
const BATCH = 256;

function measureOurs(): number {
  manualSeed(0);
  const images = randint(0, 256, [BATCH * 4, 1, 28, 28], { dtype: 'uint8' });
  const byol = new Byol(() => new SmallCnn({ inChannels: 1 }), { featureDim: 128, tauBase: 0.99 });
  const views = [byolView1(28, 1), byolView2(28, 1)] as [ReturnType<typeof byolView1>, ReturnType<typeof byolView2>];
  const common = { images, views, batchSize: BATCH, optimizer: 'adam' as const, baseLr: 3e-4, scaleLrByBatch: false };
  trainByol(byol, { ...common, steps: 3 }); // warm-up
  const started = process.hrtime.bigint();
  trainByol(byol, { ...common, steps: STEPS });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (STEPS * BATCH) / seconds;
}

/** Rounds per side, alternating the two; the best round of each counts (the machine's noise only slows a round down). */
const ROUNDS = 3;

export function benchByol(threads: number): void {
  console.log(`BYOL training benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);
  setNumThreads(threads);
  let ours = 0;
  let torch: Record<string, number | string> | null = null;
  for (let round = 0; round < ROUNDS; round++) {
    ours = Math.max(ours, measureOurs());
    const result = runTorchScript(torchScript, [String(threads), String(STEPS)]);
    if (result && (!torch || Number(result.images_per_s) > Number(torch.images_per_s))) torch = result;
  }
  const theirs = torch ? Number(torch.images_per_s) : NaN;
  console.log(`threads: ${getNumThreads()}, batch ${BATCH}, best of ${ROUNDS} alternating rounds of ${STEPS} timed steps`);
  console.log(`  byol-align ${ours.toFixed(1)} images/s`);
  console.log(`  PyTorch    ${torch ? theirs.toFixed(1) : 'n/a'} images/s${torch ? ` (torch ${torch.torch})` : ''}`);
  console.log(`  speed ratio (byol-align / PyTorch): ${torch ? (ours / theirs).toFixed(3) : 'n/a'}`);
}
