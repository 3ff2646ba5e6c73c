// ResNet-18, -34 and -50 (He et al. 2016, arXiv:1512.03385) in their ImageNet form, laid out as
// torchvision's `torchvision.models.resnet*` and timm's `resnet*` (ResNet v1.5: a Bottleneck's
// stride sits on its 3×3 convolution), so their state dicts load key for key: conv1, bn1,
// layer1.0.conv1, ..., layerN.0.downsample.0/1. The classifier (`fc`) is left out: the encoder's
// output is the pooled feature (512 or 2048 wide), and src/modalities/image/pretrained.ts skips a
// file's `fc.*` keys. The CIFAR variant for small images is resnet.ts.
import { F, release, tidy, type Tensor } from '../../engine/index.js';
import { BatchNorm2d, Conv2d, Module, Sequential, init } from '../../nn/index.js';

/** The ImageNet ResNets byol-align builds, by depth. */
export type ImagenetResNetDepth = 18 | 34 | 50;

/** Blocks per stage and the block kind of each depth (He et al. 2016, Table 1). */
const ARCHITECTURES: Record<ImagenetResNetDepth, { blocks: [number, number, number, number]; bottleneck: boolean }> = {
  18: { blocks: [2, 2, 2, 2], bottleneck: false },
  34: { blocks: [3, 4, 6, 3], bottleneck: false },
  50: { blocks: [3, 4, 6, 3], bottleneck: true },
};

/** `y`, after freeing `h` when the current scope made it (an activation the next layer no longer needs). */
function after(h: Tensor, y: Tensor): Tensor {
  release(h);
  return y;
}

/** torchvision's conv init: He normal over fan_out (BatchNorm keeps weight 1, bias 0). */
function conv(inC: number, outC: number, kernel: number, stride = 1): Conv2d {
  const c = new Conv2d(inC, outC, kernel, { stride, padding: Math.floor(kernel / 2), bias: false });
  init.kaimingNormal_(c.weight, { mode: 'fan_out', nonlinearity: 'relu' });
  return c;
}

/** The 1×1 projection of a shortcut whose shape changes: `downsample.0` (conv) and `downsample.1` (BatchNorm). */
function downsample(inC: number, outC: number, stride: number): Sequential | null {
  return stride !== 1 || inC !== outC ? new Sequential(conv(inC, outC, 1, stride), new BatchNorm2d(outC)) : null;
}

/**
 * 7×7 stride-2 convolution, BatchNorm, ReLU and 3×3 stride-2 max pooling. Its conv1 and bn1 are
 * also registered on the ResNet itself (the state-dict keys are `conv1.*`, `bn1.*`, not
 * `stem.*`); the stem exists so that blocks() can hand them out as one unit.
 */
export class ResNetStem extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;

  constructor(inChannels: number) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inChannels, 64, 7, 2));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.conv1.forward(x);
      const a = after(h, this.bn1.forward(h));
      const r = after(a, a.relu());
      return after(r, F.maxPool2d(r, 3, { stride: 2, padding: 1 }));
    });
  }
}

/** Two 3×3 convolutions and a shortcut: ResNet-18 and -34's block (torchvision's BasicBlock). */
export class ImagenetBasicBlock extends Module {
  static readonly expansion = 1;
  readonly #conv1: Conv2d;
  readonly #bn1: BatchNorm2d;
  readonly #conv2: Conv2d;
  readonly #bn2: BatchNorm2d;
  readonly #downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number) {
    super();
    this.#conv1 = this.registerModule('conv1', conv(inC, planes, 3, stride));
    this.#bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.#conv2 = this.registerModule('conv2', conv(planes, planes, 3));
    this.#bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    const projection = downsample(inC, planes, stride);
    this.#downsample = projection && this.registerModule('downsample', projection);
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.#conv1.forward(x);
      h = after(h, this.#bn1.forward(h));
      h = after(h, h.relu());
      h = after(h, this.#conv2.forward(h));
      h = after(h, this.#bn2.forward(h));
      const shortcut = this.#downsample ? this.#downsample.forward(x) : x;
      h = after(h, h.add(shortcut));
      release(shortcut);
      return after(h, h.relu());
    });
  }
}

