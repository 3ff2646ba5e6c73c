// The training configuration: one schema (zod) that validates config files and command-line
// overrides, fills in defaults, and generates docs/config.md (scripts/config-docs.ts), so the
// reference cannot drift from what is accepted. Every object is strict: an unknown key is an
// error naming it and the keys allowed there.
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ALIGNMENT_OBJECTIVES, type ObjectiveName } from './objectives.js';
import { ALIGNMENT_VIEW, type ViewAugmentations } from '../modalities/image/augment.js';
import { IMAGE_ENCODERS } from '../modalities/image/encoders.js';
import { DEFAULT_TEXT_VIEW, type TextViewConfig } from '../modalities/text/views.js';
import { DEFAULT_VECTOR_VIEW, type VectorViewConfig } from '../modalities/vector/views.js';
import { DEFAULT_VECTOR_ADAPTER } from '../modalities/vector/adapter.js';
import { towerShape } from './tower.js';

const objectiveNames = Object.keys(ALIGNMENT_OBJECTIVES) as [ObjectiveName, ...ObjectiveName[]];
const positiveInt = z.number().int().positive();
// Upper bounds on sizes, generous for any model trained here: a typo such as 1e12 becomes an error
// naming the key and the bound, not an allocator failure deep inside libtorch.
const positiveUpTo = (max: number) => positiveInt.max(max);
/** More threads than cores only adds contention; far more can hang OpenBLAS, so the count is bounded. */
const THREADS_PER_CORE = 4;
export const MAX_THREADS = THREADS_PER_CORE * availableParallelism();
/** The forms of a device setting (train.device, `--device`): src/run/device.ts resolves them. */
export const DEVICE_SETTING = /^(auto|cpu|cuda(:\d+)?)$/;
const weight = z.number().min(0);
const probability = z.number().min(0).max(1);

/** [min, max] of `bound`, refused (naming the key, by zod's path) when min > max. */
function range(bound: z.ZodNumber) {
  return z.tuple([bound, bound]).superRefine(([min, max], ctx) => {
    if (min > max)
      ctx.addIssue({ code: 'custom', message: `[${min}, ${max}] is not a range: the first value (min) is above the second (max)` });
  });
}

// The views' defaults are the modalities' own presets for text and vectors (DEFAULT_TEXT_VIEW,
// DEFAULT_VECTOR_VIEW). Images default to the alignment views (ALIGNMENT_VIEW), milder than the
// image modality's own BYOL views (BYOL_VIEW1/BYOL_VIEW2, which the byol-paper preset sets); a
// run's config.json holds every key, so runs written before keep the views they trained with.

/** One image view's augmentations, defaults from `preset`. */
function imageViewSchema(preset: Readonly<ViewAugmentations>, which: string) {
  return z
    .strictObject({
      cropScale: range(z.number().gt(0).max(1))
        .default([...preset.cropScale])
        .describe('Random resized crop: [min, max] fraction of the image area kept.'),
      cropRatio: range(z.number().positive())
        .default([...preset.cropRatio])
        .describe('Random resized crop: [min, max] aspect ratio (width / height), drawn log-uniformly.'),
      flipP: probability.default(preset.flipP).describe('Probability of a horizontal flip.'),
      colorJitterP: probability.default(preset.colorJitterP).describe('Probability that colour jitter is applied.'),
      brightness: z.number().min(0).default(preset.brightness).describe('Colour jitter: brightness factor drawn from [1 − b, 1 + b].'),
      contrast: z.number().min(0).default(preset.contrast).describe('Colour jitter: contrast factor drawn from [1 − c, 1 + c].'),
      saturation: z.number().min(0).default(preset.saturation).describe('Colour jitter: saturation factor drawn from [1 − s, 1 + s].'),
      hue: z.number().min(0).max(0.5).default(preset.hue).describe('Colour jitter: hue shift drawn from [−h, h] of a full turn.'),
      grayscaleP: probability.default(preset.grayscaleP).describe('Probability of converting to greyscale.'),
      blurP: probability.default(preset.blurP).describe('Probability of a Gaussian blur (kernel about 10% of the image).'),
      blurSigma: range(z.number().positive())
        .default([...preset.blurSigma])
        .describe('Gaussian blur: [min, max] of σ, in pixels.'),
      solarizeP: probability.default(preset.solarizeP).describe('Probability of solarizing (inverting values ≥ 0.5).'),
    })
    .prefault({})
    .describe(`The ${which} image view: BYOL's augmentations (Grill et al. 2020, Table 6) at the strengths below.`);
}

