// Exporting a trained model for use outside byol-align: what `byol-align export` writes.
//   DIR/model.safetensors   the online network (encoders with their necks, projectors, predictors),
//                           PyTorch's parameter names (e.g. encoders.text.0.layers.0.self_attn.in_proj_weight)
//   DIR/config.json         the modalities' settings (tokenizer state left out), the heads, and
//                           the image preprocessing (size, channel mean and std)
//   DIR/tokenizer.json      the text tokenizer (Hugging Face `tokenizers` JSON), when there is text
//   DIR/check.safetensors   a few model inputs per modality and the projections byol-align computed
// scripts/load_export.py rebuilds the same network from these files with torch.nn modules, loads
// the weights and checks that it reproduces check.safetensors.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, type Tensor } from '../engine/index.js';
import { serializeSafetensors } from '../engine/safetensors.js';
import type { ImageModality } from '../modalities/image/index.js';
import type { LoadedModel } from './model_setup.js';
import { writeFileAtomic } from './checkpoint.js';

export const EXPORT_FORMAT = 'byol-align-export/1';

/** Raw sample items per modality, for the check file. */
export type CheckItems = Record<string, unknown[]>;

/**
 * Writes the export of `loaded` to `dir`; `check` gives a few raw inputs per modality (e.g. image
 * paths, captions) whose projections go into check.safetensors.
 *
 * @example
 * await exportModel(loadModel('runs/icons'), 'export/', { image: ['a.png'], text: ['a red heart'] });
 */
export async function exportModel(loaded: LoadedModel, dir: string, check: CheckItems): Promise<void> {
  const { model, modalities, config } = loaded;
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
    return { name: m.name, kind: spec.name, featureDim: m.featureDim, settings };
  });
  const image = modalities.find((m) => m.name === 'image') as ImageModality | undefined;
  const exportConfig = {
    format: EXPORT_FORMAT,
    modalities: specs,
    heads: config.model,
    image: image ? { size: image.settings.size, channels: image.settings.channels, mean: image.view1.mean, std: image.view1.std } : null,
  };
  writeFileAtomic(join(dir, 'config.json'), Buffer.from(`${JSON.stringify(exportConfig, null, 2)}\n`));
  const tokenizer = modalities.find((m) => m.name === 'text')?.toJSON().state?.tokenizer;
  if (typeof tokenizer === 'string') writeFileAtomic(join(dir, 'tokenizer.json'), Buffer.from(tokenizer));

  // Model inputs (after collate and evalInput: normalised pixels, token ids, vectors) and outputs.
  const checkTensors = new Map<string, Tensor>();
  const batches: Tensor[] = [];
  for (const m of modalities) {
    const items = check[m.name];
    if (items === undefined || items.length === 0) continue;
    const batch = await m.collate(items);
    const input = m.evalInput(batch);
    checkTensors.set(`${m.name}.input`, input);
    checkTensors.set(
      `${m.name}.projection`,
      noGrad(() => model.embed(m.name, input, 'projection')),
    );
    batches.push(batch); // evalInput may return the batch itself (token ids), so it is freed last
  }
  writeFileAtomic(join(dir, 'check.safetensors'), serializeSafetensors(checkTensors, { format: EXPORT_FORMAT }));
  for (const t of new Set([...checkTensors.values(), ...batches])) t.dispose();
}
