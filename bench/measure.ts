// Timing helpers shared by the benchmarks, and the call into the PyTorch side of each one.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';

/** Seconds per call of fn, after warm-up, over at least minSeconds. */
export function secondsPerCall(fn: () => void, minSeconds = 1, warmup = 3): number {
  for (let i = 0; i < warmup; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  for (;;) {
    fn();
    n++;
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    if (elapsed >= minSeconds) return elapsed / n;
  }
}

// $BYOL_ALIGN_PYTHON (as for the tests' reference fixtures) where PyTorch is another python3, such
// as a GPU machine's (scripts/gpu-check/run.sh sets it), else Debian's python3-torch.
export const PYTHON_WITH_TORCH = process.env.BYOL_ALIGN_PYTHON || '/usr/bin/python3';

/** Runs a PyTorch benchmark script and parses the JSON line it prints, or null without python3-torch. */
export function runTorchScript(script: string, args: string[]): Record<string, number | string> | null {
  if (!existsSync(PYTHON_WITH_TORCH)) return null;
  try {
    const out = execFileSync(PYTHON_WITH_TORCH, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
    return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number | string>;
  } catch (err) {
    console.error(`PyTorch side failed: ${(err as Error).message}`);
    return null;
  }
}

export function machineDescription(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

/** The middle of `values` (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