/** One text view's noise, defaults from DEFAULT_TEXT_VIEW. */
function textViewSchema(preset: Readonly<TextViewConfig>, which: string) {
  return z
    .strictObject({
      spanDeletionP: probability.default(preset.spanDeletionP).describe('Probability that a caption loses one contiguous span of tokens.'),
      spanMaxFraction: z
        .number()
        .min(0)
        .max(1)
        .default(preset.spanMaxFraction)
        .describe("The longest deleted span, as a fraction of the caption's tokens."),
      tokenDropoutRate: probability
        .default(preset.tokenDropoutRate)
        .describe('Each text token is deleted with this probability; the rest close up.'),
      shuffleP: probability.default(preset.shuffleP).describe("Probability that a caption's tokens are shuffled locally."),
      shuffleWindow: z
        .number()
        .int()
        .min(0)
        .default(preset.shuffleWindow)
        .describe('In a local shuffle, no token moves more than this many places.'),
      maskRate: probability.default(preset.maskRate).describe('Each remaining text token is replaced by [MASK] with this probability.'),
    })
    .prefault({})
    .describe(`The ${which} text view.`);
}

/** One vector view's perturbations, defaults from DEFAULT_VECTOR_VIEW. */
function vectorViewSchema(preset: Readonly<VectorViewConfig>, which: string) {
  return z
    .strictObject({
      dropoutRate: z
        .number()
        .min(0)
        .lt(1)
        .default(preset.dropoutRate)
        .describe('Each feature is zeroed with this probability, the rest scaled by 1/(1 − rate).'),
      noiseStd: z.number().min(0).default(preset.noiseStd).describe('Standard deviation of the added Gaussian noise (see noiseScale).'),
      noiseScale: z
        .enum(['relative', 'absolute'])
        .default(preset.noiseScale)
        .describe("'relative': noiseStd is a multiple of each feature's batch std; 'absolute': in input units."),
      mixP: probability.default(preset.mixP).describe('Probability that an item is mixed with a random partner from the batch.'),
      mixMaxLambda: probability.default(preset.mixMaxLambda).describe("Upper bound of the partner's share λ ~ U(0, mixMaxLambda)."),
    })
    .prefault({})
    .describe(`The ${which} vector view.`);
}

const dataSource = z
  .string()
  .regex(/^(coco|karpathy|jsonl):.+/, 'expected coco:FILE, karpathy:FILE[#split] or jsonl:FILE')
  .describe('A data set: coco:ANNOTATIONS.json (with an image folder), karpathy:dataset_coco.json or jsonl:MANIFEST.jsonl.');

export const dataSchema = z
  .strictObject({
    train: dataSource.optional().describe('Training data (coco:FILE, karpathy:FILE or jsonl:FILE); `--data` on the command line.'),
    images: z
      .string()
      .optional()
      .describe('Image folder of a COCO or Karpathy data set (relative paths are resolved against it); `--images`.'),
    val: dataSource.optional().describe('Validation data, evaluated after every epoch with the retrieval metrics; `--val-data`.'),
    valImages: z.string().optional().describe('Image folder of the validation data (default: `images`); `--val-images`.'),
    valFraction: z
      .number()
      .min(0)
      .max(0.5)
      .default(0)
      .describe(
        'Without `val`: hold out this fraction of the training concepts (`concept` of an item, else its id; by a fixed hash) as validation data, so that validation never touches a test split; `--val-fraction`.',
      ),
    onBadRecord: z
      .enum(['fail', 'skip'])
      .default('fail')
      .describe(
        "A bad record (malformed line, missing or undecodable image, empty caption): 'fail' stops with its file and position, 'skip' leaves it out and counts it.",
      ),
    allowOutsideImages: z
      .boolean()
      .default(false)
      .describe(
        "Read image paths that lead outside the image folder (a JSONL manifest: its folder) through `..`, an absolute path or a symbolic link; false refuses them as bad records. Covers a plug-in's media files too (the audio modality's clips).",
      ),
    modalities: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'The modalities to train, e.g. [image, text] on a manifest that also has `audio` (default: every registered modality the training data has); the others are ignored. Each must be registered and present in the data.',
      ),
  })
  .describe('Where the data comes from.');

