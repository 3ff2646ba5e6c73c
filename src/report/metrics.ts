// The run's metrics.jsonl as the report reads it: one line per training step and one per validated
// epoch (src/run/train_run.ts writes both; steps and epochs count from 1).
import type { AlignStepRecord } from '../align/train.js';

export interface RecallAtK {
  r1: number;
  r5: number;
  r10: number;
}

/**
 * What the report reads of a step's line: the trainer's record as train_run writes it (step and
 * epoch counted from 1), the fields the curves draw.
 */
export type StepLine = Pick<AlignStepRecord, 'step' | 'terms' | 'lr' | 'tau' | 'collapse'>;

/** One retrieval direction of a validation line (src/align/evaluate.ts's RetrievalDirection). */
export interface EpochDirection {
  query: string;
  gallery: string;
  metrics: RecallAtK;
  chance?: RecallAtK;
}

export interface EpochLine {
  epoch: number;
  /** The space the epoch's recall was measured in. */
  space?: string;
  /** Image–text with COCO's protocol; absent when the run has no image and text. */
  val?: { i2t: RecallAtK; t2i: RecallAtK; rsum: number };
  /** What random embeddings reach on the same validation set. */
  chance?: { i2t: RecallAtK; t2i: RecallAtK; rsum: number };
  /** Every direction between two modalities (runs before it was recorded: see {@link epochDirections}). */
  directions?: EpochDirection[];
  /** The sum of Recall@1/5/10 over `directions`, and its chance level. */
  rsum?: number;
  chanceRsum?: number;
  rsumBySpace?: Record<string, number>;
}

/** An epoch's directions: as recorded, or (runs from before they were) image → text and text → image. */
export function epochDirections(line: EpochLine): EpochDirection[] {
  if (line.directions) return line.directions;
  if (!line.val) return [];
  return [
    { query: 'image', gallery: 'text', metrics: line.val.i2t, chance: line.chance?.i2t },
    { query: 'text', gallery: 'image', metrics: line.val.t2i, chance: line.chance?.t2i },
  ];
}

/** An epoch's rsum over all its directions, and the chance level when recorded. */
export function epochRsum(line: EpochLine): { rsum: number; chance?: number } {
  if (line.rsum !== undefined) return { rsum: line.rsum, chance: line.chanceRsum };
  return { rsum: line.val?.rsum ?? 0, chance: line.chance?.rsum };
}

export interface RunMetrics {
  steps: StepLine[];
  epochs: EpochLine[];
}

/** The step and epoch lines of `file`; a line that is not JSON is an error naming file and line. */
export function parseMetrics(text: string, file: string): RunMetrics {
  const steps: StepLine[] = [];
  const epochs: EpochLine[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let entry: Partial<StepLine & EpochLine>;
    try {
      entry = JSON.parse(line) as Partial<StepLine & EpochLine>;
    } catch {
      throw new Error(`${file}:${i + 1}: not JSON`);
    }
    if (typeof entry.step === 'number') steps.push(entry as StepLine);
    else if (entry.val !== undefined || entry.directions !== undefined) epochs.push(entry as EpochLine);
  });
  if (steps.length === 0) throw new Error(`${file}: no training steps logged yet`);
  return { steps, epochs };
}

/**
 * At most `max` lines: consecutive steps averaged in equal bins (each bin at its last step), so a
 * long run's curves stay light and show the trend rather than a random subset of noisy steps. A
 * loss term is logged only on steps that weight it (a first stage has other terms): each key is
 * averaged over the steps of the bin that have it.
 */
export function binSteps(steps: StepLine[], max: number): { lines: StepLine[]; stepsPerPoint: number } {
  const every = Math.ceil(steps.length / max);
  if (every <= 1) return { lines: steps, stepsPerPoint: 1 };
  const mean = (bin: StepLine[], pick: (s: StepLine) => Record<string, number>): Record<string, number> => {
    const keys = new Set(bin.flatMap((s) => Object.keys(pick(s))));
    return Object.fromEntries(
      [...keys].map((k) => {
        const values = bin.map((s) => pick(s)[k]).filter((v): v is number => v !== undefined);
        return [k, values.reduce((sum, v) => sum + v, 0) / values.length];
      }),
    );
  };
  const lines: StepLine[] = [];
  for (let i = 0; i < steps.length; i += every) {
    const bin = steps.slice(i, i + every);
    const avg = mean(bin, (s) => ({ lr: s.lr, tau: s.tau }));
    lines.push({
      step: bin.at(-1)!.step,
      terms: mean(bin, (s) => s.terms),
      lr: avg.lr!,
      tau: avg.tau!,
      collapse: mean(bin, (s) => s.collapse),
    });
  }
  return { lines, stepsPerPoint: every };
}
