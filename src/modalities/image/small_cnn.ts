// A small convolutional encoder for 28–64 px images: three 3×3 conv blocks (32, 64, 128 channels,
// each with BatchNorm and ReLU; the first two followed by 2×2 max pooling) and global average
// pooling to a 128-d representation. The encoder of the Fashion-MNIST quality check (issue #3).
import { F, release, tidy, type Tensor } from '../../engine/index.js';
import { BatchNorm2d, Conv2d, Module, ReLU, Sequential } from '../../nn/index.js';

export interface SmallCnnOptions {
  inChannels?: number;
  widths?: [number, number, number];
}

/**
 * @example
 * const encoder = new SmallCnn({ inChannels: 1 });
 * encoder.forward(randn([8, 1, 28, 28])).shape; // [8, 128]
 */
export class SmallCnn extends Module {
  readonly featureDim: number;
  readonly #blocks: Sequential[];

  constructor(options: SmallCnnOptions = {}) {
    super();
    const widths = options.widths ?? [32, 64, 128];
    let inC = options.inChannels ?? 3;
    this.#blocks = widths.map((outC, i) => {
      // Convolutions before BatchNorm need no bias (BatchNorm's shift replaces it).
      const block = new Sequential(new Conv2d(inC, outC, 3, { padding: 1, bias: false }), new BatchNorm2d(outC), new ReLU());
      inC = outC;
      return this.registerModule(`block${i + 1}`, block);
    });
    this.featureDim = widths[2];
  }

  /** The three conv blocks in order: the units that "all but the last N blocks" counts in. */
  blocks(): Module[] {
    return [...this.#blocks];
  }

  /** images [N, C, H, W] → representations [N, featureDim]. */
  override forward(x: Tensor): Tensor {
    // Each activation is freed as soon as the next op has it (see Sequential.forward).
    const next = (h: Tensor, y: Tensor): Tensor => {
      release(h);
      return y;
    };
    return tidy(() => {
      let h = x;
      this.#blocks.forEach((block, i) => {
        h = next(h, block.forward(h));
        if (i < this.#blocks.length - 1) h = next(h, F.maxPool2d(h, 2));
      });
      return next(h, F.adaptiveAvgPool2d(h, 1)).flatten(1);
    });
  }
}