export const imageSchema = z
  .strictObject({
    size: positiveUpTo(1024).default(64).describe('Side of the square model input, in pixels.'),
    channels: z
      .union([z.literal(1), z.literal(3)])
      .default(3)
      .describe('3 (RGB) or 1 (greyscale).'),
    fit: z
      .enum(['cover', 'fill'])
      .default('cover')
      .describe("How images are made square: 'cover' scales and centre-crops, 'fill' stretches."),
    encoder: z
      .enum(IMAGE_ENCODERS)
      .default('small-cnn')
      .describe(
        "'small-cnn' (conv 32-64-128, 128-d), 'resnet18' (CIFAR-style, 512·widthMultiplier-d), or an ImageNet ResNet in torchvision's and timm's layout: 'resnet18-imagenet', 'resnet34' (512-d), 'resnet50' (2048-d) (docs/pretrained.md).",
      ),
    widthMultiplier: z
      .number()
      .positive()
      .max(16)
      .default(1)
      .describe("The CIFAR ResNet-18's channel multiplier (1 for the other encoders)."),
    weights: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A safetensors state dict loaded into the image encoder when a run starts (torchvision's or timm's ResNet weights; their classifier `fc.*` is skipped); every key is checked. Resuming does not read it: checkpoints hold the weights (docs/pretrained.md).",
      ),
    view1: imageViewSchema(ALIGNMENT_VIEW, 'first'),
    view2: imageViewSchema(ALIGNMENT_VIEW, 'second'),
    ...towerShape,
  })
  .describe(
    "The image modality; its views default to mild ones for alignment (crop 50–100%, flip, colour jitter ±0.2), the byol-paper preset's are BYOL's (also grayscale, blur, solarize).",
  );

export const textSchema = z
  .strictObject({
    vocabSize: z
      .number()
      .int()
      .min(16)
      .max(262144)
      .default(4096)
      .describe('WordPiece vocabulary trained on the training captions, special tokens included.'),
    minFrequency: positiveInt.default(2).describe('Pairs seen fewer times are not merged into a token.'),
    maxLength: z.number().int().min(2).max(1024).default(32).describe('Tokens per caption, [CLS] included; longer captions are cut.'),
    dModel: positiveUpTo(8192).default(256).describe("Transformer width, also the text representation's."),
    layers: positiveUpTo(64).default(4).describe('Transformer layers (pre-LN).'),
    heads: positiveUpTo(256).default(4).describe('Attention heads; must divide dModel.'),
    dropout: z.number().min(0).max(1).default(0.1).describe('Dropout inside the Transformer.'),
    pooling: z.enum(['mean', 'cls']).default('mean').describe('Representation: mean of the token vectors, or the [CLS] vector.'),
    encoder: z
      .enum(['transformer', 'bert'])
      .default('transformer')
      .describe(
        "'transformer': byol-align's own, trained from scratch with a tokenizer trained on the captions; 'bert': the pretrained BERT-family model (BERT, MiniLM) in text.pretrained (docs/pretrained.md).",
      ),
    pretrained: z
      .string()
      .min(1)
      .optional()
      .describe(
        'With encoder bert: a folder holding config.json, model.safetensors and tokenizer.json; its architecture, dropout and tokenizer replace vocabSize, minFrequency, dModel, layers, heads and dropout. Read when training starts; the checkpoint keeps its config and tokenizer.',
      ),
    view1: textViewSchema(DEFAULT_TEXT_VIEW, 'first'),
    view2: textViewSchema(DEFAULT_TEXT_VIEW, 'second'),
    ...towerShape,
  })
  .describe('The text modality: tokenizer, encoder and views (span deletion, token dropout, local shuffles, masking).');

