// ResNet-18 (He et al. 2016, arXiv:1512.03385) in its CIFAR form for small images (28–64 px): a
// 3×3 stride-1 stem without max pooling, then four stages of two basic blocks, with a width
// multiplier on every channel count (as in BYOL's wider ResNets, Grill et al. 2020 §4).
import { F, type Tensor } from '../../engine/index.js';
import { BatchNorm2d, Conv2d, Identity, Module, Sequential, type TensorModule } from '../../nn/index.js';

/** Two 3×3 convolutions with a shortcut (a 1×1 projection when the shape changes). */
export class BasicBlock extends Module {
  readonly #conv1: Conv2d;
  readonly #bn1: BatchNorm2d;
  readonly #conv2: Conv2d;
  readonly #bn2: BatchNorm2d;
  readonly #shortcut: TensorModule;

  constructor(inC: number, outC: number, stride: number) {
    super();
    this.#conv1 = this.registerModule('conv1', new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false }));
    this.#bn1 = this.registerModule('bn1', new BatchNorm2d(outC));
    this.#conv2 = this.registerModule('conv2', new Conv2d(outC, outC, 3, { padding: 1, bias: false }));
    this.#bn2 = this.registerModule('bn2', new BatchNorm2d(outC));
    this.#shortcut = this.registerModule(
      'shortcut',
      stride !== 1 || inC !== outC
        ? new Sequential(new Conv2d(inC, outC, 1, { stride, bias: false }), new BatchNorm2d(outC))
        : new Identity(),
    );
  }

  override forward(x: Tensor): Tensor {
    const h = this.#bn1.forward(this.#conv1.forward(x)).relu();
    return this.#bn2.forward(this.#conv2.forward(h)).add(this.#shortcut.forward(x)).relu();
  }
}

export interface ResNet18Options {
  inChannels?: number;
  /** Multiplies every channel count (1 → 64, 128, 256, 512). */
  widthMultiplier?: number;
}

/**
 * @example
 * const encoder = new CifarResNet18({ inChannels: 3, widthMultiplier: 0.5 });
 * encoder.forward(randn([4, 3, 32, 32])).shape; // [4, 256]
 */
export class CifarResNet18 extends Module {
  readonly featureDim: number;
  readonly #stem: Sequential;
  readonly #stages: Sequential[];

  constructor(options: ResNet18Options = {}) {
    super();
    const widths = [64, 128, 256, 512].map((w) => Math.max(1, Math.round(w * (options.widthMultiplier ?? 1))));
    this.#stem = this.registerModule(
      'stem',
      new Sequential(new Conv2d(options.inChannels ?? 3, widths[0]!, 3, { padding: 1, bias: false }), new BatchNorm2d(widths[0]!)),
    );
    let inC = widths[0]!;
    this.#stages = widths.map((outC, i) => {
      const stage = new Sequential(new BasicBlock(inC, outC, i === 0 ? 1 : 2), new BasicBlock(outC, outC, 1));
      inC = outC;
      return this.registerModule(`layer${i + 1}`, stage);
    });
    this.featureDim = widths[3]!;
  }

  /** The stem, then the eight basic blocks in order: the units that "all but the last N blocks" counts in. */
  blocks(): Module[] {
    return [this.#stem, ...this.#stages.flatMap((stage) => stage.namedChildren().map(([, block]) => block))];
  }

  override forward(x: Tensor): Tensor {
    let h = this.#stem.forward(x).relu();
    for (const stage of this.#stages) h = stage.forward(h);
    return F.adaptiveAvgPool2d(h, 1).flatten(1);
  }
}
