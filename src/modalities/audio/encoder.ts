// BYOL-A's audio encoder (Niizumi et al. 2021, arXiv:2103.06695, §3.3 and Fig. 3; the "AudioNTT2020"
// network of its code): three blocks of 3×3 convolution (64 channels), batch normalisation, ReLU
// and 2×2 max pooling; two fully connected layers (ReLU, dropout 0.3 between them) applied to the
// flattened frequency × channel features of each time step; then the temporal max plus the
// temporal mean, so the representation sees both the loudest and the typical moment.
// The convolutions here have no bias (BatchNorm's shift replaces it; small_cnn.ts does the same),
// otherwise the layer order and the flattening are the paper code's, so a PyTorch port loads as is.
import { F, type Tensor } from '../../engine/index.js';
import { BatchNorm2d, Conv2d, Dropout, Linear, Module, ReLU, Sequential } from '../../nn/index.js';

export interface AudioEncoderOptions {
  /** Mel bands of the input (the frequency axis); at least 8, for three 2×2 poolings. */
  nMels: number;
  /** Channels of the three convolution blocks (default 64, BYOL-A's). */
  channels?: number;
  /** Width of both fully connected layers and of the output (default 512, BYOL-A's d). */
  featureDim?: number;
  /** Dropout between the two fully connected layers (default 0.3, BYOL-A's). */
  dropout?: number;
}

/**
 * log-mel spectrograms [N, 1, nMels, T] (T ≥ 8) → representations [N, featureDim].
 *
 * @example
 * const encoder = new ByolaAudioEncoder({ nMels: 64, featureDim: 512 });
 * encoder.forward(randn([4, 1, 64, 201])).shape; // [4, 512]
 */
export class ByolaAudioEncoder extends Module {
  readonly featureDim: number;
  readonly nMels: number;
  readonly #blocks: Sequential[];
  readonly #fc: Sequential;

  constructor(options: AudioEncoderOptions) {
    super();
    const channels = options.channels ?? 64;
    const featureDim = options.featureDim ?? 512;
    if (!Number.isInteger(options.nMels) || options.nMels < 8)
      throw new RangeError(`audio encoder: nMels must be an integer ≥ 8 (three 2×2 poolings), got ${options.nMels}`);
    this.nMels = options.nMels;
    this.featureDim = featureDim;
    let inChannels = 1;
    this.#blocks = [1, 2, 3].map((i) => {
      const block = new Sequential(new Conv2d(inChannels, channels, 3, { padding: 1, bias: false }), new BatchNorm2d(channels), new ReLU());
      inChannels = channels;
      return this.registerModule(`block${i}`, block);
    });
    const flattened = channels * Math.floor(options.nMels / 8);
    this.#fc = this.registerModule(
      'fc',
      new Sequential(
        new Linear(flattened, featureDim),
        new ReLU(),
        new Dropout(options.dropout ?? 0.3),
        new Linear(featureDim, featureDim),
        new ReLU(),
      ),
    );
  }

  /** The three conv blocks, then the fully connected layers: the units that "all but the last N blocks" counts in. */
  blocks(): Module[] {
    return [...this.#blocks, this.#fc];
  }

  override forward(x: Tensor): Tensor {
    const shape = x.shape;
    if (shape.length !== 4 || shape[1] !== 1 || shape[2] !== this.nMels || shape[3]! < 8)
      throw new RangeError(`audio encoder: expected log-mel [N, 1, ${this.nMels}, T ≥ 8], got shape [${shape.join(', ')}]`);
    let h = x;
    for (const block of this.#blocks) h = F.maxPool2d(block.forward(h), 2);
    // [N, C, F', T'] → [N, T', F'·C]: one feature vector per time step, frequency-major as in BYOL-A.
    const [n, c, f, t] = h.shape as [number, number, number, number];
    const perStep = this.#fc.forward(h.permute(0, 3, 2, 1).reshape(n, t, f * c));
    return perStep.amax(1).add(perStep.mean(1));
  }
}