export const vectorSchema = z
  .strictObject({
    featureDim: positiveUpTo(32768)
      .default(DEFAULT_VECTOR_ADAPTER.featureDim)
      .describe("Width of the adapter's output, the representation."),
    hiddenDims: z
      .array(positiveUpTo(32768))
      .max(16)
      .default([...DEFAULT_VECTOR_ADAPTER.hiddenDims])
      .describe("Widths of the adapter's hidden Linear → BatchNorm → ReLU blocks; [] is a single Linear."),
    view1: vectorViewSchema(DEFAULT_VECTOR_VIEW, 'first'),
    view2: vectorViewSchema(DEFAULT_VECTOR_VIEW, 'second'),
    ...towerShape,
  })
  .describe(
    "The vector modality (precomputed embeddings, a JSONL record's `vector`): its MLP adapter and views (mixing, noise, feature dropout).",
  );

export const modelSchema = z
  .strictObject({
    sharedHeads: z.boolean().default(true).describe('One projector and predictor for all modalities (one space), or one per modality.'),
    headInputDim: positiveUpTo(32768)
      .optional()
      .describe(
        "Input width of the shared heads (default: the widest tower's featureDim). A tower of another width gets a Linear neck to it: a new, wider tower can then join a locked space (freezeHeads) whose heads were trained at a smaller width.",
      ),
    projectionHiddenDim: positiveUpTo(32768).default(4096).describe("Projector's hidden width (BYOL: 4096)."),
    projectionDim: positiveUpTo(8192).default(256).describe('Projection width, the shared embedding (BYOL: 256).'),
    predictionHiddenDim: positiveUpTo(32768).default(4096).describe("Predictor's hidden width (BYOL: 4096)."),
    headNorm: z
      .enum(['batch', 'layer', 'group'])
      .default('batch')
      .describe("Normalisation in the heads: BatchNorm (BYOL's), or LayerNorm / GroupNorm for small batches."),
    tauBase: z.number().min(0).max(1).default(0.996).describe('τ_base of the target EMA (BYOL: 0.996; 0.99 for short runs).'),
    tauSchedule: z
      .enum(['cosine', 'constant'])
      .default('cosine')
      .describe("'cosine' raises τ from tauBase to 1 over training (BYOL's); 'constant' keeps tauBase."),
    freezeHeads: z
      .boolean()
      .default(false)
      .describe(
        'Lock the shared projector and predictor, and the necks and BatchNorm statistics of the modalities whose towers are frozen whole: their space stays as train.initFrom (with train.initHeads) left it, and only the other modalities move into it. Needs sharedHeads.',
      ),
  })
  .describe('Online and target networks.');