/**
 * 1×1 reduce, 3×3 (carrying the stride, as ResNet v1.5), 1×1 expand to 4× the width, and a
 * shortcut: ResNet-50's block (torchvision's and timm's Bottleneck).
 */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly #convs: [Conv2d, Conv2d, Conv2d];
  readonly #bns: [BatchNorm2d, BatchNorm2d, BatchNorm2d];
  readonly #downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number) {
    super();
    const outC = planes * Bottleneck.expansion;
    this.#convs = [conv(inC, planes, 1), conv(planes, planes, 3, stride), conv(planes, outC, 1)];
    this.#bns = [new BatchNorm2d(planes), new BatchNorm2d(planes), new BatchNorm2d(outC)];
    for (let i = 0; i < 3; i++) {
      this.registerModule(`conv${i + 1}`, this.#convs[i]!);
      this.registerModule(`bn${i + 1}`, this.#bns[i]!);
    }
    const projection = downsample(inC, outC, stride);
    this.#downsample = projection && this.registerModule('downsample', projection);
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (let i = 0; i < 3; i++) {
        h = after(h, this.#convs[i]!.forward(h));
        h = after(h, this.#bns[i]!.forward(h));
        if (i < 2) h = after(h, h.relu());
      }
      const shortcut = this.#downsample ? this.#downsample.forward(x) : x;
      h = after(h, h.add(shortcut));
      release(shortcut);
      return after(h, h.relu());
    });
  }
}

export interface ImagenetResNetOptions {
  /** 18, 34 or 50. */
  depth: ImagenetResNetDepth;
  /** Input channels (default 3; pretrained weights need 3). */
  inChannels?: number;
}

/**
 * A ResNet whose stateDict() keys are torchvision's and timm's without `fc.*`; the output is the
 * globally average-pooled last stage, [N, 512] (18, 34) or [N, 2048] (50).
 *
 * @example
 * const encoder = new ImagenetResNet({ depth: 50 });
 * encoder.eval().forward(randn([2, 3, 224, 224])).shape; // [2, 2048]
 * encoder.stateDict().has('layer4.2.bn3.running_var');   // true, as in torchvision.models.resnet50()
 */
export class ImagenetResNet extends Module {
  readonly depth: ImagenetResNetDepth;
  readonly featureDim: number;
  readonly #stem: ResNetStem;
  readonly #stages: Sequential[];

  constructor(options: ImagenetResNetOptions) {
    super();
    const architecture = ARCHITECTURES[options.depth];
    if (!architecture) throw new RangeError(`ImagenetResNet: depth must be 18, 34 or 50, got ${String(options.depth)}`);
    this.depth = options.depth;
    this.#stem = new ResNetStem(options.inChannels ?? 3);
    this.registerModule('conv1', this.#stem.conv1);
    this.registerModule('bn1', this.#stem.bn1);
    const Block = architecture.bottleneck ? Bottleneck : ImagenetBasicBlock;
    let inC = 64;
    this.#stages = [64, 128, 256, 512].map((planes, i) => {
      const blocks = Array.from({ length: architecture.blocks[i]! }, (_, j) => {
        const block = new Block(inC, planes, i > 0 && j === 0 ? 2 : 1);
        inC = planes * Block.expansion;
        return block;
      });
      return this.registerModule(`layer${i + 1}`, new Sequential(...blocks));
    });
    this.featureDim = inC;
  }

  /**
   * The stem (conv1, bn1), then every residual block from layer1.0 to the last of layer4: the
   * units that "all but the last N blocks" counts in.
   */
  blocks(): Module[] {
    return [this.#stem, ...this.#stages.flatMap((stage) => stage.namedChildren().map(([, block]) => block))];
  }

  /** images [N, C, H, W] (ImageNet-normalised) → features [N, featureDim]. */
  override forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.#stem.forward(x);
      for (const stage of this.#stages) h = after(h, stage.forward(h));
      return after(h, F.adaptiveAvgPool2d(h, 1)).flatten(1);
    });
  }
}
