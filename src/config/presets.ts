// Named starting points for a config (`byol-align train --preset NAME`); a config file and
// overrides go on top.
import type { ConfigInput } from './schema.js';
import { BYOL_VIEW1, BYOL_VIEW2, type ViewAugmentations } from '../modalities/image/augment.js';

/** A preset's copy of a view (the presets are plain config input, with mutable ranges). */
function viewInput(view: Readonly<ViewAugmentations>): ViewAugmentations {
  return { ...view, cropScale: [...view.cropScale], cropRatio: [...view.cropRatio], blurSigma: [...view.blurSigma] };
}

export const PRESETS = {
  /**
   * BYOL's published ImageNet settings (Grill et al. 2020, arXiv:2006.07733, §3.2 and App. C):
   * LARS with base learning rate 0.2 per 256 items and weight decay 1.5e-6, batch 4096, 10 warm-up
   * epochs of 300, cosine decay, τ_base 0.996 on a cosine, heads 4096 → 256 with BatchNorm;
   * the image encoder is the ResNet-18 this library has for small images, with BYOL's two views.
   */
  'byol-paper': {
    image: { size: 64, encoder: 'resnet18', view1: viewInput(BYOL_VIEW1), view2: viewInput(BYOL_VIEW2) },
    model: {
      projectionHiddenDim: 4096,
      projectionDim: 256,
      predictionHiddenDim: 4096,
      headNorm: 'batch',
      tauBase: 0.996,
      tauSchedule: 'cosine',
    },
    optim: { optimizer: 'lars', baseLr: 0.2, weightDecay: 1.5e-6, warmupFraction: 10 / 300 },
    train: { epochs: 300, batchSize: 4096 },
  },
  /**
   * What the icon ablation in docs/align.md measured on a 2-core CPU for the default objective:
   * 32-px images and the small CNN, a 2-layer Transformer of width 128, AdamW 1e-3, τ_base 0.996
   * (the schema's default, BYOL's), batch 256, 3 epochs, and the schema's alignment image views.
   */
  'cpu-small': {
    image: { size: 32, encoder: 'small-cnn' },
    text: { vocabSize: 4096, maxLength: 24, dModel: 128, layers: 2, heads: 4 },
    optim: { optimizer: 'adamw', baseLr: 1e-3, weightDecay: 1e-4 },
    train: { epochs: 3, batchSize: 256 },
  },
} as const satisfies Record<string, ConfigInput>;

export type PresetName = keyof typeof PRESETS;