export const lossSchema = z
  .strictObject({
    objective: z
      .enum([...objectiveNames, 'cca'])
      .default('lightCrossPlusVicReg')
      .describe(
        "A named set of weights (docs/align.md); the weights below override it one by one. 'cca': no training, closed-form CCA between two towers frozen whole, fitted on the training pairs' features as linear heads (docs/pretrained.md).",
      ),
    intraWeight: weight.optional().describe("λ_intra: each modality's BYOL loss between its two views."),
    crossWeight: weight.optional().describe("λ_cross: one modality's prediction regressing another's target projection."),
    infoNceWeight: weight.optional().describe("Weight of CLIP's symmetric InfoNCE (learnable temperature)."),
    varianceWeight: weight.optional().describe("Weight of VICReg's variance term on the online projections."),
    covarianceWeight: weight.optional().describe("Weight of VICReg's covariance term on the online projections."),
    invarianceWeight: weight
      .optional()
      .describe("Weight of VICReg's invariance term between two modalities' online projections (no predictor, no stop-gradient)."),
    invarianceDistance: z
      .enum(['mse', 'cosine'])
      .optional()
      .describe(
        "How the invariance term measures two projections: VICReg's mean squared difference ('mse', the default) or 2 − 2·cos ('cosine', blind to their lengths: for a tower joining a locked space, docs/audio.md).",
      ),
    ccaRegularization: z
      .number()
      .min(0)
      .default(1e-3)
      .describe("With objective cca: ridge added to each tower's feature covariance, as a fraction of its mean variance."),
    ccaPower: z
      .number()
      .min(0)
      .default(1)
      .describe('With objective cca: each canonical dimension is scaled by its correlation to this power (0: whitened).'),
    firstStageEpochs: z.number().int().min(0).default(0).describe('Epochs at the start trained with firstStageObjective instead.'),
    firstStageObjective: z.enum(objectiveNames).default('intraOnly').describe('The objective of the first stage.'),
  })
  .describe('The loss (docs/align.md).');

export const optimSchema = z
  .strictObject({
    optimizer: z
      .enum(['lars', 'adamw', 'adam'])
      .default('adamw')
      .describe("LARS (BYOL's; biases and norms excluded from decay and adaptation), AdamW or Adam."),
    baseLr: z
      .number()
      .positive()
      .default(1e-3)
      .describe('Learning rate per 256 items: the peak is baseLr · batchSize / 256 (BYOL: 0.2 with LARS).'),
    predictorLrScale: z
      .number()
      .gt(0)
      .default(1)
      .describe("The predictors' learning rate as a multiple of the rest's (BraVe trains them at 10×)."),
    weightDecay: z.number().min(0).default(1e-4).describe('Weight decay (BYOL: 1.5e-6 with LARS).'),
    warmupFraction: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('Share of training spent warming the learning rate up linearly, before the cosine decay.'),
    clipGradNorm: z.number().positive().optional().describe('Clip the global gradient norm to this value.'),
  })
  .describe('Optimizer and learning-rate schedule.');

export const trainSchema = z
  .strictObject({
    epochs: positiveInt.optional().describe('Training length in epochs (default 10 when steps is not given); `--epochs`.'),
    steps: positiveInt.optional().describe('Training length in steps, instead of epochs; `--steps`.'),
    batchSize: z.number().int().min(2).max(65536).default(256).describe('Items per step (BYOL: 4096).'),
    seed: z.number().int().min(0).default(0).describe('Seeds the initialisation, the data order and every augmentation.'),
    threads: positiveInt
      // A refinement, not .max(): the bound depends on the machine, and docs/config.md must not.
      .refine((n) => n <= MAX_THREADS, { message: `at most ${MAX_THREADS} (${THREADS_PER_CORE} per core here)` })
      .optional()
      .describe(`libtorch's intra-op threads (default: every core; at most ${THREADS_PER_CORE} per core).`),
    device: z
      .string()
      .regex(DEVICE_SETTING, "expected auto, cpu, cuda or cuda:N (N a GPU's index)")
      .default('auto')
      .describe(
        "Where the model trains: 'auto' (CUDA when the linked libtorch has a GPU, else the CPU), 'cpu', 'cuda' or 'cuda:N'; `--device`. May differ on resume: checkpoints hold CPU tensors.",
      ),
    precision: z
      .enum(['fp32', 'bf16', 'fp16'])
      .default('fp32')
      .describe(
        "The forward pass's precision: 'fp32'; 'bf16' (autocast to bfloat16, on the CPU or CUDA); 'fp16' (autocast to float16 with a gradient scaler, CUDA only: libtorch's CPU autocast has bfloat16 only). Weights, optimizer state, EMA target, normalisation statistics and losses stay float32; `--precision`. May differ on resume.",
      ),
    syncBatchNorm: z
      .boolean()
      .default(true)
      .describe(
        "Data-parallel training (`--nproc`, torchrun): normalise with the statistics of all ranks' rows, so that N processes train what one process trains (BYOL's and VICReg's choice); false: each rank normalises with its own rows, as PyTorch's DDP does without SyncBatchNorm: 6–8% faster a step on 2 processes of the default configuration (docs/distributed.md), and checkpoints keep rank 0's running statistics. One process ignores it.",
      ),
    checkpointEvery: positiveInt.default(500).describe('Write a checkpoint every this many steps (and always at the end).'),
    keepCheckpoints: positiveInt.default(3).describe('Checkpoints kept in the run directory; older ones are deleted.'),
    featureCache: z
      .boolean()
      .default(true)
      .describe(
        "Cache the features of a tower frozen whole whose views are off (`freeze: true`, `views: false`): computed once per item into the run's feature-cache/ folder, keyed by a hash of the tower's weights and the data, and trained on instead of the tower.",
      ),
    initFrom: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A byol-align run folder or checkpoint whose encoders (towers) start this run, with its tokenizer; the modality settings must match. `--init-from`. Not applied on resume (the run's own checkpoint holds them).",
      ),
    initHeads: z
      .boolean()
      .default(false)
      .describe('With initFrom: also start the necks, projectors and predictors from it (their shapes must match).'),
  })
  .describe('Training length, batch, seed, device, precision and checkpoints.');

