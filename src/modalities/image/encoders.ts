// The image encoders by config name, and how each is built: the small CNN and CIFAR ResNet-18 for
// small images trained from scratch, and the ImageNet ResNets whose parameter names are
// torchvision's and timm's, for starting from their weights (docs/pretrained.md).
import type { TensorModule } from '../../nn/index.js';
import { SmallCnn } from './small_cnn.js';
import { CifarResNet18 } from './resnet.js';
import { ImagenetResNet, type ImagenetResNetDepth } from './resnet_imagenet.js';

/** Every image encoder's name, as `image.encoder` takes it. */
export const IMAGE_ENCODERS = ['small-cnn', 'resnet18', 'resnet18-imagenet', 'resnet34', 'resnet50'] as const;
export type ImageEncoderName = (typeof IMAGE_ENCODERS)[number];

/** The depth of each ImageNet ResNet ('resnet18' is the CIFAR one, so ImageNet's 18 is named apart). */
const IMAGENET_DEPTHS: Partial<Record<ImageEncoderName, ImagenetResNetDepth>> = { 'resnet18-imagenet': 18, resnet34: 34, resnet50: 50 };

/** An encoder with its output width. */
export type ImageEncoder = TensorModule & { featureDim: number };

/**
 * A freshly initialised encoder.
 *
 * @example
 * buildImageEncoder('resnet50', { channels: 3 }).featureDim; // 2048
 */
export function buildImageEncoder(name: ImageEncoderName, options: { channels: number; widthMultiplier?: number }): ImageEncoder {
  const depth = IMAGENET_DEPTHS[name];
  if (depth !== undefined) return new ImagenetResNet({ depth, inChannels: options.channels });
  if (name === 'resnet18') return new CifarResNet18({ inChannels: options.channels, widthMultiplier: options.widthMultiplier });
  if (name === 'small-cnn') return new SmallCnn({ inChannels: options.channels });
  throw new TypeError(`image encoder '${String(name)}' is unknown; known: ${IMAGE_ENCODERS.join(', ')}`);
}
