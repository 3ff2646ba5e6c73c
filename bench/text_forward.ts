// `npm run bench -- text`: what a batch of caption queries costs in `serve`, step by step, on one
// thread: tokenising, the text tower's forward (the training path's ops, the inference fast path:
// PyTorch's fused encoder-layer kernel, src/nn/transformer.ts, on the padded batch and in length
// groups as serve runs it, src/modalities/text/length_groups.ts), the projection head;
// and beside them PyTorch's nn.TransformerEncoder of the same weights on the same ids
// (bench/text_forward_torch.py), with how far its embeddings are from ours. The model is a trained
// run's (default data/bench-serve/run, which `npm run bench -- serve` trains); the captions are the
// serve benchmark's queries. Times are medians over interleaved rounds, in CPU time (what a call
// costs whatever else the machine runs) and wall time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { noGrad, saveSafetensors, setNumThreads, tidy } from '../src/engine/index.js';
import { loadModel } from '../src/run/model_setup.js';
import { TextTransformer, type TextModality } from '../src/modalities/text/index.js';
import { machineDescription, runTorchScript } from './measure.js';
import { queryTexts } from './serve.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface TextBenchOptions {
  /** A trained run with an own-Transformer text tower (default data/bench-serve/run). */
  run?: string;
  /** Captions per batch (default 50, the serve benchmark's connections). */
  batch?: number;
  /** Captions in all (default 500). */
  queries?: number;
  /** Rounds over every batch (default 20). */
  rounds?: number;
  dataDir?: string;
}

/** CPU and wall milliseconds of one call. */
function timeCall(fn: () => void): { cpu: number; wall: number } {
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  fn();
  const cpu = process.cpuUsage(cpu0);
  return { cpu: (cpu.user + cpu.system) / 1e3, wall: Number(process.hrtime.bigint() - wall0) / 1e6 };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function benchText(options: TextBenchOptions = {}): Promise<void> {
  const { run = 'data/bench-serve/run', batch = 50, queries = 500, rounds = 20, dataDir = 'data/icons' } = options;
  setNumThreads(1);
  const loaded = loadModel(run);
  const text = loaded.modalities.find((m) => m.name === 'text') as TextModality | undefined;
  const tower = loaded.model.online.encoders.get('text').at(0);
  if (text === undefined || !(tower instanceof TextTransformer))
    throw new Error(`${run}: its text tower is not byol-align's own Transformer (this benchmark times that one)`);
  loaded.model.eval();
  const captions = queryTexts(dataDir, queries);
  const batches: string[][] = [];
  for (let i = 0; i + batch <= captions.length; i += batch) batches.push(captions.slice(i, i + batch));
  const ids = await Promise.all(batches.map((b) => text.collate(b)));
  const widths = ids.map((t) => t.shape[1]!);
  const tokens = ids.map((t) => t.ne(0).sum().item() as number);
  const padding = 1 - tokens.reduce((a, b) => a + b, 0) / ids.reduce((a, t) => a + t.size, 0);
  console.log(`text benchmark on ${machineDescription()}, 1 thread; ${run}: ${describeTower(tower)}`);
  console.log(
    `${batches.length} batches of ${batch} captions (the serve benchmark's queries): ${Math.min(...widths)}–${Math.max(...widths)} tokens after padding, ${(100 * padding).toFixed(0)}% of them padding`,
  );

  const forward = (fused: boolean, grouped: boolean) => (i: number) => {
    tower.fusedInference = fused;
    tower.groupLengths = grouped;
    noGrad(() => tower.forward(ids[i]!)).dispose();
  };
  const features = ids.map((t) => noGrad(() => tower.forward(t)));
  const steps: [string, (i: number) => void][] = [
    ['tower forward, training path', forward(false, false)],
    ['tower forward, fast path', forward(true, false)],
    ['tower forward, fast path in length groups', forward(true, true)],
    ['projection head', (i) => noGrad(() => tidy(() => loaded.model.online.project('text', features[i]!))).dispose()],
  ];
  const times = new Map(steps.map(([name]) => [name, { cpu: [] as number[], wall: [] as number[] }]));
  const tokenising = { cpu: [] as number[], wall: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < batches.length; i++) {
      for (const [name, fn] of steps) {
        const t = timeCall(() => fn(i));
        times.get(name)!.cpu.push(t.cpu);
        times.get(name)!.wall.push(t.wall);
      }
    }
    // Tokenising is asynchronous (the tokenizers library): its CPU time is the process's over the call.
    for (const b of batches) {
      const cpu0 = process.cpuUsage();
      const wall0 = process.hrtime.bigint();
      (await text.collate(b)).dispose();
      const cpu = process.cpuUsage(cpu0);
      tokenising.cpu.push((cpu.user + cpu.system) / 1e3);
      tokenising.wall.push(Number(process.hrtime.bigint() - wall0) / 1e6);
    }
  }
  tower.fusedInference = true;
  tower.groupLengths = true;
  times.set('tokenising', tokenising);

  // PyTorch: the same weights and ids.
  const work = mkdtempSync(path.join(tmpdir(), 'bench-text-'));
  try {
    saveSafetensors(path.join(work, 'tower.safetensors'), tower.stateDict());
    writeFileSync(
      path.join(work, 'batches.json'),
      JSON.stringify({
        heads: tower.layers[0]!.selfAttn.numHeads,
        pooling: tower.pooling,
        rounds,
        ids: ids.map((t) => t.toArray()),
      }),
    );
    const torch = runTorchScript(path.join(here, '..', '..', 'bench', 'text_forward_torch.py'), [work]);
    console.log(`per batch of ${batch}`.padEnd(58) + 'CPU ms  wall ms');
    for (const [name, t] of times) console.log(`  byol-align ${name}`.padEnd(58) + `${fmt(median(t.cpu))}  ${fmt(median(t.wall))}`);
    if (torch === null) {
      console.log('  PyTorch: not measured (no python3 with torch)');
      return;
    }
    for (const key of ['encoder', 'packed']) {
      const label = key === 'encoder' ? "nn.TransformerEncoder (PyTorch's fast path)" : 'the fused kernel on nested rows';
      console.log(`  PyTorch ${label}`.padEnd(58) + `${fmt(torch[`${key}_cpu_ms`] as number)}  ${fmt(torch[`${key}_wall_ms`] as number)}`);
    }
    const theirs = JSON.parse(readFileSync(path.join(work, 'pooled.json'), 'utf8')) as number[][][];
    let diff = 0;
    features.forEach((f, i) => {
      const ours = f.toArray() as number[][];
      ours.forEach((row, r) => row.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - theirs[i]![r]![j]!)))));
    });
    console.log(`  largest difference of the pooled features from PyTorch's: ${diff.toExponential(1)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    for (const t of [...ids, ...features]) t.dispose();
  }
}

function describeTower(tower: TextTransformer): string {
  const layer = tower.layers[0]!;
  return `${tower.layers.length} layers, width ${tower.dModel}, ${layer.selfAttn.numHeads} heads, feed-forward ${layer.linear1.outFeatures}, ${tower.pooling} pooling`;
}

const fmt = (ms: number): string => ms.toFixed(2).padStart(6);