export const pluginsSchema = z
  .array(z.string().min(1))
  .optional()
  .describe(
    'Modules that register modalities (registerModality) for this run, imported before the config is validated; `--plugin`. A path (with a slash, or ending in .js/.mjs/.cjs) is relative to the config file and recorded absolute; anything else is a package name. Each registered modality may have a section of its own, named after it (docs/modalities.md).',
  );

const coreSections = {
  data: dataSchema.prefault({}),
  image: imageSchema.prefault({}),
  text: textSchema.prefault({}),
  model: modelSchema.prefault({}),
  loss: lossSchema.prefault({}),
  optim: optimSchema.prefault({}),
  train: trainSchema.prefault({}),
  vector: vectorSchema.prefault({}),
  plugins: pluginsSchema,
};

/** The top-level keys of the core schema; a plug-in modality may not take one of these names for its section. */
export const CORE_SECTIONS: readonly string[] = Object.keys(coreSections);

/** Checks across sections. */
function checkConfig(
  config: { train: { epochs?: number; steps?: number }; text: { dModel: number; heads: number; encoder: string; pretrained?: string } },
  ctx: z.RefinementCtx,
): void {
  if (config.train.epochs !== undefined && config.train.steps !== undefined)
    ctx.addIssue({ code: 'custom', path: ['train', 'steps'], message: 'give train.epochs or train.steps, not both' });
  if (config.text.dModel % config.text.heads !== 0)
    ctx.addIssue({ code: 'custom', path: ['text', 'heads'], message: `must divide text.dModel (${config.text.dModel})` });
  if (config.text.encoder === 'bert' && config.text.pretrained === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['text', 'pretrained'],
      message: 'encoder bert needs pretrained: a folder with config.json, model.safetensors and tokenizer.json',
    });
  if (config.text.encoder !== 'bert' && config.text.pretrained !== undefined)
    ctx.addIssue({ code: 'custom', path: ['text', 'encoder'], message: 'must be bert to start from text.pretrained' });
}

export const configSchema = z.strictObject(coreSections).superRefine(checkConfig);

/**
 * The core schema with more sections: a registered modality's own (src/config/load.ts adds one per
 * modality that declares a configSchema). Its output is a Config with those sections besides.
 */
export function configSchemaWith(sections: Record<string, z.ZodType>): typeof configSchema {
  return z.strictObject({ ...coreSections, ...sections }).superRefine(checkConfig) as unknown as typeof configSchema;
}

/** A validated configuration with every default filled in (and, untyped, the sections of plug-in modalities). */
export type Config = z.output<typeof configSchema>;
/** What a config file may hold: any subset, defaults for the rest. */
export type ConfigInput = z.input<typeof configSchema>;
