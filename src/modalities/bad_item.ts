// The error a modality throws for one raw item it cannot use (a clip that is not a WAV, a truncated
// file, NaN samples), as opposed to a bug or a bad setting: the run can leave such an item out
// under data.onBadRecord 'skip' and train on, as it does with an image that does not decode.
import { DatasetError } from '../data/paired.js';

/**
 * A raw item that cannot be used: its file (the message starts with it), the problem, and its
 * position in the list given to `collate` (or `fit`) when known. In training, under
 * data.onBadRecord 'skip', the loader drops that raw item from its data item (which keeps its other
 * modalities) and counts it as 'bad-media'; under 'fail' the error stops the run. Any other error
 * a modality throws stops the run under either policy.
 *
 * @example
 * throw new BadItemError('/data/clips/7.wav', 'not a WAV file (audio item 3)', { index: 3 });
 */
export class BadItemError extends DatasetError {
  override readonly name: string = 'BadItemError';
  /** The item's position in the list that `collate` (or `fit`) was given; undefined where not known. */
  readonly index: number | undefined;

  constructor(
    file: string,
    /** What is wrong, without the file. */
    readonly problem: string,
    options: { index?: number; cause?: unknown } = {},
  ) {
    super(file, 'bad-media', problem, {}, { cause: options.cause });
    this.index = options.index;
  }
}
