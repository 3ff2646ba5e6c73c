// Exporting a trained model for use outside byol-align: what `byol-align export` writes.
//   DIR/model.safetensors   the online network (encoders with their necks, projectors, predictors),
//                           PyTorch's parameter names (e.g. encoders.text.0.layers.0.self_attn.in_proj_weight)
//   DIR/config.json         the modalities' settings (tokenizer state left out), the heads, the space
//                           `byol-align embed` returns, and how inputs become model inputs: the image
//                           decoding (size, channels, fit, background, resize kernel, mean and std)
//                           the text's tokenizer file, length and padding, and the audio's clip
//                           rule, log-mel settings and normalisation
//   DIR/tokenizer.json      the text tokenizer (Hugging Face `tokenizers` JSON), when there is text
//   DIR/check.safetensors   a few model inputs per modality and the projections byol-align computed,
//                           when check items are given (the run's saved samples, check_samples.ts)
// python/byol_align_export.py rebuilds the same network from these files with torch.nn modules,
// encodes PIL images, texts and WAV clips as `byol-align embed` does, and checks check.safetensors.
import { mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { noGrad, tidy, type Tensor } from '../engine/index.js';
import { serializeSafetensors } from '../engine/safetensors.js';
import { resolveDecodeOptions } from '../data/image_decode.js';
import type { ImageModality } from '../modalities/image/index.js';
import type { TextModality } from '../modalities/text/index.js';
import type { AudioModality } from '../modalities/audio/index.js';
import type { LoadedModel } from './model_setup.js';
import { modelDevice, onDevice } from '../align/device.js';
import { writeFileAtomic } from './checkpoint.js';
import { loadCheckSamples, type CheckItems } from './check_samples.js';

export type { CheckItems };

export const EXPORT_FORMAT = 'byol-align-export/1';

/** sharp's default resize kernel, which image_decode.ts's resize uses. */
const SHARP_RESIZE_KERNEL = 'lanczos3';

/** What exportModel wrote. */
export interface ExportResult {
  /** Whether check.safetensors was written. */
  checked: boolean;
  /** One line for the user: what the check holds, or why there is none. */
  message: string;
}

/**
 * The check items saved in the run directory of `loaded`'s checkpoint (RUN_DIR/check-samples/),
 * or undefined when the run saved none.
 *
 * @example
 * const loaded = loadModel('runs/icons');
 * await exportModel(loaded, 'export/', savedCheckItems(loaded));
 */
export function savedCheckItems(loaded: LoadedModel): CheckItems | undefined {
  const parent = dirname(loaded.checkpoint.file);
  return loadCheckSamples(basename(parent) === 'checkpoints' ? dirname(parent) : parent);
}

/**
 * Writes the export of `loaded` to `dir`; `check` gives a few raw inputs per modality (image
 * paths, captions, vectors) whose projections go into check.safetensors. Without `check` (or
 * with no items in it) there is no check.safetensors, and the message says so.
 *
 * @example
 * const { message } = await exportModel(loadModel('runs/icons'), 'export/', { image: ['a.png'], text: ['a red heart'] });
 */
export async function exportModel(loaded: LoadedModel, dir: string, check?: CheckItems): Promise<ExportResult> {
  const { model, modalities, config } = loaded;
  // python/byol_align_export.py builds BYOL's MLP heads; a cca run's are linear (src/run/cca_run.ts).
  if (config.loss.objective === 'cca')
    throw new Error(
      'export: a loss.objective cca run has linear heads, which python/byol_align_export.py does not build yet; `byol-align embed` writes its embeddings',
    );
  mkdirSync(dir, { recursive: true });
  model.eval();
  const weights = new Map<string, Tensor>();
  for (const [k, t] of model.online.stateDict()) weights.set(k, t);
  writeFileAtomic(join(dir, 'model.safetensors'), serializeSafetensors(weights, { format: EXPORT_FORMAT }));

  const specs = modalities.map((m) => {
    const spec = m.toJSON();
    const settings = { ...spec.settings };
    // The tokenizer may learn fewer tokens than vocabSize asks for; the embedding has its real size.
    const embedding = weights.get(`encoders.${m.name}.0.token_embedding.weight`);
    if (spec.name === 'text' && embedding) settings.vocabSize = embedding.shape[0];
    // A pretrained BERT tower: its architecture (config.json's fields) and the padding id attention leaves out.
    const bert = spec.name === 'text' ? (spec.state as { bertConfig?: unknown } | undefined)?.bertConfig : undefined;
    const text = bert === undefined ? {} : { bert, padId: (m as TextModality).tokenizer.specialIds.pad };
    return { name: m.name, kind: spec.name, featureDim: m.featureDim, settings, ...text };
  });
  const image = modalities.find((m) => m.name === 'image') as ImageModality | undefined;
  const text = modalities.find((m) => m.name === 'text') as TextModality | undefined;
  const audio = modalities.find((m) => m.name === 'audio') as AudioModality | undefined;
  const exportConfig = {
    format: EXPORT_FORMAT,
    modalities: specs,
    heads: config.model,
    // The space `byol-align embed` returns by default (embedInputs': pairing has no single embedding per item).
    space: loaded.retrievalSpace === 'pairing' ? 'projection' : loaded.retrievalSpace,
    image: image ? imagePreprocessing(image) : null,
    text: text
      ? {
          tokenizer: 'tokenizer.json',
          maxLength: text.settings.maxLength,
          padding: text.settings.padding,
          padId: text.tokenizer.specialIds.pad,
        }
      : null,
    // Everything a WAV file goes through before the encoder: the clip rule, the log-mel features
    // and the normalisation that fit measured.
    audio: audio ? { ...audio.settings, view: undefined, ...audio.normalization } : null,
  };
  writeFileAtomic(join(dir, 'config.json'), Buffer.from(`${JSON.stringify(exportConfig, null, 2)}\n`));
  if (text) writeFileAtomic(join(dir, 'tokenizer.json'), Buffer.from(text.tokenizer.toJSON()));

  const checkFile = join(dir, 'check.safetensors');
  const checked = modalities.filter((m) => (check?.[m.name]?.length ?? 0) > 0);
  if (checked.length === 0) {
    rmSync(checkFile, { force: true }); // an old one would check other weights
    return {
      checked: false,
      message: `no check samples${check === undefined ? ' saved with the run' : ''}, so ${dir} has no check.safetensors`,
    };
  }
  // Model inputs (after collate and evalInput: normalised pixels, token ids, vectors) and outputs;
  // the inputs are made on the CPU and copied to the model's device to be embedded.
  const device = modelDevice(model);
  const checkTensors = new Map<string, Tensor>();
  const batches: Tensor[] = [];
  for (const m of checked) {
    const batch = await m.collate(check![m.name]!);
    const input = m.evalInput(batch);
    checkTensors.set(`${m.name}.input`, input);
    checkTensors.set(
      `${m.name}.projection`,
      noGrad(() => tidy(() => model.embed(m.name, onDevice(input, device), 'projection'))),
    );
    batches.push(batch); // evalInput may return the batch itself (token ids), so it is freed last
  }
  writeFileAtomic(checkFile, serializeSafetensors(checkTensors, { format: EXPORT_FORMAT }));
  for (const t of new Set([...checkTensors.values(), ...batches])) t.dispose();
  const counts = checked.map((m) => `${check![m.name]!.length} ${m.name}`).join(', ');
  return { checked: true, message: `check.safetensors holds the projections of ${counts} samples` };
}

/** How an image file becomes the encoder's input, for code outside byol-align to repeat. */
function imagePreprocessing(image: ImageModality): Record<string, unknown> {
  const { size, channels, fit } = image.settings;
  // The modality decodes with these options and the decoder's defaults for the rest (the background).
  const decode = resolveDecodeOptions({ size, channels, fit });
  return {
    size,
    channels,
    fit: decode.fit,
    background: decode.background,
    resizeKernel: SHARP_RESIZE_KERNEL,
    mean: image.view1.mean,
    std: image.view1.std,
  };
}
