// A one-line progress bar on a terminal (redrawn in place), or a plain line at the first step,
// then every few seconds and at the last, when the output is a file or a pipe, so logs stay readable.
import type { AlignStepRecord } from '../align/train.js';
import type { TrainProgress } from '../run/train_run.js';

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

export class ProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #started = performance.now();
  #firstStep: number | undefined;
  #lastPlain: number | undefined;
  /** A redrawn line is on the terminal and not yet ended. */
  #open = false;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
  }

  /** The line for a step: bar, epoch and step, loss, lr, τ, items/s and the time left. */
  line(record: AlignStepRecord, p: TrainProgress): string {
    this.#firstStep ??= p.step - 1;
    const done = p.step - this.#firstStep;
    const elapsed = (performance.now() - this.#started) / 1000;
    const eta = done > 0 ? (elapsed / done) * (p.totalSteps - p.step) : NaN;
    const width = 20;
    const filled = Math.round((width * p.step) / p.totalSteps);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    return (
      `${bar} epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.totalSteps} ` +
      `loss ${record.loss.toFixed(4)} lr ${record.lr.toExponential(2)} τ ${record.tau.toFixed(4)} ` +
      `${p.itemsPerSecond.toFixed(0)} items/s ETA ${duration(eta)}`
    );
  }

  update(record: AlignStepRecord, p: TrainProgress): void {
    const text = this.line(record, p);
    if (this.#stream.isTTY) {
      this.#stream.write(`\r\x1b[2K${text}`);
      this.#open = true;
      return;
    }
    const now = performance.now();
    if (this.#lastPlain === undefined || now - this.#lastPlain >= 5000 || p.step === p.totalSteps) {
      this.#stream.write(`${text}\n`);
      this.#lastPlain = now;
    }
  }

  /** Ends the redrawn line so that the next message starts on its own. */
  finish(): void {
    if (this.#open) this.#stream.write('\n');
    this.#open = false;
  }
}
